//! Observations in blocks: one sled value per acknowledged batch (schema 4).
//!
//! Why blocks: with one sled key per observation, ingest spent 16-17 µs of
//! coordinator CPU on each, nearly all of it in sled's copy-on-write of leaf
//! nodes, and 50 agents got 67,000-73,000 observations/s stored on two
//! cores (bench/README.md, "Ingest"). A batch is already the unit the agent
//! numbers, the coordinator checks and the flush acknowledges; storing it
//! as one value costs sled one key per 256 observations.
//!
//! Layout: tree `observation_blocks`, key (scan, shard, epoch, seq), value
//! the LZ4 of the batch's observations, length-delimited, region and agent
//! filled in. A batch resent after a lost acknowledgement rewrites its own
//! key, so nothing is stored twice.
//!
//! Reading ([`Store::observations`]) returns one scan in (address,
//! protocol, port, region) order, each key once, as the per-key layout did:
//! - a shard's blocks are decoded, sorted and de-duplicated only when the
//!   merge reaches the shard's first address (taken from its record), so
//!   only shards that share addresses (the port chunks of one host, the
//!   copies of a shard for several regions) are in memory at once;
//! - of a finished shard only the epoch that finished counts: a lost
//!   lease's partial results (a port open then, closed by the re-run) are
//!   not the shard's result. Of an unfinished shard every epoch counts, the
//!   newest batch winning a key;
//! - schema 3's tree of one key per observation is read in place, as one
//!   more run already in order (no migration copies it).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use prost::Message;
use vantage_proto::v1;
use vantage_shared::{LeaseKey, Observation, TargetSet};

use super::{ShardRecord, Store, StoreError, keys};

/// The shard of blocks written without one (`Store::put_observations`, in tests).
const LOOSE_SHARD: u64 = u64::MAX;

/// One batch of observations, encoded for [`Store::commit_observations`].
#[derive(Debug)]
pub struct ObservationWrites {
    pub(super) key: [u8; 32],
    pub(super) block: Vec<u8>,
    len: usize,
}

impl ObservationWrites {
    /// Observations in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Store {
    /// Encodes batch `seq` of a lease, its observations' region and agent
    /// filled in, for [`Store::commit_observations`] (CPU only: call it on
    /// the batch's own task).
    pub fn encode_observations(lease: LeaseKey, seq: u64, observations: &[Observation]) -> ObservationWrites {
        let mut raw = Vec::with_capacity(observations.len() * 96);
        for o in observations {
            v1::Observation::from(o).encode_length_delimited(&mut raw).expect("a Vec grows");
        }
        ObservationWrites {
            key: keys::observation_block_key(lease.scan_id, lease.shard_id, lease.epoch, seq),
            block: lz4_flex::compress_prepend_size(&raw),
            len: observations.len(),
        }
    }

    /// Stores observations outside any shard, each call a batch of its own
    /// (later calls win a key). Not durable until [`Store::flush`]. For tests
    /// that need observations without running a scan.
    #[cfg(test)]
    pub(crate) fn put_observations(&self, scan_id: u64, observations: &[Observation]) -> Result<(), StoreError> {
        let seq = self.next_counter(b"test_loose_seq")?;
        let lease = LeaseKey { scan_id, shard_id: LOOSE_SHARD, epoch: 0 };
        let w = Store::encode_observations(lease, seq, observations);
        self.observation_blocks.insert(w.key, w.block)?;
        Ok(())
    }

    /// Observations of one scan in (address, protocol, port, region) order,
    /// each key once (see the module docs).
    pub fn observations(&self, scan_id: u64) -> impl Iterator<Item = Result<Observation, StoreError>> + use<> {
        let mut merge = Merge {
            blocks: self.observation_blocks.clone(),
            runs: Vec::new(),
            heap: BinaryHeap::new(),
            errors: VecDeque::new(),
        };
        merge.add(Run::Legacy(Box::new(self.observations_v3.scan_prefix(keys::scan_key(scan_id)))), Vec::new());
        merge.add(Run::Pending { prefix: keys::shard_key(scan_id, LOOSE_SHARD), epoch: None }, Vec::new());
        match self.shards(scan_id) {
            Ok(shards) => {
                for s in &shards {
                    let epoch = s.is_done().then_some(s.epoch);
                    merge.add(Run::Pending { prefix: keys::shard_key(scan_id, s.shard_id), epoch }, lower_bound(s));
                }
            }
            Err(e) => merge.errors.push_back(e),
        }
        merge
    }
}

/// A key no observation of the shard sorts before: its lowest address.
fn lower_bound(shard: &ShardRecord) -> Vec<u8> {
    let Ok(targets) = TargetSet::parse(&shard.targets) else {
        return Vec::new();
    };
    targets.ranges().iter().map(|r| keys::addr_key(r.first())).min().unwrap_or_default()
}

/// The order observations are read in: (address, protocol, port, region).
fn order_key(o: &Observation) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + 16 + 1 + 2 + o.region.len());
    keys::push_port_key(&mut k, o.addr, o.proto, o.port);
    k.extend_from_slice(o.region.as_bytes());
    k
}

/// One sorted source of the merge.
enum Run {
    /// A shard not reached yet: its blocks (of `epoch` only, when given).
    Pending {
        prefix: [u8; 16],
        epoch: Option<u64>,
    },
    /// A shard's observations, sorted, each key once.
    Loaded(std::vec::IntoIter<(Vec<u8>, Observation)>),
    /// Schema 3's one key per observation, already in order.
    Legacy(Box<sled::Iter>),
    Ended,
}

/// A k-way merge that loads each shard when it is reached. The heap holds
/// one entry per run: a pending run's lower bound, or a loaded run's next
/// key with its observation in `heads`. A lower bound is an address alone,
/// shorter than any observation key of that address, so a run is loaded
/// before the merge hands out any key it could hold.
struct Merge {
    blocks: sled::Tree,
    runs: Vec<(Run, Option<Observation>)>,
    heap: BinaryHeap<Reverse<(Vec<u8>, usize)>>,
    errors: VecDeque<StoreError>,
}

impl Merge {
    fn add(&mut self, run: Run, lower: Vec<u8>) {
        let index = self.runs.len();
        let pending = matches!(run, Run::Pending { .. });
        self.runs.push((run, None));
        if pending {
            self.heap.push(Reverse((lower, index)));
        } else {
            self.advance(index);
        }
    }

    /// Puts run `index`'s next observation at the head, if it has one.
    fn advance(&mut self, index: usize) {
        let (run, head) = &mut self.runs[index];
        let next = match run {
            Run::Loaded(items) => items.next().map(Ok),
            Run::Legacy(iter) => iter.next().map(|kv| -> Result<_, StoreError> {
                let (k, v) = kv?;
                let wire = v1::Observation::decode(v.as_ref()).map_err(decode_error)?;
                let o = Observation::try_from(&wire).map_err(decode_error)?;
                // The key less its scan: the order of `order_key`.
                Ok((k.get(8..).unwrap_or_default().to_vec(), o))
            }),
            Run::Pending { .. } | Run::Ended => None,
        };
        match next {
            Some(Ok((key, o))) => {
                *head = Some(o);
                self.heap.push(Reverse((key, index)));
            }
            Some(Err(e)) => {
                *run = Run::Ended;
                self.errors.push_back(e);
            }
            None => *run = Run::Ended,
        }
    }

    /// Reads a pending shard's blocks into a sorted run.
    fn load(&mut self, index: usize) {
        let Run::Pending { prefix, epoch } = self.runs[index].0 else {
            return;
        };
        match load_shard(&self.blocks, &prefix, epoch) {
            Ok(items) => {
                self.runs[index].0 = Run::Loaded(items.into_iter());
                self.advance(index);
            }
            Err(e) => {
                self.runs[index].0 = Run::Ended;
                self.errors.push_back(e);
            }
        }
    }
}

impl Iterator for Merge {
    type Item = Result<Observation, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            // Errors first, so they surface at once.
            if let Some(e) = self.errors.pop_front() {
                return Some(Err(e));
            }
            let Reverse((key, index)) = self.heap.pop()?;
            let Some(mut out) = self.runs[index].1.take() else {
                self.load(index);
                continue;
            };
            self.advance(index);
            // Equal keys pop in run order: the later run's observation wins.
            while self.heap.peek().is_some_and(|Reverse((k, _))| *k == key) {
                let Reverse((_, later)) = self.heap.pop().expect("peeked");
                if let Some(o) = self.runs[later].1.take() {
                    out = o;
                    self.advance(later);
                }
            }
            return Some(Ok(out));
        }
    }
}

/// A shard's observations from its blocks (of `epoch` only, when given),
/// sorted, the newest batch winning a key. Blocks are read in (epoch, seq)
/// order and the sort is stable, so the last of equal keys is the newest.
fn load_shard(
    blocks: &sled::Tree,
    prefix: &[u8; 16],
    epoch: Option<u64>,
) -> Result<Vec<(Vec<u8>, Observation)>, StoreError> {
    let mut prefix = prefix.to_vec();
    if let Some(epoch) = epoch {
        prefix.extend_from_slice(&epoch.to_be_bytes());
    }
    let mut items = Vec::new();
    for kv in blocks.scan_prefix(prefix) {
        items.extend(decode_block(&kv?.1)?.into_iter().map(|o| (order_key(&o), o)));
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(Vec<u8>, Observation)> = Vec::with_capacity(items.len());
    for item in items {
        match out.last_mut() {
            Some(last) if last.0 == item.0 => *last = item,
            _ => out.push(item),
        }
    }
    Ok(out)
}

fn decode_block(bytes: &[u8]) -> Result<Vec<Observation>, StoreError> {
    let raw = lz4_flex::decompress_size_prepended(bytes).map_err(decode_error)?;
    let mut rest = raw.as_slice();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let wire = v1::Observation::decode_length_delimited(&mut rest).map_err(decode_error)?;
        out.push(Observation::try_from(&wire).map_err(decode_error)?);
    }
    Ok(out)
}

fn decode_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Decode { what: "observation", detail: e.to_string() }
}

#[cfg(test)]
mod tests;
