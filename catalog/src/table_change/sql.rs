//! The SQL catalog's compare-and-swap: the same conditional update of the metadata
//! location that iceberg-catalog-sql performs, on the same `iceberg_tables` rows.

use std::str::FromStr;

use iceberg::table::Table;
use iceberg::{Catalog, Error, ErrorKind, MetadataLocation, Runtime};
use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use tokio::sync::OnceCell;

use super::TableChange;

/// Commits changes to tables of one SQL catalog.
pub(crate) struct SqlCommits {
    uri: String,
    catalog_name: String,
    dollar_binds: bool,
    pool: OnceCell<AnyPool>,
}

impl std::fmt::Debug for SqlCommits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URI may hold a password.
        f.debug_struct("SqlCommits")
            .field("catalog_name", &self.catalog_name)
            .finish_non_exhaustive()
    }
}

impl SqlCommits {
    /// Commits to the catalog `catalog_name` in the database at `uri` (connected on first use).
    pub(crate) fn new(uri: String, catalog_name: String, dollar_binds: bool) -> Self {
        Self {
            uri,
            catalog_name,
            dollar_binds,
            pool: OnceCell::new(),
        }
    }

    async fn pool(&self) -> iceberg::Result<&AnyPool> {
        self.pool
            .get_or_try_init(|| async {
                install_default_drivers();
                AnyPoolOptions::new()
                    .max_connections(2)
                    .connect(&self.uri)
                    .await
                    .map_err(|e| {
                        Error::new(ErrorKind::Unexpected, "cannot connect to the SQL catalog")
                            .with_source(e)
                            .with_retryable(true)
                    })
            })
            .await
    }

    pub(crate) async fn commit(
        &self,
        catalog: &dyn Catalog,
        base: &Table,
        change: TableChange,
    ) -> iceberg::Result<Table> {
        let ident = base.identifier().clone();
        let pool = self.pool().await?;
        // `base` is usually still current: then its metadata need not be read again.
        let current = match self.location(pool, &ident).await {
            Ok(Some(l)) if base.metadata_location() == Some(l.as_str()) => base.clone(),
            _ => catalog.load_table(&ident).await?,
        };
        let current_location = current.metadata_location_result()?.to_string();
        for requirement in &change.requirements {
            requirement.check(Some(current.metadata()))?;
        }
        let mut builder = current
            .metadata()
            .clone()
            .into_builder(Some(current_location.clone()));
        for update in change.updates {
            builder = update.apply(builder)?;
        }
        let metadata = builder.build()?.metadata;
        let location = MetadataLocation::from_str(&current_location)?
            .with_next_version()
            .with_new_metadata(&metadata);
        metadata.write_to(current.file_io(), &location).await?;
        let location = location.to_string();
        let rows = self
            .swap(pool, &ident, &current_location, &location)
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unexpected,
                    format!("updating the metadata location of {ident}"),
                )
                .with_source(e)
                .with_retryable(true)
            })?;
        if rows == 0 {
            return Err(Error::new(
                ErrorKind::CatalogCommitConflicts,
                format!("table {ident} changed while the commit was prepared"),
            )
            .with_retryable(true));
        }
        // The committed state: the metadata just written, as iceberg-catalog-sql's own
        // commits return it.
        Table::builder()
            .file_io(current.file_io().clone())
            .identifier(ident)
            .metadata_location(location)
            .metadata(metadata)
            .runtime(Runtime::try_current()?)
            .build()
    }

    /// Where the table's metadata is now, by the catalog's row.
    async fn location(
        &self,
        pool: &AnyPool,
        ident: &iceberg::TableIdent,
    ) -> Result<Option<String>, sqlx::Error> {
        let query = format!(
            "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = {} \
             AND table_namespace = {} AND table_name = {} \
             AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)",
            self.bind(1),
            self.bind(2),
            self.bind(3)
        );
        sqlx::query_scalar::<_, Option<String>>(&query)
            .bind(&self.catalog_name)
            .bind(ident.namespace().join("."))
            .bind(ident.name())
            .fetch_optional(pool)
            .await
            .map(Option::flatten)
    }

    /// The `n`th bind parameter in the database's syntax.
    fn bind(&self, n: usize) -> String {
        if self.dollar_binds {
            format!("${n}")
        } else {
            "?".to_string()
        }
    }

    /// Points the table at `new` if it still points at `current`; returns the rows changed.
    async fn swap(
        &self,
        pool: &AnyPool,
        ident: &iceberg::TableIdent,
        current: &str,
        new: &str,
    ) -> Result<u64, sqlx::Error> {
        let p = |n: usize| self.bind(n);
        let query = format!(
            "UPDATE iceberg_tables SET metadata_location = {}, previous_metadata_location = {} \
             WHERE catalog_name = {} AND table_namespace = {} AND table_name = {} \
             AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL) AND metadata_location = {}",
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            p(6)
        );
        let done = sqlx::query(&query)
            .bind(new)
            .bind(current)
            .bind(&self.catalog_name)
            .bind(ident.namespace().join("."))
            .bind(ident.name())
            .bind(current)
            .execute(pool)
            .await?;
        Ok(done.rows_affected())
    }
}
