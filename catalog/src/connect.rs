//! Opening the catalogs a job declares.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iceberg::table::Table;
use iceberg::{Catalog, CatalogBuilder};
use iceberg_catalog_rest::{
    REST_CATALOG_PROP_URI, REST_CATALOG_PROP_WAREHOUSE, RestCatalogBuilder,
};
use iceberg_catalog_sql::{SqlBindStyle, SqlCatalogBuilder};

use crate::error::{CatalogError, Result};
use crate::storage::{ObjectStorageFactory, StoreConfig};
use crate::table_change::{ChangeCommitter, RestCommits, SqlCommits, TableChange};

/// Which catalog implementation and where it lives.
#[derive(Clone, PartialEq, Eq)]
pub enum CatalogKind {
    /// A SQL (JDBC-schema) catalog; `uri` is `sqlite://PATH` or `postgres://…`.
    Sql {
        /// The database URI.
        uri: String,
    },
    /// An Iceberg REST catalog at `uri`.
    Rest {
        /// The server's base URL.
        uri: String,
        /// Client settings (`credential`, `token`, `oauth2-server-uri`, `scope`, `header.*`, …).
        options: BTreeMap<String, String>,
    },
}

impl std::fmt::Debug for CatalogKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // A URI may carry a password.
            Self::Sql { uri } => f
                .debug_struct("Sql")
                .field("uri", &redact_password(uri))
                .finish(),
            // Credentials, tokens and headers are secrets: their names are enough.
            Self::Rest { uri, options } => f
                .debug_struct("Rest")
                .field("uri", &redact_password(uri))
                .field("options", &options.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// Everything needed to open one catalog.
#[derive(Clone)]
pub struct CatalogConfig {
    /// The catalog's name; other engines must open it under the same name.
    pub name: String,
    /// Implementation and location.
    pub kind: CatalogKind,
    /// Warehouse root: `file:///…` (relative paths are resolved against the working
    /// directory) or `s3://bucket/prefix`.
    pub warehouse: String,
    /// Storage settings.
    pub storage: BTreeMap<String, String>,
}

impl std::fmt::Debug for CatalogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Storage values hold keys and secrets; their names are enough to debug with.
        f.debug_struct("CatalogConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("warehouse", &self.warehouse)
            .field("storage_keys", &self.storage.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// An open catalog with its resolved locations.
#[derive(Clone)]
pub struct OpenCatalog {
    /// The name it was opened under.
    pub name: String,
    /// The catalog.
    pub catalog: Arc<dyn Catalog>,
    /// Absolute warehouse URI.
    pub warehouse: String,
    /// The storage config its files go through.
    pub store: StoreConfig,
    /// Floe's own commit path for changes `Transaction` cannot express.
    changes: Arc<ChangeCommitter>,
}

impl OpenCatalog {
    /// Commits `change` to the table `base` names through the catalog's compare-and-swap
    /// (see [`crate::table_change`]); errors keep the catalogs' kinds and retry hints.
    pub async fn commit_change(&self, base: &Table, change: TableChange) -> iceberg::Result<Table> {
        self.changes
            .commit(self.catalog.as_ref(), base, change)
            .await
    }
}

impl std::fmt::Debug for OpenCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenCatalog")
            .field("name", &self.name)
            .field("warehouse", &self.warehouse)
            .finish_non_exhaustive()
    }
}

/// Opens `config`, creating the SQLite file and a local warehouse directory if missing.
pub async fn open_catalog(config: &CatalogConfig) -> Result<OpenCatalog> {
    let cfg_err = |message: String| CatalogError::Config {
        catalog: config.name.clone(),
        message,
    };
    let (warehouse, store) = warehouse_store(config).map_err(&cfg_err)?;
    if !matches!(store, StoreConfig::ByLocation { .. }) {
        store.build().map_err(|e| cfg_err(e.to_string()))?;
    }
    let factory = Arc::new(ObjectStorageFactory::new(store.clone()));
    let changes = Arc::new(change_committer(config, &warehouse)?);
    let catalog: Arc<dyn Catalog> = match &config.kind {
        CatalogKind::Sql { uri } => {
            let (uri, bind_style) = if is_postgres(uri) {
                (uri.clone(), SqlBindStyle::DollarNumeric)
            } else {
                (sqlite_uri(uri).map_err(&cfg_err)?, SqlBindStyle::QMark)
            };
            let catalog = SqlCatalogBuilder::default()
                .with_storage_factory(factory)
                .uri(uri.clone())
                .warehouse_location(warehouse.clone())
                .sql_bind_style(bind_style)
                .load(config.name.clone(), HashMap::new())
                .await
                .map_err(|e| {
                    cfg_err(format!(
                        "cannot open SQL catalog at {}: {e}",
                        redact_password(&uri)
                    ))
                })?;
            Arc::new(catalog)
        }
        CatalogKind::Rest { uri, options } => {
            let mut props: HashMap<String, String> = options.clone().into_iter().collect();
            props.insert(REST_CATALOG_PROP_URI.into(), uri.clone());
            props.insert(REST_CATALOG_PROP_WAREHOUSE.into(), warehouse.clone());
            let catalog = RestCatalogBuilder::default()
                .with_storage_factory(factory)
                .load(config.name.clone(), props)
                .await
                .map_err(|e| {
                    cfg_err(format!(
                        "cannot open REST catalog at {}: {e}",
                        redact_password(uri)
                    ))
                })?;
            // The client connects lazily: ask the server now, so that a wrong address or
            // credential is reported at start, not at the first commit.
            catalog.list_namespaces(None).await.map_err(|e| {
                cfg_err(format!(
                    "the first request to the REST catalog at {} failed: {e}",
                    redact_password(uri)
                ))
            })?;
            Arc::new(catalog)
        }
    };
    Ok(OpenCatalog {
        name: config.name.clone(),
        catalog,
        warehouse,
        store,
        changes,
    })
}

fn change_committer(config: &CatalogConfig, warehouse: &str) -> Result<ChangeCommitter> {
    Ok(match &config.kind {
        CatalogKind::Sql { uri } => {
            let (uri, dollar) = if is_postgres(uri) {
                (uri.clone(), true)
            } else {
                let uri = sqlite_uri(uri).map_err(|message| CatalogError::Config {
                    catalog: config.name.clone(),
                    message,
                })?;
                (uri, false)
            };
            ChangeCommitter::Sql(SqlCommits::new(uri, config.name.clone(), dollar))
        }
        CatalogKind::Rest { uri, options } => ChangeCommitter::Rest(RestCommits::new(
            uri.clone(),
            warehouse.to_string(),
            options.clone(),
        )),
    })
}

fn is_postgres(uri: &str) -> bool {
    uri.starts_with("postgres://") || uri.starts_with("postgresql://")
}

/// `scheme://user:secret@host/…` → `scheme://user:<redacted>@host/…`.
fn redact_password(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let Some(at) = rest.rfind('@') else {
        return uri.to_string();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:<redacted>@{}", &rest[at + 1..]),
        None => uri.to_string(),
    }
}

/// The absolute warehouse URI and the store its files go to, from the warehouse
/// location and the `storage.*` options. A REST catalog's warehouse given by a logical
/// name (no scheme) leaves the store to the tables' locations.
fn warehouse_store(config: &CatalogConfig) -> Result<(String, StoreConfig), String> {
    if matches!(config.kind, CatalogKind::Rest { .. }) && !config.warehouse.contains("://") {
        let store = StoreConfig::ByLocation {
            options: config.storage.clone(),
            vended: HashMap::new(),
        };
        return Ok((config.warehouse.clone(), store));
    }
    if let Some(found) = StoreConfig::for_cloud_location(&config.warehouse, &config.storage) {
        return found;
    }
    if let Some(k) = config.storage.keys().next() {
        return Err(format!(
            "storage option 'storage.{k}' is not supported for a local warehouse"
        ));
    }
    let path = local_path(&config.warehouse, &["file://", "file:"]).ok_or_else(|| {
        format!(
            "warehouse '{}' must be a file://, s3://, gs:// or Azure (abfss://, az://) location",
            config.warehouse
        )
    })?;
    std::fs::create_dir_all(&path)
        .map_err(|e| format!("cannot create warehouse directory {}: {e}", path.display()))?;
    Ok((format!("file://{}", path.display()), StoreConfig::Local))
}

/// `sqlite://rel/path.db` → `sqlite:///abs/path.db?mode=rwc`, creating the parent directory.
fn sqlite_uri(uri: &str) -> Result<String, String> {
    let path = local_path(uri, &["sqlite://", "sqlite:"]).ok_or_else(|| {
        format!("catalog uri '{uri}' is not supported: use sqlite://PATH or postgres://…")
    })?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create directory {}: {e}", parent.display()))?;
    }
    Ok(format!("sqlite://{}?mode=rwc", path.display()))
}

/// The absolute path of a local URI with one of `schemes` (or a bare path).
fn local_path(uri: &str, schemes: &[&str]) -> Option<PathBuf> {
    let (body, _query) = uri.split_once('?').unwrap_or((uri, ""));
    let rest = schemes.iter().find_map(|s| body.strip_prefix(s));
    let rest = match rest {
        Some(r) => r,
        None if !body.contains("://") => body,
        None => return None,
    };
    if rest.is_empty() {
        return None;
    }
    let p = Path::new(rest);
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(p)
    };
    Some(normalize(&abs))
}

/// Removes `.` and `..` segments without touching the filesystem.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_locations_become_absolute() {
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(
            local_path("file://./data/wh", &["file://"]),
            Some(cwd.join("data/wh"))
        );
        assert_eq!(
            local_path("file:///tmp/x/../wh", &["file://"]),
            Some(PathBuf::from("/tmp/wh"))
        );
        assert_eq!(local_path("s3://bucket/wh", &["file://"]), None);
    }

    #[test]
    fn passwords_in_uris_are_redacted() {
        assert_eq!(
            redact_password("postgres://floe:s3cret@db:5432/lake"),
            "postgres://floe:<redacted>@db:5432/lake"
        );
        assert_eq!(redact_password("sqlite:///x.db"), "sqlite:///x.db");
    }
}
