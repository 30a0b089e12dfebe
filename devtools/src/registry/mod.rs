//! A Schema Registry served by `floe` itself: for jobs with `'avro-confluent.url' =
//! 'embedded'` (the Avro quickstart), and as `floe registry` for tests whose records are
//! produced by real registry clients. It speaks the Confluent REST routes those clients
//! use (see [`store`]), over plain HTTP/1.1 on loopback, one request per connection,
//! with optional basic authentication. `--state FILE` keeps its schemas across a
//! restart, so a test can take it down and bring it back with the same ids.

mod server;
pub mod store;

use std::sync::Mutex;

pub use server::{RegistryServer, ServerOptions};

/// The registry this process serves, once started (what `embedded` means); it lives as
/// long as the process.
static EMBEDDED: Mutex<Option<&'static RegistryServer>> = Mutex::new(None);

/// The process's embedded registry, started on a free loopback port on first use.
pub fn embedded() -> crate::error::Result<&'static RegistryServer> {
    let mut slot = EMBEDDED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = *slot {
        return Ok(server);
    }
    let server: &'static RegistryServer =
        Box::leak(Box::new(RegistryServer::start(ServerOptions::default())?));
    *slot = Some(server);
    Ok(server)
}
