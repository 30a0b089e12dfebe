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
mod deletes;
mod expire;
mod live_files;
mod replace;
pub mod row_delta;

use std::time::Duration;

use std::collections::{BTreeSet, HashSet};

use floe_catalog::orphans::{remove_orphans, remove_superseded_metadata, scan_orphans};
use floe_catalog::{ManifestCache, OpenCatalog};
use iceberg::spec::FormatVersion;
use iceberg::table::Table;
use tracing::info;

pub use compact::CompactionConfig;
pub use cpu::StepCpu;
pub use expire::{ExpiryConfig, ExpiryOutcome};
pub use replace::{MAINTENANCE_KEY, ReplaceOutcome};

use crate::error::{Result, SinkError};
use crate::newest_table::NewestTable;
use crate::retry_policy::RetryPolicy;
use crate::writer::WriterConfig;
use deletes::{LiveDeletes, named_data_files};
use live_files::{ManifestContents, manifests_of};
use replace::{Replacement, commit_replace};

/// The steps of a pass, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// Small data files rewritten into target-size files.
    Compaction,
    /// Small manifests merged.
    Manifests,
    /// Old snapshots expired and the files only they reached removed.
    Expiry,
    /// `metadata.json` files older than the metadata log removed.
    Metadata,
    /// Files no snapshot reaches removed.
    Orphans,
}

impl Step {
    /// The step's name in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Compaction => "compaction",
            Self::Manifests => "manifests",
            Self::Expiry => "expiry",
            Self::Metadata => "metadata",
            Self::Orphans => "orphans",
        }
    }
}

/// Rewrites a pass plans and gives up (another writer's commit got in the way) before it
/// leaves compaction to the next pass.
const REWRITE_ATTEMPTS: usize = 3;

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
    /// Steps the caller holds back this pass (backing off after failures).
    pub paused: BTreeSet<Step>,
}

/// A step that failed; the pass went on with the next one.
#[derive(Debug, Clone)]
pub struct StepFailure {
    /// The step.
    pub step: Step,
    /// What went wrong.
    pub error: String,
    /// Whether the next pass may succeed without anything changing (a catalog or store
    /// that was down); a permanent failure backs off longer.
    pub retryable: bool,
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
    /// Position-delete files whose deletes the rewrite applied (and dropped).
    pub deletes_applied: usize,
    /// Rewrites given up and planned again in this pass before this one committed.
    pub retries: u32,
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
    /// Steps that failed (the others still ran).
    pub failures: Vec<StepFailure>,
    /// Steps this table cannot take, and why (for example compaction of a format-version
    /// 1 table); the caller says so once.
    pub skipped: Vec<(Step, String)>,
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

/// Runs one pass on `table` (freshly loaded) and returns the table as it left it. Each
/// step runs on its own: one that fails is recorded in the report and the next step
/// runs on the table reloaded. Manifests are read through `cache`; a caller that runs
/// passes repeatedly keeps one cache per table and calls [`ManifestCache::end_pass`]
/// after each.
pub async fn maintain(
    catalog: &OpenCatalog,
    table: Table,
    config: &MaintenanceConfig,
    policy: &RetryPolicy,
    cache: &ManifestCache,
) -> (Table, MaintenanceReport) {
    let mut pass = Pass {
        catalog,
        config,
        policy,
        cache,
        table,
        report: MaintenanceReport::default(),
        clock: cpu::StepClock::start(),
    };
    let rewrites = rewrite_unsupported(&pass.table);
    if config.compaction.is_some() && pass.runs(Step::Compaction) {
        match &rewrites {
            Some(why) => pass.skip(Step::Compaction, why),
            None => pass.compaction().await,
        }
        pass.report.cpu.compaction = Some(pass.clock.lap());
    }
    if pass.report.compaction.is_none() && pass.runs(Step::Manifests) {
        match &rewrites {
            Some(why) => pass.skip(Step::Manifests, why),
            None => pass.manifests().await,
        }
        pass.report.cpu.manifests = Some(pass.clock.lap());
    }
    if config.expiry.is_some() && pass.runs(Step::Expiry) {
        pass.expiry().await;
        pass.report.cpu.expiry = Some(pass.clock.lap());
    }
    if pass.runs(Step::Metadata) {
        let removed = remove_superseded_metadata(&pass.table, &catalog.store).await;
        if let Some(removed) = pass
            .outcome(Step::Metadata, removed.map_err(SinkError::from))
            .await
        {
            pass.report.superseded_removed = removed.len();
        }
    }
    if let Some(age) = config.orphan_age.filter(|_| pass.runs(Step::Orphans)) {
        pass.orphans(age).await;
        pass.report.cpu.orphans = Some(pass.clock.lap());
    }
    (pass.table, pass.report)
}

/// Why this table's files or manifests cannot be rewritten (its format version), if so.
fn rewrite_unsupported(table: &Table) -> Option<String> {
    let v = table.metadata().format_version();
    (v != FormatVersion::V2).then(|| {
        format!(
            "rewriting files and manifests needs a format-version 2 table; this one is {v} \
             (expiry and orphan cleanup still run)"
        )
    })
}

/// One pass in progress: the table as the last step left it, and the report so far.
struct Pass<'a> {
    catalog: &'a OpenCatalog,
    config: &'a MaintenanceConfig,
    policy: &'a RetryPolicy,
    cache: &'a ManifestCache,
    table: Table,
    report: MaintenanceReport,
    clock: cpu::StepClock,
}

impl Pass<'_> {
    fn runs(&self, step: Step) -> bool {
        !self.config.paused.contains(&step)
    }

    fn skip(&mut self, step: Step, why: &str) {
        self.report.skipped.push((step, why.to_string()));
    }

    /// The step's result, or None after recording its failure and reloading the table.
    async fn outcome<T>(&mut self, step: Step, result: Result<T>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.report.failures.push(StepFailure {
                    step,
                    error: e.to_string(),
                    retryable: e.is_retryable(),
                });
                let reloaded = self
                    .catalog
                    .catalog
                    .load_table(self.table.identifier())
                    .await;
                if let Ok(t) = reloaded {
                    self.table = t;
                }
                None
            }
        }
    }

    /// Compaction, planned again on the table reloaded when another writer's commit made
    /// a rewrite give up (it removed a rewritten file, or committed deletes for one), up
    /// to [`REWRITE_ATTEMPTS`] times: a table that takes deletes every few seconds still
    /// gets compacted, its latest deletes applied.
    async fn compaction(&mut self) {
        let Some(c) = &self.config.compaction else {
            return;
        };
        let (catalog, config, policy, cache) = (self.catalog, self.config, self.policy, self.cache);
        for attempt in 1..=REWRITE_ATTEMPTS {
            let result = compact_once(catalog, self.table.clone(), c, config, policy, cache).await;
            let result = match result {
                Err(SinkError::RewriteAbandoned { message, .. }) => {
                    info!(table = %self.table.identifier(), attempt, "compaction abandoned: {message}");
                    self.report.abandoned = Some(message);
                    crate::commit::refresh(catalog.catalog.as_ref(), &self.table, policy)
                        .await
                        .map(|t| (t, None))
                }
                other => other,
            };
            let Some((t, r)) = self.outcome(Step::Compaction, result).await else {
                return;
            };
            self.table = t;
            config.publish(&self.table);
            if let Some(mut r) = r {
                r.retries = attempt as u32 - 1;
                self.report.compaction = Some(r);
                return;
            }
            if self.report.abandoned.is_none() {
                return;
            }
        }
    }

    async fn manifests(&mut self) {
        let (catalog, policy, cache) = (self.catalog, self.policy, self.cache);
        let max = self.config.max_manifests;
        let result = merge_manifests(catalog, self.table.clone(), max, policy, cache).await;
        if let Some((t, merged)) = self.outcome(Step::Manifests, result).await {
            self.table = t;
            self.report.manifests = merged;
            self.config.publish(&self.table);
        }
    }

    async fn expiry(&mut self) {
        let Some(e) = &self.config.expiry else {
            return;
        };
        let config = self.config;
        let publish = |t: &Table| config.publish(t);
        let result = expire::expire(
            self.catalog,
            self.table.clone(),
            e,
            self.policy,
            self.cache,
            &publish,
        )
        .await;
        if let Some((t, outcome)) = self.outcome(Step::Expiry, result).await {
            self.table = t;
            self.report.expiry = outcome;
        }
    }

    /// Lists storage, then compares with the table loaded fresh (never with the state
    /// this pass left: other writers may have committed since).
    async fn orphans(&mut self, age: Duration) {
        let store = &self.catalog.store;
        let result = async {
            let scan = scan_orphans(
                self.catalog.catalog.as_ref(),
                &self.table,
                store,
                self.cache,
            )
            .await?;
            let (removed, _) = remove_orphans(&scan, store, age).await?;
            Ok::<_, SinkError>((scan.table, removed.len()))
        }
        .await;
        if let Some((t, removed)) = self.outcome(Step::Orphans, result).await {
            self.table = t;
            self.report.orphans_removed = removed;
        }
    }
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
    let removed: Vec<_> = bins
        .iter()
        .flat_map(|b| &b.files)
        .map(|c| c.file.file.clone())
        .collect();
    let removed_deletes = applied_deletes(&table, &manifests, &bins).await?;
    let r = Replacement {
        removed,
        added,
        spec_id: table.metadata().default_partition_spec_id(),
        removed_deletes,
        known_deletes: LiveDeletes::of(&table, &manifests)
            .paths()
            .into_iter()
            .map(str::to_string)
            .collect(),
        kind: "compaction",
        ..Replacement::default()
    };
    let (t, commit) =
        commit_replace(catalog, table, &r, config.max_manifests, policy, cache).await?;
    let bytes = |fs: &[iceberg::spec::DataFile]| fs.iter().map(|f| f.file_size_in_bytes()).sum();
    let report = CompactionReport {
        files_in: r.removed.len(),
        files_out: r.added.len(),
        bytes_in: bytes(&r.removed),
        bytes_out: bytes(&r.added),
        deletes_applied: r.removed_deletes.len(),
        retries: 0,
        commit,
    };
    Ok((t, Some(report)))
}

/// The position-delete files the rewrite of `bins` leaves nothing for: every data file
/// they name is rewritten (or no longer live). The others stay; they still apply to
/// files the rewrite did not touch.
async fn applied_deletes(
    table: &Table,
    manifests: &[ManifestContents],
    bins: &[compact::Bin],
) -> Result<Vec<iceberg::spec::DataFile>> {
    let rewritten: HashSet<&str> = bins
        .iter()
        .flat_map(|b| &b.files)
        .map(|c| c.file.file.file_path())
        .collect();
    let live: HashSet<&str> = manifests
        .iter()
        .flat_map(|m| m.live().map(|e| e.file_path()))
        .collect();
    let mut candidates: Vec<&iceberg::spec::DataFile> = bins
        .iter()
        .flat_map(|b| &b.files)
        .flat_map(|c| &c.deletes)
        .collect();
    candidates.sort_by_key(|d| d.file_path());
    candidates.dedup_by_key(|d| d.file_path());
    let mut out = vec![];
    for d in candidates {
        let named = named_data_files(table, d)
            .await
            .map_err(|e| SinkError::iceberg(table.identifier(), "reading position deletes", e))?;
        let done = named
            .iter()
            .all(|p| rewritten.contains(p.as_str()) || !live.contains(p.as_str()));
        if done {
            out.push(d.clone());
        }
    }
    Ok(out)
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
        Some(_) if rewrite_unsupported(table).is_some() => {
            plan.compaction_skipped = rewrite_unsupported(table);
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
        let scan = scan_orphans(catalog.catalog.as_ref(), table, &catalog.store, &cache).await?;
        let grace = floe_catalog::orphans::safe_grace(&scan.table, age)?.keep_younger_than;
        let all: Vec<_> = scan.data.iter().chain(&scan.metadata).collect();
        plan.orphans = (all.len(), all.iter().filter(|f| f.age >= grace).count());
    }
    Ok(plan)
}
