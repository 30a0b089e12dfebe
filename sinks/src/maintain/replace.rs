//! The `replace` snapshot: data files swapped for others holding the same rows
//! (compaction), or manifests rewritten with the same live files (manifest merging).
//! Engines that read incrementally skip `replace` snapshots: they add no rows.
//!
//! ```text
//!  base = table as loaded
//!   ├─ every file to remove still live in base?  no ──▶ RewriteAbandoned (plan again later)
//!   ├─ manifests of base:
//!   │    untouched, large enough ──────────────▶ carried over as they are
//!   │    holding a removed file, or small while
//!   │    the list is past max_manifests ────────▶ their other live entries: one EXISTING manifest per spec
//!   │    delete-only (no live entry) ──────────▶ dropped
//!   │  + one ADDED manifest (new files, under the spec they were written with)
//!   │  + DELETED manifests (removed data files; position deletes the rewrite applied),
//!   │    one per content and spec
//!   ├─ manifest list + snapshot {operation: replace (overwrite or delete for a row
//!   │    delta, see `super::row_delta`), parent: base head, seq: next}
//!   └─ commit through the catalog's compare-and-swap, requiring main == base head
//!        ├─ ok ─────────────────────────────────────────▶ done
//!        └─ error ─▶ reload ─┬─ our snapshot id in the table ─▶ done (response lost)
//!                            ├─ main moved (a job's append) ─▶ plan the manifests again on it
//!                            └─ transient ─▶ back off, again; permanent ─▶ error
//! ```
//!
//! A job's appends commit between a rewrite and its commit all the time; they only add
//! manifests, so re-planning the manifests on the new head keeps the rewritten data
//! files. Only a removal of a rewritten file by another writer makes the rewrite give up:
//! its new files would resurrect deleted rows. Every attempt writes manifests under new
//! names, so an attempt whose outcome was unknown never loses its own files.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use floe_catalog::table_change::TableChange;
use floe_catalog::{ManifestCache, OpenCatalog};
use iceberg::ErrorKind;
use iceberg::spec::{
    DataFile, FormatVersion, ManifestContentType, ManifestEntryRef, ManifestFile,
    ManifestListWriter, ManifestWriterBuilder, Operation, SchemaRef, Snapshot,
    SnapshotSummaryCollector, Summary,
};
use iceberg::table::Table;

use super::deletes::{LiveDeletes, LiveFile};
use super::live_files::{ManifestContents, manifests_of};
use crate::commit_loop::{self, Attempt, Tried};
use crate::error::{Result, SinkError};
use crate::retry_policy::RetryPolicy;

/// Manifests smaller than this are merged once the list holds too many.
const SMALL_MANIFEST_BYTES: i64 = 8 * 1024 * 1024;

/// Summary key naming the maintenance that made a snapshot.
pub const MAINTENANCE_KEY: &str = "floe.maintenance";

/// What a replace snapshot changes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Replacement {
    /// Data files that leave the table (all must be live in the base).
    pub(crate) removed: Vec<DataFile>,
    /// Data files that hold the removed files' rows.
    pub(crate) added: Vec<DataFile>,
    /// The partition spec `added` were written with.
    pub(crate) spec_id: i32,
    /// Position-delete files the rewrite applied to every file they name (all must be
    /// live in the base).
    pub(crate) removed_deletes: Vec<DataFile>,
    /// Every delete file live when the rewrite was planned: it read them all, so only
    /// one outside this set can apply to a removed file without the rewrite knowing.
    pub(crate) known_deletes: HashSet<String>,
    /// Delete files that join the table (a row delta), under `spec_id`.
    pub(crate) added_deletes: Vec<DataFile>,
    /// Data files that must still be live (those the added deletes name).
    pub(crate) named: Vec<String>,
    /// More snapshot-summary entries.
    pub(crate) properties: HashMap<String, String>,
    /// `compaction` or `manifests`, recorded in the summary.
    pub(crate) kind: &'static str,
}

/// What a replace commit did.
#[derive(Debug, Clone)]
pub struct ReplaceOutcome {
    /// The new snapshot.
    pub snapshot_id: i64,
    /// Manifests in the list before and after.
    pub manifests: (usize, usize),
    /// Re-planned because another writer committed first.
    pub conflicts: u32,
    /// True when the catalog reported an error but the snapshot had landed.
    pub recovered: bool,
}

/// Commits `r` as a replace snapshot on `table`, re-planning the manifests when other
/// writers append meanwhile (see the module doc).
pub(crate) async fn commit_replace(
    catalog: &OpenCatalog,
    table: Table,
    r: &Replacement,
    max_manifests: usize,
    policy: &RetryPolicy,
    cache: &ManifestCache,
) -> Result<(Table, ReplaceOutcome)> {
    let mut replace = Replace {
        catalog,
        name: table.identifier().to_string(),
        r,
        max_manifests,
        policy,
        cache,
        planned: None,
    };
    let (table, (snapshot_id, manifests), stats) =
        commit_loop::run(catalog.catalog.as_ref(), table, policy, &mut replace).await?;
    let outcome = ReplaceOutcome {
        snapshot_id,
        manifests,
        conflicts: stats.conflicts,
        recovered: stats.recovered,
    };
    Ok((table, outcome))
}

/// A replace (or row-delta) snapshot, as the commit loop drives it.
struct Replace<'a> {
    catalog: &'a OpenCatalog,
    name: String,
    r: &'a Replacement,
    max_manifests: usize,
    policy: &'a RetryPolicy,
    cache: &'a ManifestCache,
    /// The last attempt's snapshot id and manifest counts, to recognise it once landed.
    planned: Option<(i64, (usize, usize))>,
}

impl Attempt for Replace<'_> {
    /// The snapshot id, and the manifests listed before and after.
    type Output = (i64, (usize, usize));

    fn what(&self) -> &'static str {
        "committing a replace snapshot"
    }

    async fn attempt(&mut self, base: &Table) -> Result<Tried<Self::Output>> {
        let (r, policy) = (self.r, self.policy);
        let manifests = manifests_of(base, self.cache).await?;
        check_still_live(&self.name, &manifests, r)?;
        check_no_new_deletes(&self.name, base, &manifests, r)?;
        let (snapshot, after) = build_snapshot(base, &manifests, r, self.max_manifests)
            .await
            .map_err(|e| {
                SinkError::iceberg(&self.name, "writing the replace snapshot's manifests", e)
            })?;
        let planned = (snapshot.snapshot_id(), (manifests.len(), after));
        self.planned = Some(planned);
        let change = TableChange::new_head(base, snapshot);
        policy.inject(&format!("{}-before-commit", r.kind));
        Ok(match self.catalog.commit_change(base, change).await {
            Ok(_) if policy.inject(&format!("{}-lost-response", r.kind)) => {
                Tried::Failed(iceberg::Error::new(
                    ErrorKind::Unexpected,
                    "injected: the replace commit landed but its response was lost",
                ))
            }
            Ok(t) => {
                policy.inject(&format!("{}-after-commit", r.kind));
                Tried::Landed(t, planned)
            }
            Err(e) => Tried::Failed(e),
        })
    }

    fn landed(&self, reloaded: &Table) -> Option<Self::Output> {
        let planned = self.planned?;
        reloaded
            .metadata()
            .snapshot_by_id(planned.0)
            .map(|_| planned)
    }
}

/// Every file the replacement removes must still be live: a file another writer removed
/// meanwhile would come back with the rewritten rows.
fn check_still_live(name: &str, manifests: &[ManifestContents], r: &Replacement) -> Result<()> {
    let live: HashSet<&str> = manifests
        .iter()
        .flat_map(|m| m.entries.iter().filter(|e| e.is_alive()))
        .map(|e| e.file_path())
        .collect();
    let gone: Vec<&str> = r
        .removed
        .iter()
        .chain(&r.removed_deletes)
        .map(DataFile::file_path)
        .chain(r.named.iter().map(String::as_str))
        .filter(|p| !live.contains(p))
        .collect();
    if gone.is_empty() {
        return Ok(());
    }
    Err(SinkError::RewriteAbandoned {
        table: name.to_string(),
        message: format!(
            "{} of the rewritten files were removed by another writer (first: {})",
            gone.len(),
            gone[0]
        ),
    })
}

/// No delete file that the rewrite did not read may apply to a file it removes: its
/// deleted rows would be in the new files, which it does not apply to (their sequence
/// number is newer). The next pass rewrites the files with those deletes applied.
fn check_no_new_deletes(
    name: &str,
    base: &Table,
    manifests: &[ManifestContents],
    r: &Replacement,
) -> Result<()> {
    let deletes = LiveDeletes::of(base, manifests);
    if deletes.is_empty() || r.removed.is_empty() {
        return Ok(());
    }
    let removed: HashSet<&str> = r.removed.iter().map(DataFile::file_path).collect();
    let new: HashSet<&str> = deletes
        .paths()
        .into_iter()
        .filter(|p| !r.known_deletes.contains(*p))
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    for m in manifests.iter().filter(|m| m.is_data()) {
        for e in m.live().filter(|e| removed.contains(e.file_path())) {
            let file = LiveFile::of(e, m.file.partition_spec_id);
            let mut applying = deletes.position_for(&file);
            applying.extend(deletes.equality_for(&file));
            let hit = applying.iter().any(|d| new.contains(d.file_path()));
            if hit {
                return Err(SinkError::RewriteAbandoned {
                    table: name.to_string(),
                    message: format!(
                        "another writer committed deletes for {} while it was rewritten",
                        e.file_path()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Writes the new manifests and manifest list; returns the snapshot and the number of
/// manifests it lists.
async fn build_snapshot(
    base: &Table,
    manifests: &[ManifestContents],
    r: &Replacement,
    max_manifests: usize,
) -> iceberg::Result<(Snapshot, usize)> {
    let md = base.metadata();
    if md.format_version() != FormatVersion::V2 {
        return Err(iceberg::Error::new(
            ErrorKind::FeatureUnsupported,
            format!(
                "maintenance writes format-version 2 tables; this one is {}",
                md.format_version()
            ),
        ));
    }
    let snapshot_id = unique_snapshot_id(base);
    let mut files = ManifestFiles::new(base, snapshot_id);
    let removed: HashSet<&str> = r
        .removed
        .iter()
        .chain(&r.removed_deletes)
        .map(DataFile::file_path)
        .collect();
    let (kept, merged) = choose_manifests(manifests, &removed, max_manifests);
    let mut list: Vec<ManifestFile> = kept.iter().map(|m| m.file.clone()).collect();
    list.extend(files.existing(&merged, &removed).await?);
    if !r.added.is_empty() {
        let data = ManifestContentType::Data;
        list.push(files.added(data, r.spec_id, &r.added).await?);
    }
    if !r.added_deletes.is_empty() {
        let deletes = ManifestContentType::Deletes;
        list.push(files.added(deletes, r.spec_id, &r.added_deletes).await?);
    }
    list.extend(files.deleted(&merged, &removed).await?);
    let count = list.len();
    let list_path = format!(
        "{}/metadata/snap-{snapshot_id}-0-{}.avro",
        md.location(),
        uuid::Uuid::new_v4()
    );
    let seq = md.next_sequence_number();
    let out = base.file_io().new_output(&list_path)?.writer().await?;
    let mut writer = ManifestListWriter::v2(out, snapshot_id, md.current_snapshot_id(), seq);
    writer.add_manifests(list.into_iter())?;
    writer.close().await?;
    let snapshot = Snapshot::builder()
        .with_manifest_list(list_path)
        .with_snapshot_id(snapshot_id)
        .with_parent_snapshot_id(md.current_snapshot_id())
        .with_sequence_number(seq)
        .with_summary(summary(base, manifests, r))
        .with_schema_id(md.current_schema_id())
        .with_timestamp_ms(now_ms())
        .build();
    Ok((snapshot, count))
}

/// Splits the manifests into those carried over and those whose live entries are
/// rewritten into new manifests.
fn choose_manifests<'a>(
    manifests: &'a [ManifestContents],
    removed: &HashSet<&str>,
    max_manifests: usize,
) -> (Vec<&'a ManifestContents>, Vec<&'a ManifestContents>) {
    let (mut kept, mut merged) = (vec![], vec![]);
    for m in manifests {
        let touched = m
            .entries
            .iter()
            .any(|e| e.is_alive() && removed.contains(e.file_path()));
        let dead = m.entries.iter().all(|e| !e.is_alive());
        if dead {
            continue;
        }
        if touched {
            merged.push(m)
        } else {
            kept.push(m)
        }
    }
    if kept.len() + merged.len() > max_manifests {
        let (small, large): (Vec<_>, Vec<_>) = kept
            .into_iter()
            .partition(|m| m.is_data() && m.file.manifest_length < SMALL_MANIFEST_BYTES);
        merged.extend(small);
        kept = large;
    }
    (kept, merged)
}

/// Writes the new manifests of one snapshot under names of their own.
struct ManifestFiles<'a> {
    base: &'a Table,
    snapshot_id: i64,
    prefix: String,
    next: usize,
}

impl<'a> ManifestFiles<'a> {
    fn new(base: &'a Table, snapshot_id: i64) -> Self {
        let prefix = format!(
            "{}/metadata/{}",
            base.metadata().location(),
            uuid::Uuid::new_v4()
        );
        Self {
            base,
            snapshot_id,
            prefix,
            next: 0,
        }
    }

    fn writer(&mut self, group: &Group) -> iceberg::Result<iceberg::spec::ManifestWriter> {
        let (content, spec_id) = (group.content, group.spec_id);
        let md = self.base.metadata();
        let spec = md.partition_spec_by_id(spec_id).ok_or_else(|| {
            iceberg::Error::new(
                ErrorKind::DataInvalid,
                format!("no partition spec {spec_id}"),
            )
        })?;
        let path = format!("{}-m{}.avro", self.prefix, self.next);
        self.next += 1;
        let out = self.base.file_io().new_output(path)?;
        let builder = ManifestWriterBuilder::new(
            out,
            Some(self.snapshot_id),
            group.schema.clone(),
            spec.as_ref().clone(),
        );
        Ok(match content {
            ManifestContentType::Data => builder.build_v2_data(),
            ManifestContentType::Deletes => builder.build_v2_deletes(),
        })
    }

    /// The live entries of `merged` that stay, as EXISTING entries, one manifest per
    /// content and spec.
    async fn existing(
        &mut self,
        merged: &[&ManifestContents],
        removed: &HashSet<&str>,
    ) -> iceberg::Result<Vec<ManifestFile>> {
        let mut out = vec![];
        for (group, entries) in grouped(merged, |e| !removed.contains(e.file_path())) {
            let mut w = self.writer(&group)?;
            for e in entries {
                let (snapshot, seq) = inherited(e)?;
                w.add_existing_file(e.data_file().clone(), snapshot, seq, e.file_sequence_number)?;
            }
            out.push(w.write_manifest_file().await?);
        }
        Ok(out)
    }

    /// New files of `content` written for spec `spec_id` with the table's schema.
    async fn added(
        &mut self,
        content: ManifestContentType,
        spec_id: i32,
        files: &[DataFile],
    ) -> iceberg::Result<ManifestFile> {
        let group = Group {
            content,
            spec_id,
            schema: self.base.metadata().current_schema().clone(),
        };
        let mut w = self.writer(&group)?;
        for f in files {
            // -1: the data sequence number is inherited from the snapshot.
            w.add_file(f.clone(), -1)?;
        }
        w.write_manifest_file().await
    }

    /// The live entries of `merged` that leave, as DELETED entries, one manifest per
    /// content and spec.
    async fn deleted(
        &mut self,
        merged: &[&ManifestContents],
        removed: &HashSet<&str>,
    ) -> iceberg::Result<Vec<ManifestFile>> {
        let mut out = vec![];
        for (group, entries) in grouped(merged, |e| removed.contains(e.file_path())) {
            let mut w = self.writer(&group)?;
            for e in entries {
                let (_, seq) = inherited(e)?;
                w.add_delete_file(e.data_file().clone(), seq, e.file_sequence_number)?;
            }
            out.push(w.write_manifest_file().await?);
        }
        Ok(out)
    }
}

/// What one manifest holds: data or deletes, of one partition spec, with partition
/// values typed by one schema (entries keep the types they were written with).
struct Group {
    content: ManifestContentType,
    spec_id: i32,
    schema: SchemaRef,
}

/// The live entries of `manifests` that `pick` chooses, grouped by content, spec and
/// the schema their manifest was written with.
fn grouped<'m>(
    manifests: &[&'m ManifestContents],
    pick: impl Fn(&ManifestEntryRef) -> bool,
) -> Vec<(Group, Vec<&'m ManifestEntryRef>)> {
    let mut by_group: BTreeMap<(bool, i32, i32), (Group, Vec<&ManifestEntryRef>)> = BTreeMap::new();
    for m in manifests {
        let key = (m.is_data(), m.file.partition_spec_id, m.schema.schema_id());
        let (_, entries) = by_group.entry(key).or_insert_with(|| {
            let group = Group {
                content: m.file.content,
                spec_id: m.file.partition_spec_id,
                schema: m.schema.clone(),
            };
            (group, vec![])
        });
        entries.extend(m.entries.iter().filter(|e| e.is_alive() && pick(e)));
    }
    by_group
        .into_values()
        .filter(|(_, entries)| !entries.is_empty())
        .collect()
}

/// The snapshot id and data sequence number of an entry read from a manifest (filled in
/// from the manifest when the entry left them to inheritance).
fn inherited(e: &ManifestEntryRef) -> iceberg::Result<(i64, i64)> {
    match (e.snapshot_id(), e.sequence_number()) {
        (Some(s), Some(q)) => Ok((s, q)),
        _ => Err(iceberg::Error::new(
            ErrorKind::DataInvalid,
            format!(
                "manifest entry of {} has no snapshot id or sequence number",
                e.file_path()
            ),
        )),
    }
}

/// The summary: what moved, totals counted from the manifests themselves.
fn summary(base: &Table, manifests: &[ManifestContents], r: &Replacement) -> Summary {
    let md = base.metadata();
    let schema = md.current_schema().clone();
    let spec = md
        .partition_spec_by_id(r.spec_id)
        .unwrap_or_else(|| md.default_partition_spec())
        .clone();
    let mut collector = SnapshotSummaryCollector::default();
    for f in r.added.iter().chain(&r.added_deletes) {
        collector.add_file(f, schema.clone(), spec.clone());
    }
    // A removed file's partition values have the types of the schema its manifest was
    // written with (older than the table's after a promotion), under its own spec.
    let written_with: HashMap<&str, &ManifestContents> = manifests
        .iter()
        .flat_map(|m| m.entries.iter().map(move |e| (e.file_path(), m)))
        .collect();
    for f in r.removed.iter().chain(&r.removed_deletes) {
        let (schema, spec) = match written_with.get(f.file_path()) {
            Some(m) => match md.partition_spec_by_id(m.file.partition_spec_id) {
                Some(spec) => (m.schema.clone(), spec.clone()),
                None => (schema.clone(), spec.clone()),
            },
            None => (schema.clone(), spec.clone()),
        };
        collector.remove_file(f, schema, spec);
    }
    let mut props: HashMap<String, String> = collector.build();
    let live: Vec<&ManifestEntryRef> = manifests
        .iter()
        .flat_map(|m| m.entries.iter().filter(|e| e.is_alive()))
        .collect();
    let data = live
        .iter()
        .filter(|e| e.content_type() == iceberg::spec::DataContentType::Data);
    let (mut files, mut records, mut bytes) = (0i64, 0i64, 0i64);
    for e in data {
        files += 1;
        records += e.record_count() as i64;
        bytes += e.file_size_in_bytes() as i64;
    }
    let sum =
        |fs: &[DataFile], f: fn(&DataFile) -> u64| fs.iter().map(|d| f(d) as i64).sum::<i64>();
    let delete_files =
        live.len() as i64 - files - r.removed_deletes.len() as i64 + r.added_deletes.len() as i64;
    props.insert(
        "total-data-files".into(),
        (files + r.added.len() as i64 - r.removed.len() as i64).to_string(),
    );
    props.insert(
        "total-records".into(),
        (records + sum(&r.added, DataFile::record_count) - sum(&r.removed, DataFile::record_count))
            .to_string(),
    );
    props.insert(
        "total-files-size".into(),
        (bytes + sum(&r.added, DataFile::file_size_in_bytes)
            - sum(&r.removed, DataFile::file_size_in_bytes))
        .to_string(),
    );
    props.insert("total-delete-files".into(), delete_files.to_string());
    let previous = md.current_snapshot().map(|s| s.summary());
    let moved = sum(&r.added_deletes, DataFile::record_count)
        - sum(&r.removed_deletes, DataFile::record_count);
    for (key, change) in [
        ("total-position-deletes", moved),
        ("total-equality-deletes", 0),
    ] {
        let carried: i64 = previous
            .and_then(|s| s.additional_properties.get(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        props.insert(key.into(), (carried + change).max(0).to_string());
    }
    let operation = match (r.added_deletes.is_empty(), r.added.is_empty()) {
        (true, _) => {
            props.insert(MAINTENANCE_KEY.into(), r.kind.into());
            Operation::Replace
        }
        (false, true) => Operation::Delete,
        (false, false) => Operation::Overwrite,
    };
    props.extend(r.properties.clone());
    Summary {
        operation,
        additional_properties: props,
    }
}

fn unique_snapshot_id(table: &Table) -> i64 {
    loop {
        let (a, b) = uuid::Uuid::new_v4().as_u64_pair();
        let id = ((a ^ b) & (i64::MAX as u64)) as i64;
        if id != 0 && table.metadata().snapshot_by_id(id).is_none() {
            return id;
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
