//! The coordinator's durable state, on sled.
//!
//! This module is the only one that touches sled (DESIGN invariant 8): it
//! owns the tree names, the key encodings ([`keys`]), the value encodings and
//! the schema version. Everything else sees typed records.
//!
//! Durability: sled writes reach disk on [`Store::flush`]. Observations go
//! through [`Store::commit_observations`], which returns once they are
//! flushed ([`commit`]: batches of many agents share one flush); the agent
//! link acknowledges a batch only after that, so an acknowledged
//! observation survives a crash (DESIGN invariant 1).

mod backup;
mod commit;
mod findings;
mod fleet;
pub mod keys;
mod migrate;
mod observations;
pub mod records;
mod schedule;
mod tickets;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use itertools::Either;
use prost::Message;
use vantage_proto::v1;
use vantage_shared::{BaselineEntry, Period};

pub use backup::{BackupError, Header as BackupHeader, Summary as BackupSummary, verify as verify_backup};
pub use findings::Document;
pub use fleet::{AgentRecord, Revocation, TokenRecord, TokenRefusal};
pub use observations::ObservationWrites;
pub use records::{BaselineRecord, ScanRecord, ShardRecord, ShardState, ShardStats};

/// Version of the layout below. Bump it with a forward migration.
/// 1: one sled key per baseline entry. 2: baseline entries in blocks.
/// 3: findings' history events carry their kind. 4: observations in
/// blocks, one per batch ([`observations`]). See [`migrate`].
pub const SCHEMA_VERSION: u32 = 4;

const TREE_META: &str = "meta";
const TREE_SCANS: &str = "scans";
const TREE_SHARDS: &str = "shards";
/// Schema 3's tree of one key per observation, read in place.
const TREE_OBSERVATIONS_V3: &str = "observations";
const TREE_OBSERVATION_BLOCKS: &str = "observation_blocks";
const TREE_BASELINES: &str = "baselines";
/// Schema 1's tree of single baseline entries, migrated into blocks.
const TREE_BASELINE_ENTRIES_V1: &str = "baseline_entries";
const TREE_BASELINE_BLOCKS: &str = "baseline_blocks";
const TREE_FINDINGS: &str = "findings";
const TREE_DOCUMENTS: &str = "documents";
const TREE_VULNS: &str = "vulns";
const TREE_AGENTS: &str = "agents";
const TREE_TOKENS: &str = "join_tokens";
const TREE_TICKETS: &str = "tickets";
const TREE_OUTBOX: &str = "notify_outbox";
const TREE_ESCALATIONS: &str = "escalations";
/// Baseline entries per sled value, compressed with LZ4. A month's baseline
/// is millions of ports, only ever read whole and in order. Measured on 2M
/// entries: one key per entry spent 4.6-6.5 s in per-key overhead; sled's
/// memory follows the bytes it has read, whatever its cache size (300 MiB
/// for 380 MiB of blocks), and LZ4 blocks of 512 cut those bytes by 3-4x.
const BASELINE_BLOCK: usize = 512;
/// Blocks written per sled batch.
const BASELINE_BATCH: usize = 32;
/// Decoded blocks a reader keeps ready ahead of its consumer.
const READ_AHEAD: usize = 4;
/// sled's page cache (default 1 GiB). The store's big reads are sequential
/// scans, which a small cache serves as well.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;
const KEY_SCHEMA: &[u8] = b"schema_version";
const KEY_LAST_SCAN: &[u8] = b"last_scan_id";
const LOCK_FILE: &str = "vantage.lock";
/// How long `Store::open` waits for a closing sled instance to let go.
const SLED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "data directory {0} is in use by another Vantage process (is `vantage serve` running there? then pass --coordinator)"
    )]
    Locked(PathBuf),
    #[error(
        "store at {path} was written by a newer Vantage (schema {found}, this build reads up to {supported}); upgrade Vantage"
    )]
    NewerSchema { path: PathBuf, found: u32, supported: u32 },
    #[error("store at {path} is corrupt ({detail}); restore it from a backup")]
    Corrupt { path: PathBuf, detail: String },
    #[error("cannot decode stored {what}: {detail}")]
    Decode { what: &'static str, detail: String },
    #[error("baseline entries out of order: {next} after {previous} (send them sorted by address, port, protocol)")]
    Unordered { previous: String, next: String },
    #[error("store I/O failed: {0}")]
    Io(#[from] sled::Error),
    #[error("storing observations failed: {0}")]
    Commit(String),
}

/// Typed access to every tree.
#[derive(Clone)]
pub struct Store {
    /// Held (flock) for as long as any clone of the store lives.
    _lock: Arc<std::fs::File>,
    db: sled::Db,
    meta: sled::Tree,
    scans: sled::Tree,
    shards: sled::Tree,
    observations_v3: sled::Tree,
    observation_blocks: sled::Tree,
    baselines: sled::Tree,
    baseline_blocks: sled::Tree,
    findings: sled::Tree,
    documents: sled::Tree,
    vulns: sled::Tree,
    agents: sled::Tree,
    tokens: sled::Tree,
    tickets: sled::Tree,
    outbox: sled::Tree,
    escalations: sled::Tree,
    /// The group committer's queue, started with the first commit.
    commit: Arc<Mutex<Option<commit::GroupCommit>>>,
    /// Runs before each group is flushed: tests stall or slow the committer.
    #[cfg(test)]
    commit_hook: Arc<Mutex<Option<commit::Hook>>>,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let lock = take_lock(dir)?;
        let db = open_sled(dir)?;
        let meta = db.open_tree(TREE_META)?;
        let found = match meta.get(KEY_SCHEMA)? {
            None => SCHEMA_VERSION,
            Some(v) => <[u8; 4]>::try_from(v.as_ref())
                .map(u32::from_be_bytes)
                .map_err(|_| StoreError::Corrupt { path: dir.into(), detail: "bad schema version".into() })?,
        };
        if found > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema { path: dir.into(), found, supported: SCHEMA_VERSION });
        }
        let store = Store {
            scans: db.open_tree(TREE_SCANS)?,
            shards: db.open_tree(TREE_SHARDS)?,
            observations_v3: db.open_tree(TREE_OBSERVATIONS_V3)?,
            observation_blocks: db.open_tree(TREE_OBSERVATION_BLOCKS)?,
            baselines: db.open_tree(TREE_BASELINES)?,
            baseline_blocks: db.open_tree(TREE_BASELINE_BLOCKS)?,
            findings: db.open_tree(TREE_FINDINGS)?,
            documents: db.open_tree(TREE_DOCUMENTS)?,
            vulns: db.open_tree(TREE_VULNS)?,
            agents: db.open_tree(TREE_AGENTS)?,
            tokens: db.open_tree(TREE_TOKENS)?,
            tickets: db.open_tree(TREE_TICKETS)?,
            outbox: db.open_tree(TREE_OUTBOX)?,
            escalations: db.open_tree(TREE_ESCALATIONS)?,
            meta,
            db,
            _lock: Arc::new(lock),
            commit: Arc::default(),
            #[cfg(test)]
            commit_hook: Arc::default(),
        };
        store.migrate(found)?;
        store.meta.insert(KEY_SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
        store.db.flush()?;
        Ok(store)
    }

    /// Makes every write so far durable.
    ///
    /// On a thread of tokio's blocking pool, never with sled's
    /// `flush_async`: that one runs on sled's own small I/O pool, which
    /// also writes the log buffers a flush waits for. Fifty agents' flushes
    /// at once filled that pool with flushes blocked behind a batch's write
    /// lock, and nothing was left to write the buffer they all waited for:
    /// the coordinator hung (sled issue #1308; bench/README.md, "Ingest").
    pub async fn flush(&self) -> Result<(), StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e).into()))??;
        Ok(())
    }

    /// Bytes the store takes on disk (sled's own count), for the metrics.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    /// A fresh scan id, never handed out before (also across restarts, once
    /// flushed): 1, 2, 3, ... (sled's own id generator leaps by a million
    /// after every restart, which is no id for people to type).
    pub fn next_scan_id(&self) -> Result<u64, StoreError> {
        self.next_counter(KEY_LAST_SCAN)
    }

    /// Counts up the counter at `key` in the meta tree.
    fn next_counter(&self, key: &[u8]) -> Result<u64, StoreError> {
        let next = self.meta.update_and_fetch(key, |old| {
            let last = old.and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_be_bytes);
            Some((last + 1).to_be_bytes().to_vec())
        })?;
        let bytes = next.expect("the closure always stores a value");
        Ok(u64::from_be_bytes(bytes.as_ref().try_into().expect("8 bytes")))
    }

    pub fn put_scan(&self, scan: &ScanRecord) -> Result<(), StoreError> {
        self.scans.insert(keys::scan_key(scan.id), encode_json(scan))?;
        Ok(())
    }

    pub fn scan(&self, id: u64) -> Result<Option<ScanRecord>, StoreError> {
        self.scans.get(keys::scan_key(id))?.map(|v| decode_json(&v, "scan")).transpose()
    }

    /// Every scan, oldest first.
    pub fn scans(&self) -> Result<Vec<ScanRecord>, StoreError> {
        self.scans.iter().map(|kv| decode_json(&kv?.1, "scan")).collect()
    }

    pub fn latest_scan_id(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.scans.last()?.map(|(k, _)| u64::from_be_bytes(k.as_ref().try_into().unwrap_or_default())))
    }

    pub fn put_shards(&self, shards: &[ShardRecord]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for s in shards {
            batch.insert(&keys::shard_key(s.scan_id, s.shard_id), encode_json(s));
        }
        self.shards.apply_batch(batch)?;
        Ok(())
    }

    pub fn put_shard(&self, shard: &ShardRecord) -> Result<(), StoreError> {
        self.shards.insert(keys::shard_key(shard.scan_id, shard.shard_id), encode_json(shard))?;
        Ok(())
    }

    pub fn shard(&self, scan_id: u64, shard_id: u64) -> Result<Option<ShardRecord>, StoreError> {
        self.shards.get(keys::shard_key(scan_id, shard_id))?.map(|v| decode_json(&v, "shard")).transpose()
    }

    /// The shards of one scan, in shard order.
    pub fn shards(&self, scan_id: u64) -> Result<Vec<ShardRecord>, StoreError> {
        self.shards.scan_prefix(keys::scan_key(scan_id)).map(|kv| decode_json(&kv?.1, "shard")).collect()
    }

    /// Stores observations and returns once they are on disk, flushed with
    /// the other batches waiting at the time (group commit, [`commit`]).
    /// Waits while the committer's queue is full. Until it returns, some of
    /// them may be stored and not yet durable.
    pub async fn commit_observations(&self, writes: ObservationWrites) -> Result<(), StoreError> {
        self.committer()?.commit(&self.observation_blocks, writes.key.to_vec(), writes.block).await
    }

    fn committer(&self) -> Result<commit::GroupCommit, StoreError> {
        let mut slot = self.commit.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = commit::GroupCommit::start(
            self.db.clone(),
            #[cfg(test)]
            self.commit_hook.clone(),
        )?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Runs `hook` on the committer's thread before it flushes each group.
    #[cfg(test)]
    pub(crate) fn set_commit_hook(&self, hook: impl Fn() + Send + Sync + 'static) {
        *self.commit_hook.lock().unwrap() = Some(Arc::new(hook));
    }

    /// Flush requests waiting in the committer's queue now.
    #[cfg(test)]
    pub(crate) fn commits_queued(&self) -> usize {
        self.commit.lock().unwrap().as_ref().map_or(0, commit::GroupCommit::queued)
    }
}

impl Store {
    /// Writes the entries of a baseline revision (blocking), which must come
    /// in key order. They stay invisible until [`Store::commit_baseline`]
    /// writes the revision's record, so a build cut short leaves nothing
    /// half-visible.
    pub fn put_baseline_entries(
        &self,
        period: Period,
        revision: u32,
        entries: impl Iterator<Item = Result<BaselineEntry, StoreError>>,
    ) -> Result<u64, StoreError> {
        let mut writer = self.baseline_writer(period, revision);
        for e in entries {
            writer.push(&e?)?;
        }
        writer.finish()
    }

    /// A writer for a baseline revision's entries that arrive in pieces
    /// (an import stream); see [`Store::put_baseline_entries`].
    pub fn baseline_writer(&self, period: Period, revision: u32) -> BaselineWriter {
        BaselineWriter::with_prefix(self.baseline_blocks.clone(), &keys::baseline_key(period, revision))
    }

    /// Makes a revision visible: its entries are flushed, then its record.
    pub async fn commit_baseline(&self, record: &BaselineRecord) -> Result<(), StoreError> {
        self.flush().await?;
        self.baselines.insert(keys::baseline_key(record.period, record.revision), encode_json(record))?;
        self.flush().await
    }

    /// Every baseline revision, by period then revision.
    pub fn baselines(&self) -> Result<Vec<BaselineRecord>, StoreError> {
        self.baselines.iter().map(|kv| decode_json(&kv?.1, "baseline")).collect()
    }

    /// The newest revision of a period's baseline.
    pub fn current_baseline(&self, period: Period) -> Result<Option<BaselineRecord>, StoreError> {
        let prefix = period.number().to_be_bytes();
        self.baselines.scan_prefix(prefix).next_back().map(|kv| decode_json(&kv?.1, "baseline")).transpose()
    }

    /// The entries of one baseline revision, in (address, protocol, port)
    /// order. A thread of its own reads and decodes the blocks a few ahead,
    /// so the two sides of a diff decode on two cores.
    pub fn baseline_entries(
        &self,
        period: Period,
        revision: u32,
    ) -> impl Iterator<Item = Result<BaselineEntry, StoreError>> + Send + use<> {
        let blocks = self.baseline_blocks.scan_prefix(keys::baseline_key(period, revision));
        let (tx, rx) = std::sync::mpsc::sync_channel(READ_AHEAD);
        let reader = std::thread::Builder::new().name("baseline-read".into()).spawn(move || {
            for kv in blocks {
                let block = match kv {
                    Ok((_, v)) => match lz4_flex::decompress_size_prepended(&v) {
                        Ok(raw) => decode_block(&raw),
                        Err(e) => vec![Err(StoreError::Decode { what: "baseline block", detail: e.to_string() })],
                    },
                    Err(e) => vec![Err(e.into())],
                };
                // A consumer that stopped early hangs up: stop too.
                if tx.send(block).is_err() {
                    break;
                }
            }
        });
        match reader {
            Ok(_) => Either::Left(rx.into_iter().flatten()),
            Err(e) => Either::Right(std::iter::once(Err(StoreError::Io(e.into())))),
        }
    }
}

/// Writes one baseline revision's entries in blocks of [`BASELINE_BLOCK`],
/// each a sled value of length-delimited entries keyed by its first entry.
/// Entries must come in strictly increasing (address, protocol, port) order:
/// the blocks' order is their keys' order, and a diff merge-joins on it.
pub struct BaselineWriter {
    tree: sled::Tree,
    prefix: Vec<u8>,
    block: Vec<u8>,
    first: Option<Vec<u8>>,
    in_block: usize,
    last: Option<vantage_shared::PortKey>,
    batch: sled::Batch,
    in_batch: usize,
    total: u64,
}

impl BaselineWriter {
    fn with_prefix(tree: sled::Tree, prefix: &[u8]) -> BaselineWriter {
        BaselineWriter {
            tree,
            prefix: prefix.to_vec(),
            block: Vec::new(),
            first: None,
            in_block: 0,
            last: None,
            batch: sled::Batch::default(),
            in_batch: 0,
            total: 0,
        }
    }

    pub fn push(&mut self, e: &BaselineEntry) -> Result<(), StoreError> {
        let key = e.key();
        if let Some(last) = self.last
            && last >= key
        {
            return Err(StoreError::Unordered {
                previous: format!("{} {}/{}", last.0, last.2, last.1),
                next: format!("{} {}/{}", e.addr, e.port, e.proto),
            });
        }
        self.last = Some(key);
        if self.first.is_none() {
            let mut k = self.prefix.clone();
            keys::push_port_key(&mut k, e.addr, e.proto, e.port);
            self.first = Some(k);
        }
        v1::BaselineEntry::from(e).encode_length_delimited(&mut self.block).expect("a Vec grows");
        self.in_block += 1;
        self.total += 1;
        if self.in_block == BASELINE_BLOCK {
            self.end_block()?;
        }
        Ok(())
    }

    fn end_block(&mut self) -> Result<(), StoreError> {
        if let Some(key) = self.first.take() {
            self.batch.insert(key, lz4_flex::compress_prepend_size(&std::mem::take(&mut self.block)));
            self.in_block = 0;
            self.in_batch += 1;
            if self.in_batch == BASELINE_BATCH {
                self.tree.apply_batch(std::mem::take(&mut self.batch))?;
                self.in_batch = 0;
            }
        }
        Ok(())
    }

    /// Writes what is left; the number of entries written.
    pub fn finish(mut self) -> Result<u64, StoreError> {
        self.end_block()?;
        self.tree.apply_batch(std::mem::take(&mut self.batch))?;
        Ok(self.total)
    }
}

fn decode_block(mut bytes: &[u8]) -> Vec<Result<BaselineEntry, StoreError>> {
    let mut out = Vec::with_capacity(BASELINE_BLOCK);
    while !bytes.is_empty() {
        let entry = decode_entry(v1::BaselineEntry::decode_length_delimited(&mut bytes));
        let failed = entry.is_err();
        out.push(entry);
        if failed {
            break;
        }
    }
    out
}

fn decode_entry(wire: Result<v1::BaselineEntry, prost::DecodeError>) -> Result<BaselineEntry, StoreError> {
    let wire = wire.map_err(|e| StoreError::Decode { what: "baseline entry", detail: e.to_string() })?;
    BaselineEntry::try_from(wire).map_err(|e| StoreError::Decode { what: "baseline entry", detail: e.to_string() })
}

/// Opens sled under our lock. sled lets go of its own file lock only when
/// its last background thread drops the database, a moment after the
/// handle itself is dropped; since we hold `vantage.lock`, a sled lock held
/// now belongs to an instance of this process on its way out (the embedded
/// coordinator reopens the store between a review's steps), so wait for it.
fn open_sled(dir: &Path) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + SLED_LOCK_WAIT;
    loop {
        match sled::Config::new().path(dir).cache_capacity(CACHE_BYTES).open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e @ sled::Error::Corruption { .. }) => {
                return Err(StoreError::Corrupt { path: dir.into(), detail: e.to_string() });
            }
            Err(e) => return Err(StoreError::Io(e)),
        }
    }
}

/// One process per data directory. sled locks its files too, but reports a
/// conflict only as text; this lock tells it apart by type.
fn take_lock(dir: &Path) -> Result<std::fs::File, StoreError> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::Io(e.into()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked(dir.into())),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Io(e.into())),
    }
}

fn encode_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialize")
}

fn decode_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode { what, detail: e.to_string() })
}

#[cfg(test)]
mod tests;
