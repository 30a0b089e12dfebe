//! A catalog view that pins a transaction to the table state it was planned on.
//!
//! iceberg-rust's `Transaction::commit` reloads the table and re-applies its actions on the
//! newest snapshot, retrying on conflicts. For Floe that would be wrong twice over: a
//! commit planned before another writer's commit would silently succeed, and a commit
//! whose response was lost would be appended again. Handing `commit` this wrapper makes
//! `load_table` return the planned table (so the `main`-ref requirement checks against
//! what Floe saw) and makes every failure non-retryable (so the retry loop is Floe's).
//!
//! A commit [`Pinned`] to a schema goes one step further: its updates and requirements
//! are committed through Floe's own compare-and-swap (`floe_catalog::table_change`) with
//! one more requirement, the table's current schema, which iceberg-rust's transactions
//! cannot add: files written with a schema that another writer changed meanwhile are
//! then never committed unseen.

use std::collections::HashMap;

use async_trait::async_trait;
use floe_catalog::OpenCatalog;
use floe_catalog::table_change::TableChange;
use iceberg::table::Table;
use iceberg::{
    Catalog, Namespace, NamespaceIdent, Result, TableCommit, TableCreation, TableIdent,
    TableRequirement,
};

/// Commits `tx`, planned on `base`, pinned to `base` (see the module doc), as one
/// attempt of the commit loop.
pub(crate) async fn commit_planned_on(
    catalog: &dyn Catalog,
    base: &Table,
    tx: iceberg::transaction::Transaction,
) -> crate::commit_loop::Tried<()> {
    let fenced = FencedCatalog {
        inner: catalog,
        planned: base.clone(),
        pinned: None,
    };
    match tx.commit(&fenced).await {
        Ok(t) => crate::commit_loop::Tried::Landed(t, ()),
        Err(e) => crate::commit_loop::Tried::Failed(e),
    }
}

/// A commit that requires the table's current schema to be `schema_id`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pinned<'a> {
    /// Floe's own commit path, which takes any requirement.
    pub(crate) catalog: &'a OpenCatalog,
    /// The schema the commit was planned with.
    pub(crate) schema_id: i32,
}

/// Delegates to `inner`, except that `load_table` of the pinned table returns `planned`.
#[derive(Debug)]
pub(crate) struct FencedCatalog<'a> {
    pub(crate) inner: &'a dyn Catalog,
    pub(crate) planned: Table,
    /// When set, the commit also requires this schema to be the table's current one.
    pub(crate) pinned: Option<Pinned<'a>>,
}

#[async_trait]
impl Catalog for FencedCatalog<'_> {
    async fn list_namespaces(
        &self,
        parent: Option<&NamespaceIdent>,
    ) -> Result<Vec<NamespaceIdent>> {
        self.inner.list_namespaces(parent).await
    }

    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<Namespace> {
        self.inner.create_namespace(namespace, properties).await
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> Result<Namespace> {
        self.inner.get_namespace(namespace).await
    }

    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> Result<bool> {
        self.inner.namespace_exists(namespace).await
    }

    async fn update_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<()> {
        self.inner.update_namespace(namespace, properties).await
    }

    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> Result<()> {
        self.inner.drop_namespace(namespace).await
    }

    async fn list_tables(&self, namespace: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        self.inner.list_tables(namespace).await
    }

    async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        creation: TableCreation,
    ) -> Result<Table> {
        self.inner.create_table(namespace, creation).await
    }

    async fn load_table(&self, table: &TableIdent) -> Result<Table> {
        if table == self.planned.identifier() {
            Ok(self.planned.clone())
        } else {
            self.inner.load_table(table).await
        }
    }

    async fn drop_table(&self, table: &TableIdent) -> Result<()> {
        self.inner.drop_table(table).await
    }

    async fn purge_table(&self, table: &TableIdent) -> Result<()> {
        self.inner.purge_table(table).await
    }

    async fn table_exists(&self, table: &TableIdent) -> Result<bool> {
        self.inner.table_exists(table).await
    }

    async fn rename_table(&self, src: &TableIdent, dest: &TableIdent) -> Result<()> {
        self.inner.rename_table(src, dest).await
    }

    async fn register_table(&self, table: &TableIdent, metadata_location: String) -> Result<Table> {
        self.inner.register_table(table, metadata_location).await
    }

    async fn update_table(&self, mut commit: TableCommit) -> Result<Table> {
        let committed = match &self.pinned {
            Some(pinned) => {
                let mut requirements = commit.take_requirements();
                requirements.push(TableRequirement::CurrentSchemaIdMatch {
                    current_schema_id: pinned.schema_id,
                });
                let change = TableChange {
                    requirements,
                    updates: commit.take_updates(),
                };
                pinned.catalog.commit_change(&self.planned, change).await
            }
            None => self.inner.update_table(commit).await,
        };
        committed.map_err(|e| e.with_retryable(false))
    }
}
