//! A period's baseline: the latest finished scan of each family (TCP, and
//! UDP where one ran) of the period, merged across regions into one entry
//! per (address, protocol, port).
//!
//! Baselines are built when asked for (a diff, a listing) and only when
//! out of date: a scan of the period finished after the current revision
//! was built. A rebuild adds a revision; earlier ones stay as history.
//! Building streams the scans' observations in key order (a k-way merge)
//! and groups each key's regions, so memory stays flat however large the
//! baseline.

use std::collections::BTreeSet;
use std::iter::Peekable;
use std::time::SystemTime;

use itertools::Itertools;
use vantage_shared::{BaselineEntry, Observation, Period, PortState, Proto};

use crate::store::{BaselineRecord, ScanRecord, Store, StoreError};

/// The scans a period's baseline is made of: the newest finished scan of
/// each family (TCP, UDP); verification re-probes never count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sources {
    pub tcp: Option<u64>,
    pub udp: Option<u64>,
}

impl Sources {
    pub fn of(period: Period, scans: &[ScanRecord]) -> Sources {
        let newest = |udp: bool| {
            scans
                .iter()
                .filter(|s| s.period() == period && s.finished_at.is_some() && !s.verification && s.is_udp() == udp)
                .map(|s| s.id)
                .max()
        };
        Sources { tcp: newest(false), udp: newest(true) }
    }

    /// One scan as a source, whatever its family.
    pub fn scan(record: &ScanRecord) -> Sources {
        if record.is_udp() {
            Sources { tcp: None, udp: Some(record.id) }
        } else {
            Sources { tcp: Some(record.id), udp: None }
        }
    }

    /// The scan ids, ascending.
    pub fn ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = [self.tcp, self.udp].into_iter().flatten().collect();
        ids.sort_unstable();
        ids
    }
}

/// The period's current baseline, built first if a newer scan finished;
/// `None` when the period has no finished scan at all.
pub async fn current(store: &Store, period: Period) -> Result<Option<BaselineRecord>, StoreError> {
    let sources = Sources::of(period, &store.scans()?);
    let existing = store.current_baseline(period)?;
    if sources.ids().is_empty() || existing.as_ref().is_some_and(|b| b.scans == sources.ids()) {
        return Ok(existing);
    }
    let revision = existing.map_or(1, |b| b.revision + 1);
    let (entries, regions) = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            // Every region that scanned, also those that saw nothing open.
            let mut regions = scanned_regions(&store, &sources.ids())?;
            let entries = entries_of(&store, sources).inspect(|e| {
                if let Ok(e) = e {
                    regions.extend(e.open_in.iter().cloned());
                }
            });
            let n = store.put_baseline_entries(period, revision, entries)?;
            Ok::<_, StoreError>((n, regions.into_iter().collect()))
        })
        .await
        .map_err(|e| StoreError::Decode { what: "baseline", detail: e.to_string() })??
    };
    let record =
        BaselineRecord { period, revision, scans: sources.ids(), regions, entries, built_at: SystemTime::now() };
    store.commit_baseline(&record).await?;
    tracing::info!(%period, revision, entries, scans = ?record.scans, "baseline built");
    Ok(Some(record))
}

/// The regions that finished shards of these scans.
fn scanned_regions(store: &Store, scans: &[u64]) -> Result<BTreeSet<String>, StoreError> {
    let mut regions = BTreeSet::new();
    for id in scans {
        regions.extend(store.shards(*id)?.iter().filter_map(|s| s.done_region().map(str::to_string)));
    }
    Ok(regions)
}

/// The baseline entries of `sources` (merged, grouped across regions), in
/// key order, straight from the store.
pub fn entries_of(store: &Store, sources: Sources) -> impl Iterator<Item = Result<BaselineEntry, StoreError>> + use<> {
    let merged = sources.ids().into_iter().map(|id| store.observations(id)).kmerge_by(|a, b| match (a, b) {
        (Ok(a), Ok(b)) => (a.addr, a.proto, a.port, &a.region) < (b.addr, b.proto, b.port, &b.region),
        // Errors first, so they surface at once.
        (Err(_), _) => true,
        (_, Err(_)) => false,
    });
    Grouped { sources, inner: merged.peekable() }
}

/// Groups consecutive observations of one key into one entry.
pub struct Grouped<I: Iterator> {
    sources: Sources,
    inner: Peekable<I>,
}

impl<I> Iterator for Grouped<I>
where
    I: Iterator<Item = Result<Observation, StoreError>>,
{
    type Item = Result<BaselineEntry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let first = match self.inner.next()? {
                Ok(o) if is_exposure(&o) => o,
                Ok(_) => continue,
                Err(e) => return Some(Err(e)),
            };
            let mut entry = BaselineEntry {
                addr: first.addr,
                proto: first.proto,
                port: first.port,
                state: first.state,
                open_in: vec![first.region.clone()],
                service: first.service.clone(),
                // One scan per family: the protocol tells which.
                scan_id: match first.proto {
                    Proto::Tcp => self.sources.tcp,
                    Proto::Udp => self.sources.udp,
                }
                .unwrap_or_default(),
                seen_at: first.seen_at,
            };
            let key = (first.addr, first.proto, first.port);
            while let Some(Ok(o)) = self.inner.peek() {
                if (o.addr, o.proto, o.port) != key {
                    break;
                }
                let Some(Ok(o)) = self.inner.next() else { unreachable!("peeked") };
                if !is_exposure(&o) {
                    continue;
                }
                if o.state == PortState::AnswersAll {
                    entry.state = PortState::AnswersAll;
                }
                if entry.service.is_none() {
                    entry.service = o.service;
                }
                entry.seen_at = entry.seen_at.max(o.seen_at);
                entry.open_in.push(o.region);
            }
            entry.open_in.sort();
            entry.open_in.dedup();
            return Some(Ok(entry));
        }
    }
}

fn is_exposure(o: &Observation) -> bool {
    matches!(o.state, PortState::Open | PortState::AnswersAll)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vantage_shared::ProbeOptions;

    use super::*;
    use crate::store::{ShardRecord, ShardState, ShardStats};

    #[tokio::test]
    async fn a_region_that_saw_nothing_open_still_scanned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let period: Period = "2026-11".parse().unwrap();
        let scan = ScanRecord {
            id: 1,
            label: String::new(),
            targets: "198.18.1.1".into(),
            ports: "22".into(),
            scope: "198.18.0.0/15".into(),
            options: ProbeOptions::default(),
            created_at: SystemTime::now(),
            finished_at: Some(SystemTime::now()),
            shards_total: 2,
            probes_total: 2,
            review_period: Some(period),
            verification: false,
            regions: vec!["eu".into(), "us".into()],
        };
        store.put_scan(&scan).unwrap();
        let shard = |id: u64, region: &str| ShardRecord {
            scan_id: 1,
            shard_id: id,
            targets: "198.18.1.1".into(),
            ports: "22".into(),
            probes: 1,
            epoch: 1,
            state: ShardState::Done {
                agent: format!("{region}/a"),
                region: region.into(),
                stats: ShardStats::default(),
            },
            region: region.into(),
        };
        store.put_shards(&[shard(0, "eu"), shard(1, "us")]).unwrap();
        let open = Observation {
            addr: "198.18.1.1".parse().unwrap(),
            proto: Proto::Tcp,
            port: 22,
            state: PortState::Open,
            rtt: Duration::from_millis(1),
            seen_at: SystemTime::now(),
            banner: Vec::new(),
            region: "eu".into(),
            agent: "eu/a".into(),
            service: None,
        };
        store.put_observations(1, &[open]).unwrap();
        let record = current(&store, period).await.unwrap().unwrap();
        assert_eq!(record.regions, ["eu", "us"], "a diff compares reachability over both");
    }
}
