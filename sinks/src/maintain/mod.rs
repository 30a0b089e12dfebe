//! Table maintenance: what keeps a table that is committed every few seconds readable
//! after months.
//!
//! One pass, in this order, each step on the table state the previous one left:
//! 1. **compaction** ([`compact`]): small data files of a partition rewritten into
//!    target-size files, committed as a `replace` snapshot ([`replace`]);
//! 2. **manifest merging**: when the manifest list holds more than `max_manifests`,
//!    small manifests are merged into one (also a `replace` snapshot; compaction does it
//!    in the same commit when it runs);
//! 3. **snapshot expiry** ([`expire`]) by age and count, removing the files only expired
//!    snapshots reached;
//! 4. **superseded metadata**: `metadata.json` files older than the metadata log;
//! 5. **orphan cleanup**: data and metadata files no snapshot reaches, older than the
//!    safe grace (`floe_catalog::orphans`).
//!
//! A pass never touches the job's checkpoint or replay ledger (table properties), and a
//! job's appends landing during a pass only make the replace commit re-plan its
//! manifests. Every step is safe to interrupt: files written by an interrupted step are
//! orphans that a later pass removes.

mod compact;
mod cpu;
mod expire;
mod live_files;
mod replace;

use std::time::Duration;

use floe_catalog::orphans::{
    find_metadata_orphans, find_orphans, remove_metadata_orphans, remove_orphans,
    remove_superseded_metadata,
};
use floe_catalog::{ManifestCache, OpenCatalog};
use iceberg::table::Table;
use tracing::info;

pub use compact::CompactionConfig;
pub use cpu::StepCpu;
pub use expire::{ExpiryConfig, ExpiryOutcome};
pub use replace::{MAINTENANCE_KEY, ReplaceOutcome};

use crate::commit::RetryPolicy;
use crate::error::{Result, SinkError};
use crate::newest_table::NewestTable;
use crate::writer::WriterConfig;
use live_files::{has_live_deletes, manifests_of};
use replace::{Replacement, commit_replace};

/// What a pass does; `None` turns a step off.
#[derive(Debug, Clone)]
pub struct MaintenanceConfig {
    /// Compaction settings.
    pub compaction: Option<CompactionConfig>,
    /// The manifest list is kept at about this many manifests.
    pub max_manifests: usize,
    /// Snapshot retention.
    pub expiry: Option<ExpiryConfig>,
    /// Unreferenced files older than this (plus the slowest writer's commit interval)
    /// are removed.
    pub orphan_age: Option<Duration>,
    /// Names of compacted files start with this (each pass adds an id of its own).
    pub file_prefix: String,
    /// Where each commit of a pass publishes the table state it made, for the other
    /// committers of the table in this process (see [`NewestTable`]).
    pub publish_to: Option<NewestTable>,
}

/// What compaction did.
#[derive(Debug, Clone)]
pub struct CompactionReport {
    /// Files rewritten.
    pub files_in: usize,
    /// Files written.
    pub files_out: usize,
    /// Bytes rewritten.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// The replace snapshot.
    pub commit: ReplaceOutcome,
}

/// What a pass did.
#[derive(Debug, Clone, Default)]
pub struct MaintenanceReport {
    /// Compaction, when it rewrote files.
    pub compaction: Option<CompactionReport>,
    /// Why compaction gave up this time (another writer removed a rewritten file).
    pub abandoned: Option<String>,
    /// Manifest merging on its own, when it ran.
    pub manifests: Option<ReplaceOutcome>,
    /// Snapshot expiry.
    pub expiry: ExpiryOutcome,
    /// Orphan files removed (data and metadata).
    pub orphans_removed: usize,
    /// `metadata.json` files older than the metadata log removed.
    pub superseded_removed: usize,
    /// CPU per step (see [`StepCpu`] for when it means something).
    pub cpu: StepCpu,
}

/// What a pass would do now (`floe maintain --dry-run`).
#[derive(Debug, Clone, Default)]
pub struct MaintenancePlan {
    /// Files per compaction bin, with their bytes.
    pub bins: Vec<(usize, u64)>,
    /// Why compaction would not run, when it would not.
    pub compaction_skipped: Option<String>,
    /// Manifests in the current list.
    pub manifests: usize,
    /// Snapshots now, and how many expiry would keep at most.
    pub snapshots: usize,
    /// Snapshots older than the retention age.
    pub snapshots_past_age: usize,
    /// Orphans (data and metadata) and how many are past the grace.
    pub orphans: (usize, usize),
}

/// Runs one pass on `table` (freshly loaded) and returns the table as it left it.
/// Manifests are read through `cache`; a caller that runs passes repeatedly keeps one
/// cache per table and calls [`ManifestCache::end_pass`] after each.
pub async fn maintain(
    catalog: &OpenCatalog,
    table: Table,
    config: &MaintenanceConfig,
    policy: &RetryPolicy,
    cache: &ManifestCache,
) -> Result<(Table, MaintenanceReport)> {
    let name = table.identifier().to_string();
    let mut report = MaintenanceReport::default();
    let mut table = table;
    let mut clock = cpu::StepClock::start();
    if let Some(c) = &config.compaction {
        match compact_once(catalog, table.clone(), c, config, policy, cache).await {
            Ok((t, r)) => {
                table = t;
                report.compaction = r;
                config.publish(&table);
            }
            Err(SinkError::RewriteAbandoned { message, .. }) => {
                info!(table = %name, "compaction abandoned: {message}");
                report.abandoned = Some(message);
                table = crate::commit::refresh(catalog.catalog.as_ref(), &table, policy).await?;
            }
            Err(e) => return Err(e),
        }
        report.cpu.compaction = Some(clock.lap());
    }
    if report.compaction.is_none() {
        let (t, merged) =
            merge_manifests(catalog, table, config.max_manifests, policy, cache).await?;
        table = t;
        report.manifests = merged;
        config.publish(&table);
        report.cpu.manifests = Some(clock.lap());
    }
    if let Some(e) = &config.expiry {
        let publish = |t: &Table| config.publish(t);
        let (t, outcome) = expire::expire(catalog, table, e, policy, cache, &publish).await?;
        table = t;
        report.expiry = outcome;
        report.cpu.expiry = Some(clock.lap());
    }
    report.superseded_removed = remove_superseded_metadata(&table, &catalog.store)
        .await?
        .len();
    if let Some(age) = config.orphan_age {
        let (data, _) = remove_orphans(&table, &catalog.store, age, cache).await?;
        let metadata = remove_metadata_orphans(&table, &catalog.store, age, cache).await?;
        report.orphans_removed = data.len() + metadata.len();
        report.cpu.orphans = Some(clock.lap());
    }
    Ok((table, report))
}

impl MaintenanceConfig {
    fn publish(&self, table: &Table) {
        if let Some(n) = &self.publish_to {
            n.offer(table);
        }
    }
}

async fn compact_once(
    catalog: &OpenCatalog,
    table: Table,
    c: &CompactionConfig,
    config: &MaintenanceConfig,
    policy: &RetryPolicy,
    cache: &ManifestCache,
) -> Result<(Table, Option<CompactionReport>)> {
    let manifests = manifests_of(&table, cache).await?;
    if has_live_deletes(&manifests) {
        return Ok((table, None));
    }
    let bins = compact::plan(&table, &manifests, c);
    if bins.is_empty() {
        return Ok((table, None));
    }
    // A prefix of this pass's own: the writer numbers its files from 0, and a name an
    // earlier pass used may still be a live file (or be recorded as removed).
    let writer = WriterConfig {
        target_file_size: c.target_file_size,
        file_prefix: format!("{}-{}", config.file_prefix, uuid::Uuid::new_v4().simple()),
    };
    let added = compact::rewrite(&table, &bins, &writer).await?;
    let removed: Vec<_> = bins.into_iter().flat_map(|b| b.files).collect();
    let r = Replacement {
        removed,
        added,
        kind: "compaction",
    };
    let (t, commit) =
        commit_replace(catalog, table, &r, config.max_manifests, policy, cache).await?;
    let bytes = |fs: &[iceberg::spec::DataFile]| fs.iter().map(|f| f.file_size_in_bytes()).sum();
    let report = CompactionReport {
        files_in: r.removed.len(),
        files_out: r.added.len(),
        bytes_in: bytes(&r.removed),
        bytes_out: bytes(&r.added),
        commit,
    };
    Ok((t, Some(report)))
}

/// Merges small manifests when the list holds more than `max_manifests`, or drops
/// manifests that hold only deleted entries.
async fn merge_manifests(
    catalog: &OpenCatalog,
    table: Table,
    max_manifests: usize,
    policy: &RetryPolicy,
    cache: &ManifestCache,
) -> Result<(Table, Option<ReplaceOutcome>)> {
    let manifests = manifests_of(&table, cache).await?;
    let dead = manifests
        .iter()
        .any(|m| m.entries.iter().all(|e| !e.is_alive()));
    if manifests.len() <= max_manifests && !dead {
        return Ok((table, None));
    }
    let r = Replacement {
        kind: "manifests",
        ..Replacement::default()
    };
    let (t, outcome) = commit_replace(catalog, table, &r, max_manifests, policy, cache).await?;
    Ok((t, Some(outcome)))
}

/// What a pass would do on `table` now, changing nothing.
pub async fn plan(
    catalog: &OpenCatalog,
    table: &Table,
    config: &MaintenanceConfig,
) -> Result<MaintenancePlan> {
    let cache = ManifestCache::default();
    let manifests = manifests_of(table, &cache).await?;
    let mut plan = MaintenancePlan {
        manifests: manifests.len(),
        snapshots: table.metadata().snapshots().count(),
        ..MaintenancePlan::default()
    };
    match &config.compaction {
        None => plan.compaction_skipped = Some("compaction is off".into()),
        Some(_) if has_live_deletes(&manifests) => {
            plan.compaction_skipped = Some("the table has delete files".into());
        }
        Some(c) => {
            plan.bins = compact::plan(table, &manifests, c)
                .iter()
                .map(|b| (b.files.len(), b.bytes()))
                .collect();
        }
    }
    if let Some(e) = &config.expiry {
        let cutoff = std::time::SystemTime::now() - e.max_age;
        let cutoff_ms = cutoff
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        plan.snapshots_past_age = table
            .metadata()
            .snapshots()
            .filter(|s| s.timestamp_ms() < cutoff_ms)
            .count();
    }
    if let Some(age) = config.orphan_age {
        let grace = floe_catalog::orphans::safe_grace(table, age)?.keep_younger_than;
        let mut all = find_orphans(table, &catalog.store, &cache).await?;
        all.extend(find_metadata_orphans(table, &catalog.store, &cache).await?);
        plan.orphans = (all.len(), all.iter().filter(|f| f.age >= grace).count());
    }
    Ok(plan)
}
