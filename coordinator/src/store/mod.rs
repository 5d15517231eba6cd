//! The coordinator's durable state, on sled.
//!
//! This module is the only one that touches sled (DESIGN invariant 8): it
//! owns the tree names, the key encodings ([`keys`]), the value encodings and
//! the schema version. Everything else sees typed records.
//!
//! Durability: sled writes reach disk on [`Store::flush`]; the agent link
//! calls it after storing a batch and before acknowledging it, so an
//! acknowledged observation survives a crash (DESIGN invariant 1).

pub mod keys;
pub mod records;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use prost::Message;
use vantage_proto::v1;
use vantage_shared::{BaselineEntry, Observation, Period};

pub use records::{BaselineRecord, ScanRecord, ShardRecord, ShardState, ShardStats};

/// Version of the layout below. Bump it with a forward migration.
pub const SCHEMA_VERSION: u32 = 1;

const TREE_META: &str = "meta";
const TREE_SCANS: &str = "scans";
const TREE_SHARDS: &str = "shards";
const TREE_OBSERVATIONS: &str = "observations";
const TREE_BASELINES: &str = "baselines";
const TREE_BASELINE_ENTRIES: &str = "baseline_entries";
/// Baseline entries written per sled batch.
const BASELINE_BATCH: usize = 16 * 1024;
const KEY_SCHEMA: &[u8] = b"schema_version";
const KEY_LAST_SCAN: &[u8] = b"last_scan_id";
const LOCK_FILE: &str = "vantage.lock";

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
    #[error("store I/O failed: {0}")]
    Io(#[from] sled::Error),
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
    observations: sled::Tree,
    baselines: sled::Tree,
    baseline_entries: sled::Tree,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let lock = take_lock(dir)?;
        let db = sled::Config::new().path(dir).open().map_err(|e| match e {
            sled::Error::Corruption { .. } => StoreError::Corrupt { path: dir.into(), detail: e.to_string() },
            e => StoreError::Io(e),
        })?;
        let meta = db.open_tree(TREE_META)?;
        match meta.get(KEY_SCHEMA)? {
            None => {
                meta.insert(KEY_SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
                db.flush()?;
            }
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt { path: dir.into(), detail: "bad schema version".into() })?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::NewerSchema { path: dir.into(), found, supported: SCHEMA_VERSION });
                }
            }
        }
        Ok(Store {
            scans: db.open_tree(TREE_SCANS)?,
            shards: db.open_tree(TREE_SHARDS)?,
            observations: db.open_tree(TREE_OBSERVATIONS)?,
            baselines: db.open_tree(TREE_BASELINES)?,
            baseline_entries: db.open_tree(TREE_BASELINE_ENTRIES)?,
            meta,
            db,
            _lock: Arc::new(lock),
        })
    }

    /// Makes every write so far durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// A fresh scan id, never handed out before (also across restarts, once
    /// flushed): 1, 2, 3, ... (sled's own id generator leaps by a million
    /// after every restart, which is no id for people to type).
    pub fn next_scan_id(&self) -> Result<u64, StoreError> {
        let next = self.meta.update_and_fetch(KEY_LAST_SCAN, |old| {
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

    /// Stores observations whose region and agent are filled in. Not durable
    /// until [`Store::flush`].
    pub fn put_observations(&self, scan_id: u64, observations: &[Observation]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for o in observations {
            let key = keys::observation_key(scan_id, o.addr, o.proto, o.port, &o.region);
            batch.insert(key, v1::Observation::from(o).encode_to_vec());
        }
        self.observations.apply_batch(batch)?;
        Ok(())
    }

    /// Observations of one scan in (address, protocol, port, region) order.
    pub fn observations(&self, scan_id: u64) -> impl Iterator<Item = Result<Observation, StoreError>> + use<> {
        self.observations.scan_prefix(keys::scan_key(scan_id)).map(|kv| {
            let (_, v) = kv?;
            let wire = v1::Observation::decode(v.as_ref())
                .map_err(|e| StoreError::Decode { what: "observation", detail: e.to_string() })?;
            Observation::try_from(&wire).map_err(|e| StoreError::Decode { what: "observation", detail: e.to_string() })
        })
    }
}

impl Store {
    /// Writes the entries of a baseline revision (blocking; in batches).
    /// They stay invisible until [`Store::commit_baseline`] writes the
    /// revision's record, so a build cut short leaves nothing half-visible.
    pub fn put_baseline_entries(
        &self,
        period: Period,
        revision: u32,
        entries: impl Iterator<Item = Result<BaselineEntry, StoreError>>,
    ) -> Result<u64, StoreError> {
        let (mut batch, mut in_batch, mut total) = (sled::Batch::default(), 0, 0u64);
        for e in entries {
            let e = e?;
            batch.insert(
                keys::baseline_entry_key(period, revision, e.addr, e.proto, e.port),
                v1::BaselineEntry::from(&e).encode_to_vec(),
            );
            (in_batch, total) = (in_batch + 1, total + 1);
            if in_batch == BASELINE_BATCH {
                self.baseline_entries.apply_batch(std::mem::take(&mut batch))?;
                in_batch = 0;
            }
        }
        self.baseline_entries.apply_batch(batch)?;
        Ok(total)
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

    /// The entries of one baseline revision, in (address, protocol, port) order.
    pub fn baseline_entries(
        &self,
        period: Period,
        revision: u32,
    ) -> impl Iterator<Item = Result<BaselineEntry, StoreError>> + use<> {
        self.baseline_entries.scan_prefix(keys::baseline_key(period, revision)).map(|kv| {
            let (_, v) = kv?;
            let wire = v1::BaselineEntry::decode(v.as_ref())
                .map_err(|e| StoreError::Decode { what: "baseline entry", detail: e.to_string() })?;
            BaselineEntry::try_from(&wire)
                .map_err(|e| StoreError::Decode { what: "baseline entry", detail: e.to_string() })
        })
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
