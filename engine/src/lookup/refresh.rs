//! Keeping a lookup table's version current while the job runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_catalog::OpenCatalog;
use floe_sql::job::TableName;
use floe_sql::plan::lookup::LookupSlot;
use tokio::time::MissedTickBehavior;
use tracing::{error, info, warn};

use super::load::{load_table, load_version};
use crate::error::EngineError;
use crate::observe::metrics;

/// Every `every`, loads the table and, if its current snapshot is not `loaded`, reads
/// and installs that one. A failure leaves the joins on the version they have; the next
/// check tries again.
pub async fn keep_fresh(
    catalog: OpenCatalog,
    name: TableName,
    slot: Arc<LookupSlot>,
    every: Duration,
    mut loaded: Option<i64>,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = Instant::now();
        let result = async {
            let table = load_table(&catalog, &name).await?;
            if table.metadata().current_snapshot_id() == loaded {
                return Ok(None);
            }
            load_version(&table, slot.clone()).await.map(Some)
        }
        .await;
        match result {
            Ok(None) => {}
            Ok(Some(version)) => {
                let previous = loaded;
                loaded = version.snapshot;
                version.install(&slot);
                info!(
                    table = %slot.name,
                    snapshot = ?loaded,
                    previous = ?previous,
                    took_ms = started.elapsed().as_millis() as u64,
                    "lookup table refreshed: batches from now on are joined with the new snapshot"
                );
            }
            Err(e) => {
                metrics().lookup_loads.add(&[&slot.name, "failed"], 1.0);
                if is_retryable(&e) {
                    warn!(table = %slot.name, error = %e, "lookup table could not be refreshed; joins go on with the version they have, and the next check tries again");
                } else {
                    error!(table = %slot.name, error = %e, "lookup table could not be refreshed; joins go on with the version they have, and the next check tries again");
                }
            }
        }
    }
}

fn is_retryable(e: &EngineError) -> bool {
    match e {
        EngineError::Catalog(c) => c.is_retryable(),
        EngineError::Lookup { retryable, .. } => *retryable,
        _ => false,
    }
}
