//! A registry's Protobuf schema compiled into descriptors.
//!
//! The registry holds `.proto` text (Confluent's registry answers with it), or, as some
//! clients register it, a base64-encoded `FileDescriptorProto`; both are read. Imports
//! are the schema's references, fetched from the registry by the caller; the
//! well-known `google/protobuf/*.proto` files are built in.

use std::collections::HashMap;

use base64::Engine;
use prost_reflect::{DescriptorPool, MessageDescriptor};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

/// A compiled schema: its descriptors and the name of its own file.
#[derive(Debug, Clone)]
pub struct CompiledSchema {
    pool: DescriptorPool,
    file: String,
}

/// Compiles schema `text` with its imports (`.proto` text or base64 descriptors, by
/// import name).
pub fn compile(text: &str, imports: &HashMap<String, String>) -> Result<CompiledSchema, String> {
    let mut files = HashMap::new();
    for (name, t) in imports {
        files.insert(name.clone(), open(name, t)?);
    }
    let main = open("schema.proto", text)?;
    let main_name = if main.name().is_empty() {
        "schema.proto".to_string()
    } else {
        main.name().to_string()
    };
    files.insert(main_name.clone(), main);
    let mut resolver = ChainFileResolver::new();
    resolver.add(Files(files));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler
        .open_file(&main_name)
        .map_err(|e| format!("the Protobuf schema does not compile: {e}"))?;
    Ok(CompiledSchema {
        pool: compiler.descriptor_pool(),
        file: main_name,
    })
}

/// One `.proto` file as the registry holds it.
fn open(name: &str, text: &str) -> Result<File, String> {
    let t = text.trim();
    let looks_base64 = !t.is_empty() && !t.contains(|c: char| c.is_whitespace() || c == ';');
    if looks_base64 && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(t) {
        return File::decode_file_descriptor_proto(bytes.as_slice())
            .map_err(|e| format!("'{name}' is base64 but not a FileDescriptorProto: {e}"));
    }
    File::from_source(name, text).map_err(|e| format!("'{name}' does not parse: {e}"))
}

/// The files of one schema, by import name.
struct Files(HashMap<String, File>);

impl FileResolver for Files {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| protox::Error::file_not_found(name))
    }
}

impl CompiledSchema {
    /// The message at message-index `path` (the wire format's: top-level index, then
    /// nested indexes).
    pub fn message_at(&self, path: &[u32]) -> Result<MessageDescriptor, String> {
        let file = self
            .pool
            .get_file_by_name(&self.file)
            .ok_or_else(|| format!("the schema's file '{}' is missing", self.file))?;
        let missing = || format!("the schema has no message at index path {path:?}");
        let (first, rest) = path.split_first().ok_or_else(missing)?;
        let mut message = file.messages().nth(*first as usize).ok_or_else(missing)?;
        for i in rest {
            let child = message.child_messages().nth(*i as usize);
            message = child.ok_or_else(missing)?;
        }
        Ok(message)
    }

    /// The message named `name` (fully qualified), or the file's first one.
    pub fn message_named(&self, name: Option<&str>) -> Result<MessageDescriptor, String> {
        match name {
            Some(n) => self
                .pool
                .get_message_by_name(n.trim_start_matches('.'))
                .ok_or_else(|| format!("the schema has no message '{n}'")),
            None => self.message_at(&[0]),
        }
    }
}
