//! The scheduler: which agent runs which work unit, under which lease.
//!
//! State lives in memory behind one mutex that is never held across an
//! `.await`; every change that must outlive a restart is written to the
//! store first. A work unit is leased to one agent at a time under an epoch
//! that grows with every lease (and with every restart), so results of an
//! abandoned lease are refused instead of overwriting newer ones, and a unit
//! completes exactly once (DESIGN invariant 2).
//!
//! A unit planned for a region (a scan with regions) waits in that region's
//! queue and goes only to an agent of that region; a unit of a scan without
//! regions goes to any agent. An agent takes work of its own region first.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tonic::Status;
use vantage_proto::v1;
use vantage_proto::v1::coordinator_message::Body;
use vantage_shared::convert::time_to_wire;
use vantage_shared::{Assignment, LeaseKey, PortSpec, Scope, TargetSet};

use super::metrics::{CoordinatorMetrics, Requeue};
use super::trust::AgentIdentity;
use crate::store::{ScanRecord, ShardRecord, ShardState, ShardStats, Store, StoreError};

/// Messages queued to one agent's stream.
pub type AgentTx = mpsc::Sender<Result<v1::CoordinatorMessage, Status>>;
type UnitId = (u64, u64);

/// Why the scheduler refused something an agent sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no current lease for {0} (it expired or was given to another agent)")]
    StaleLease(LeaseKey),
    #[error("{0}: reported done, but {1} of its batches were never stored")]
    MissingBatches(LeaseKey, u64),
    #[error("{key}: observation for {what} is outside the shard")]
    OutsideShard { key: LeaseKey, what: String },
}

/// What an accepted batch may contain, and where it came from.
#[derive(Debug, Clone)]
pub struct BatchContext {
    pub region: String,
    pub shard: Arc<ShardScope>,
    /// The batch was stored before (a resend); acknowledge without storing.
    pub duplicate: bool,
}

/// The (address × port) block a lease covers, inside the scan's scope.
#[derive(Debug)]
pub struct ShardScope {
    pub targets: TargetSet,
    pub ports: PortSpec,
    pub scope: Arc<Scope>,
}

struct Lease {
    agent: String,
    /// The agent's region (where the probes come from).
    agent_region: String,
    /// The region the unit must run from ("" for any): its queue when it goes back.
    region: String,
    epoch: u64,
    deadline: Instant,
    shard: Arc<ShardScope>,
    acked_seq: u64,
    probes_done: u64,
}

struct AgentEntry {
    info: v1::AgentInfo,
    tx: AgentTx,
    /// Which of the agent's connections this is (they are numbered).
    conn: u64,
    /// Ends the connection's inbound loop, and with it the stream.
    cancel: CancellationToken,
}

/// How an agent's stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// The agent ended its half of the stream: it is stopping (a goodbye).
    Left,
    /// The stream broke, was reset, or the coordinator is stopping.
    Lost,
}

/// A registered agent connection.
#[derive(Debug, Clone)]
pub struct Connected {
    pub agent_id: String,
    pub conn: u64,
    /// Fires when the coordinator cuts this connection off.
    pub cancel: CancellationToken,
}

/// Removes an agent's connection and puts its leases back in the queue;
/// returns how many.
fn drop_agent(st: &mut State, agent_id: &str) -> usize {
    if let Some(entry) = st.agents.remove(agent_id) {
        entry.cancel.cancel();
    }
    let orphaned: Vec<UnitId> = st.leases.iter().filter(|(_, l)| l.agent == agent_id).map(|(unit, _)| *unit).collect();
    for unit in &orphaned {
        let lease = st.leases.remove(unit).expect("listed above");
        st.queue(&lease.region).push_front(*unit);
    }
    orphaned.len()
}

struct LiveScan {
    record: ScanRecord,
    scope: Arc<Scope>,
    shards_done: u64,
    done: ShardStats,
    /// What each agent's finished shards added up to.
    by_agent: BTreeMap<String, v1::AgentProgress>,
    status: watch::Sender<v1::ScanStatus>,
}

#[derive(Default)]
struct State {
    /// Units waiting for an agent, by the region they must run from ("" for any).
    queues: BTreeMap<String, VecDeque<UnitId>>,
    leases: HashMap<UnitId, Lease>,
    agents: BTreeMap<String, AgentEntry>,
    scans: HashMap<u64, LiveScan>,
    /// Connections registered so far.
    connections: u64,
    /// Each agent's pace per shard (probes per second), measured from the
    /// shards it finished, with its region: what new scans' shards are sized
    /// by. Kept across reconnects.
    rates: BTreeMap<String, (String, f64)>,
}

pub struct Scheduler {
    state: Mutex<State>,
    store: Store,
    lease: Duration,
    metrics: CoordinatorMetrics,
    /// Set when the coordinator stops: nothing more is leased.
    stopping: AtomicBool,
}

impl Scheduler {
    pub fn new(store: Store, lease: Duration) -> Self {
        Scheduler {
            state: Mutex::default(),
            store,
            lease,
            metrics: CoordinatorMetrics::new(),
            stopping: AtomicBool::new(false),
        }
    }

    /// The coordinator is stopping: lease nothing more (what is leased stays
    /// leased in the store, and the next start gives it out again).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    pub fn metrics(&self) -> &CoordinatorMetrics {
        &self.metrics
    }

    /// Scans started and not yet finished.
    pub fn scans_running(&self) -> usize {
        self.state().scans.len()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent-enough state: every
        // change is a few field writes. Keep serving rather than cascade.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Picks up unfinished scans after a restart: every shard not done is
    /// queued again under a higher epoch, so leases from before the restart
    /// can never complete it.
    pub async fn restore(&self) -> Result<usize, StoreError> {
        let mut resumed = 0;
        for record in self.store.scans()?.into_iter().filter(|s| s.finished_at.is_none()) {
            let mut shards = self.store.shards(record.id)?;
            for s in shards.iter_mut().filter(|s| !s.is_done()) {
                s.epoch += 1;
                s.state = ShardState::Pending;
            }
            self.store.put_shards(&shards)?;
            self.add_live(record, &shards);
            resumed += 1;
        }
        self.store.flush().await?;
        Ok(resumed)
    }

    /// Queues a planned scan whose records are already stored.
    pub fn add_scan(&self, record: ScanRecord, shards: &[ShardRecord]) {
        self.add_live(record, shards);
        self.dispatch();
    }

    fn add_live(&self, record: ScanRecord, shards: &[ShardRecord]) {
        let scope = Arc::new(Scope::parse_file(&record.scope).unwrap_or_else(|e| {
            tracing::error!(scan.id = record.id, error = %e, "stored scope does not parse; nothing of this scan will be scanned");
            Scope::new(TargetSet::default(), TargetSet::default())
        }));
        let mut live = LiveScan {
            status: watch::channel(v1::ScanStatus::default()).0,
            record,
            scope,
            shards_done: 0,
            done: ShardStats::default(),
            by_agent: BTreeMap::new(),
        };
        let mut st = self.state();
        for s in shards {
            match &s.state {
                ShardState::Done { stats, agent, region } => {
                    live.absorb(stats);
                    live.credit(agent, region, stats.probes);
                }
                _ => st.queue(&s.region).push_back((s.scan_id, s.shard_id)),
            }
        }
        if live.shards_done >= live.record.shards_total {
            // Every shard was done before a crash recorded the scan's end.
            self.finish(&mut live);
        }
        live.publish(&st.leases);
        if live.record.finished_at.is_none() {
            st.scans.insert(live.record.id, live);
        }
    }

    /// Registers a connected agent; work reaches it on the next
    /// [`Scheduler::dispatch`]. An enrolled agent brings its identity (id
    /// and region from the registry); a connection of the same agent that is
    /// still registered is cut off, since the agent itself gave up on it.
    /// Without an identity (an `--insecure` coordinator) the id is made from
    /// the hello's region and name.
    pub fn register_agent(&self, hello: &v1::Hello, identity: Option<&AgentIdentity>, tx: AgentTx) -> Connected {
        let cancel = CancellationToken::new();
        let connected = {
            let mut st = self.state();
            let (id, region) = match identity {
                Some(who) => {
                    if st.agents.contains_key(&who.id) {
                        tracing::info!(agent.id = %who.id, "agent reconnected; its previous stream is cut off");
                        let requeued = drop_agent(&mut st, &who.id);
                        self.metrics.requeued(Requeue::disconnected, requeued);
                    }
                    (who.id.clone(), who.region.clone())
                }
                None => {
                    let base = format!("{}/{}", hello.region, hello.name);
                    let id = (1..)
                        .map(|n| if n == 1 { base.clone() } else { format!("{base}#{n}") })
                        .find(|id| !st.agents.contains_key(id))
                        .expect("an unused id exists");
                    (id, hello.region.clone())
                }
            };
            st.connections += 1;
            let conn = st.connections;
            let now = Some(time_to_wire(SystemTime::now()));
            let info = v1::AgentInfo {
                agent_id: id.clone(),
                name: hello.name.clone(),
                region,
                version: hello.version.clone(),
                capacity: hello.capacity.max(1),
                connected_at: now,
                last_seen: now,
                state: "connected".into(),
                ..Default::default()
            };
            st.agents.insert(id.clone(), AgentEntry { info, tx, conn, cancel: cancel.clone() });
            Connected { agent_id: id, conn, cancel }
        };
        tracing::info!(agent.id = %connected.agent_id, agent.version = %hello.version, "agent connected");
        connected
    }

    /// The agent's stream ended: its leases go back to the queue. A stream
    /// that was already replaced by a newer one changes nothing.
    pub fn agent_gone(&self, agent_id: &str, conn: u64, how: Departure) {
        {
            let mut st = self.state();
            if st.agents.get(agent_id).is_none_or(|a| a.conn != conn) {
                return;
            }
            let requeued = drop_agent(&mut st, agent_id);
            match how {
                Departure::Left => {
                    self.metrics.requeued(Requeue::returned, requeued);
                    tracing::info!(agent.id = %agent_id, requeued, "agent left");
                }
                Departure::Lost => {
                    self.metrics.requeued(Requeue::disconnected, requeued);
                    tracing::info!(agent.id = %agent_id, requeued, "agent disconnected");
                }
            }
        }
        self.dispatch();
    }

    /// Cuts an agent's stream now (revocation); its leases go back to the queue.
    pub fn disconnect(&self, agent_id: &str) -> bool {
        let found = {
            let mut st = self.state();
            let found = st.agents.contains_key(agent_id);
            if found {
                let requeued = drop_agent(&mut st, agent_id);
                self.metrics.requeued(Requeue::disconnected, requeued);
                tracing::info!(agent.id = %agent_id, requeued, "agent cut off");
            }
            found
        };
        self.dispatch();
        found
    }

    /// Anything on an agent's stream counts as its heartbeat.
    pub fn seen(&self, agent_id: &str, conn: u64) {
        if let Some(a) = self.state().agents.get_mut(agent_id).filter(|a| a.conn == conn) {
            a.info.last_seen = Some(time_to_wire(SystemTime::now()));
        }
    }

    /// Checks that a batch belongs to a live lease of this agent.
    pub fn check_batch(&self, agent_id: &str, key: LeaseKey, seq: u64) -> Result<BatchContext, Refusal> {
        let st = self.state();
        let lease = current_lease(&st, agent_id, key)?;
        let region = st.agents.get(agent_id).map(|a| a.info.region.clone()).unwrap_or_default();
        Ok(BatchContext { region, shard: lease.shard.clone(), duplicate: seq <= lease.acked_seq })
    }

    /// A batch is on disk: renew the lease and count it.
    pub fn batch_stored(&self, agent_id: &str, key: LeaseKey, seq: u64) {
        let mut st = self.state();
        let lease_time = self.lease;
        if let Some(lease) = lease_mut(&mut st, agent_id, key) {
            lease.acked_seq = lease.acked_seq.max(seq);
            lease.deadline = Instant::now() + lease_time;
        }
    }

    pub fn progress(&self, agent_id: &str, key: LeaseKey, probes_done: u64) {
        let mut st = self.state();
        let lease_time = self.lease;
        if let Some(lease) = lease_mut(&mut st, agent_id, key) {
            lease.probes_done = probes_done;
            lease.deadline = Instant::now() + lease_time;
        }
        let st = &*st;
        if let Some(live) = st.scans.get(&key.scan_id) {
            live.publish(&st.leases);
        }
    }

    /// The agent finished a unit: record it once, and finish the scan when it
    /// was the last one. The caller flushes the store afterwards.
    pub fn complete(&self, agent_id: &str, key: LeaseKey, last_seq: u64, stats: ShardStats) -> Result<(), Refusal> {
        {
            let mut st = self.state();
            let lease = current_lease(&st, agent_id, key)?;
            if lease.acked_seq != last_seq {
                return Err(Refusal::MissingBatches(key, last_seq.saturating_sub(lease.acked_seq)));
            }
            st.leases.remove(&(key.scan_id, key.shard_id));
            if let Some(agent) = st.agents.get_mut(agent_id) {
                agent.info.active_leases = agent.info.active_leases.saturating_sub(1);
                agent.info.shards_done += 1;
            }
            let region = st.agents.get(agent_id).map(|a| a.info.region.clone()).unwrap_or_default();
            if let Some(rate) = shard_rate(&stats) {
                let slot = st.rates.entry(agent_id.to_string()).or_insert((region.clone(), rate));
                // A moving average: one odd shard (a dead network) moves it halfway.
                *slot = (region.clone(), (slot.1 + rate) / 2.0);
            }
            self.persist_done(key, agent_id, region.clone(), stats);
            self.metrics.shards_done.inc();
            self.metrics.shard_duration.observe(stats.elapsed_ms as f64 / 1000.0);
            let st = &mut *st;
            if let Some(live) = st.scans.get_mut(&key.scan_id) {
                live.absorb(&stats);
                live.credit(agent_id, &region, stats.probes);
                if live.shards_done >= live.record.shards_total {
                    self.finish(live);
                }
                live.publish(&st.leases);
                if live.record.finished_at.is_some() {
                    st.scans.remove(&key.scan_id);
                }
            }
        }
        self.dispatch();
        Ok(())
    }

    fn finish(&self, live: &mut LiveScan) {
        live.record.finished_at = Some(SystemTime::now());
        if let Err(e) = self.store.put_scan(&live.record) {
            tracing::error!(scan.id = live.record.id, error = %e, "cannot record the end of a scan");
        }
        tracing::info!(scan.id = live.record.id, open = live.done.open, "scan finished");
    }

    fn persist_done(&self, key: LeaseKey, agent_id: &str, region: String, stats: ShardStats) {
        let result = self.store.shard(key.scan_id, key.shard_id).and_then(|rec| {
            let Some(mut rec) = rec else { return Ok(()) };
            rec.state = ShardState::Done { agent: agent_id.to_string(), region, stats };
            self.store.put_shard(&rec)
        });
        if let Err(e) = result {
            tracing::error!(%key, error = %e, "cannot record a finished shard");
        }
    }

    /// The agent gave up on a unit (or the coordinator refused its results):
    /// it goes back to the queue.
    pub fn release(&self, agent_id: &str, key: LeaseKey, reason: &str) {
        {
            let mut st = self.state();
            if current_lease(&st, agent_id, key).is_err() {
                return;
            }
            let lease = st.leases.remove(&(key.scan_id, key.shard_id)).expect("checked above");
            if let Some(agent) = st.agents.get_mut(agent_id) {
                agent.info.active_leases = agent.info.active_leases.saturating_sub(1);
            }
            st.queue(&lease.region).push_front((key.scan_id, key.shard_id));
            self.metrics.requeued(Requeue::returned, 1);
            tracing::warn!(agent.id = %agent_id, %key, %reason, "shard released; queued again");
        }
        self.dispatch();
    }

    /// Takes back leases whose agents went quiet past the deadline.
    pub fn expire_leases(&self) {
        let now = Instant::now();
        let mut expired = Vec::new();
        {
            let mut st = self.state();
            let late: Vec<UnitId> = st.leases.iter().filter(|(_, l)| l.deadline <= now).map(|(u, _)| *u).collect();
            for unit in late {
                let lease = st.leases.remove(&unit).expect("listed above");
                if let Some(agent) = st.agents.get_mut(&lease.agent) {
                    agent.info.active_leases = agent.info.active_leases.saturating_sub(1);
                    let cancel = v1::CancelShard { scan_id: unit.0, shard_id: unit.1, reason: "lease expired".into() };
                    let _ = agent.tx.try_send(Ok(v1::CoordinatorMessage { body: Some(Body::Cancel(cancel)) }));
                }
                st.queue(&lease.region).push_front(unit);
                expired.push((unit, lease.agent));
            }
        }
        for ((scan, shard), agent) in &expired {
            tracing::warn!(scan.id = scan, shard.id = shard, agent.id = %agent, "lease expired; shard queued again");
        }
        if !expired.is_empty() {
            self.metrics.requeued(Requeue::expired, expired.len());
            self.dispatch();
        }
    }

    /// Hands queued units to agents with free capacity, least loaded first.
    pub fn dispatch(&self) {
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        let mut st = self.state();
        while let Some((agent_id, region)) = st.pick() {
            let unit = st.queue(&region).pop_front().expect("picked a queue with units");
            match self.lease_to(&mut st, unit, &region, &agent_id) {
                Ok(true) => {}
                // The agent's stream is full or closing: try again on the next event.
                Ok(false) => return,
                Err(e) => {
                    tracing::error!(scan.id = unit.0, shard.id = unit.1, error = %e, "cannot lease shard; it stays queued");
                    st.queue(&region).push_back(unit);
                    return;
                }
            }
        }
    }

    /// Leases `unit` to the agent; `Ok(false)` when the agent cannot take it
    /// now (the unit is back in the queue). Units of unknown scans or already
    /// done are dropped from the queue.
    fn lease_to(&self, st: &mut State, unit: UnitId, region: &str, agent_id: &str) -> Result<bool, StoreError> {
        let Some(live) = st.scans.get(&unit.0) else { return Ok(true) };
        let Some(mut rec) = self.store.shard(unit.0, unit.1)? else { return Ok(true) };
        if rec.is_done() {
            return Ok(true);
        }
        let (Ok(targets), Ok(ports)) = (TargetSet::parse(&rec.targets), PortSpec::parse(&rec.ports)) else {
            return Err(StoreError::Decode { what: "shard", detail: format!("shard {} of scan {}", unit.1, unit.0) });
        };
        let agent_region = st.agents.get(agent_id).map(|a| a.info.region.clone()).unwrap_or_default();
        rec.epoch += 1;
        rec.state = ShardState::Leased { agent: agent_id.to_string(), region: agent_region };
        self.store.put_shard(&rec)?;
        let key = LeaseKey { scan_id: unit.0, shard_id: unit.1, epoch: rec.epoch };
        let assignment = Assignment {
            key,
            scope: (*live.scope).clone(),
            targets: targets.clone(),
            ports: ports.clone(),
            options: live.record.options.clone(),
            lease: self.lease,
        };
        let shard = Arc::new(ShardScope { targets, ports, scope: live.scope.clone() });
        let agent = st.agents.get_mut(agent_id).expect("chosen from the map");
        let msg = v1::CoordinatorMessage { body: Some(Body::Assignment((&assignment).into())) };
        if agent.tx.try_send(Ok(msg)).is_err() {
            st.queue(region).push_front(unit);
            return Ok(false);
        }
        agent.info.active_leases += 1;
        let lease = Lease {
            agent: agent_id.to_string(),
            agent_region: agent.info.region.clone(),
            region: region.to_string(),
            epoch: rec.epoch,
            deadline: Instant::now() + self.lease,
            shard,
            acked_seq: 0,
            probes_done: 0,
        };
        st.leases.insert(unit, lease);
        self.metrics.shards_leased.inc();
        tracing::debug!(agent.id = %agent_id, %key, "shard leased");
        Ok(true)
    }

    /// The pace of one shard (probes per second) that agents of these
    /// regions (any, when empty) showed on their last shards: the median
    /// agent's, `None` before any of them finished one.
    pub fn shard_rate(&self, regions: &[String]) -> Option<f64> {
        let st = self.state();
        let mut rates: Vec<f64> = st
            .rates
            .values()
            .filter(|(region, _)| regions.is_empty() || regions.contains(region))
            .map(|(_, rate)| *rate)
            .collect();
        rates.sort_by(f64::total_cmp);
        rates.get(rates.len() / 2).copied()
    }

    pub fn agents(&self) -> Vec<v1::AgentInfo> {
        self.state().agents.values().map(|a| a.info.clone()).collect()
    }

    /// Live status of an unfinished scan.
    pub fn watch(&self, scan_id: u64) -> Option<watch::Receiver<v1::ScanStatus>> {
        self.state().scans.get(&scan_id).map(|s| s.status.subscribe())
    }
}

impl State {
    fn queue(&mut self, region: &str) -> &mut VecDeque<UnitId> {
        if !self.queues.contains_key(region) {
            self.queues.insert(region.to_string(), VecDeque::new());
        }
        self.queues.get_mut(region).expect("inserted above")
    }

    fn has_work(&self, region: &str) -> bool {
        self.queues.get(region).is_some_and(|q| !q.is_empty())
    }

    /// The least loaded agent with room for a unit, and the queue it takes
    /// one from: its own region's first, then the one of units for any region.
    fn pick(&self) -> Option<(String, String)> {
        let mut free: Vec<(&String, &AgentEntry)> =
            self.agents.iter().filter(|(_, a)| a.info.active_leases < a.info.capacity && a.tx.capacity() > 0).collect();
        // Stable: among equals, the first in id order, as before regions.
        free.sort_by_key(|(_, a)| a.info.active_leases * 1000 / a.info.capacity);
        free.into_iter().find_map(|(id, a)| {
            [a.info.region.as_str(), ""].into_iter().find(|r| self.has_work(r)).map(|r| (id.clone(), r.to_string()))
        })
    }
}

fn current_lease<'a>(st: &'a State, agent_id: &str, key: LeaseKey) -> Result<&'a Lease, Refusal> {
    st.leases
        .get(&(key.scan_id, key.shard_id))
        .filter(|l| l.agent == agent_id && l.epoch == key.epoch)
        .ok_or(Refusal::StaleLease(key))
}

fn lease_mut<'a>(st: &'a mut State, agent_id: &str, key: LeaseKey) -> Option<&'a mut Lease> {
    st.leases.get_mut(&(key.scan_id, key.shard_id)).filter(|l| l.agent == agent_id && l.epoch == key.epoch)
}

impl LiveScan {
    fn absorb(&mut self, s: &ShardStats) {
        self.shards_done += 1;
        self.done.add(s);
    }

    /// A finished shard counts for the agent that ran it.
    fn credit(&mut self, agent_id: &str, region: &str, probes: u64) {
        credit(&mut self.by_agent, agent_id, region, probes);
    }

    fn publish(&self, leases: &HashMap<UnitId, Lease>) {
        let mut status = status_of(&self.record, self.shards_done, &self.done);
        let mut agents = self.by_agent.clone();
        for (_, l) in leases.iter().filter(|((scan, _), _)| *scan == self.record.id) {
            status.probes_done += l.probes_done;
            let p = agents.entry(l.agent.clone()).or_insert_with(|| v1::AgentProgress {
                agent_id: l.agent.clone(),
                region: l.agent_region.clone(),
                ..Default::default()
            });
            p.probes_done += l.probes_done;
            p.running += 1;
        }
        status.agents = agents.into_values().collect();
        self.status.send_replace(status);
    }
}

/// Probes per second of a finished shard, when it was long enough to tell.
fn shard_rate(stats: &ShardStats) -> Option<f64> {
    const MIN_PROBES: u64 = 256;
    const MIN_MS: u64 = 100;
    (stats.probes >= MIN_PROBES && stats.elapsed_ms >= MIN_MS)
        .then(|| stats.probes as f64 * 1000.0 / stats.elapsed_ms as f64)
}

/// A finished shard counts for the agent that ran it.
pub fn credit(by_agent: &mut BTreeMap<String, v1::AgentProgress>, agent_id: &str, region: &str, probes: u64) {
    let p = by_agent.entry(agent_id.to_string()).or_insert_with(|| v1::AgentProgress {
        agent_id: agent_id.to_string(),
        region: region.to_string(),
        ..Default::default()
    });
    p.probes_done += probes;
    p.shards_done += 1;
}

/// A scan's status from its record and the sum of its finished shards.
pub fn status_of(record: &ScanRecord, shards_done: u64, done: &ShardStats) -> v1::ScanStatus {
    v1::ScanStatus {
        scan_id: record.id,
        label: record.label.clone(),
        started_at: Some(time_to_wire(record.created_at)),
        finished_at: record.finished_at.map(time_to_wire),
        shards_total: record.shards_total,
        shards_done,
        probes_total: record.probes_total,
        probes_done: done.probes,
        open: done.open,
        finished: record.finished_at.is_some(),
        targets: record.targets.clone(),
        ports: record.ports.clone(),
        closed: done.closed,
        filtered: done.filtered,
        refused: done.refused,
        answers_all_hosts: done.answers_all,
        packets: done.packets,
        unreachable: done.unreachable,
        regions: record.regions.clone(),
        agents: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
