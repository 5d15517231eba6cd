//! The agent's Prometheus metrics: what it probed, what answered, how fast.
//!
//! The counters live for the whole process (across reconnects); shard runs
//! add to them as they go ([`ProbeMeter`]), so a scrape in the middle of a
//! long shard sees it move. [`crate::endpoint`] serves them when the agent
//! runs with `--metrics-listen`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use tokio_util::sync::CancellationToken;

use crate::engine::EngineStats;

/// How often the probe rate gauge is recomputed.
const RATE_EVERY: Duration = Duration::from_secs(1);

/// The agent's metrics; clones share the same values.
#[derive(Clone)]
pub struct AgentMetrics {
    pub probes_sent: Counter,
    pub replies: Counter,
    pub open_ports: Counter,
    pub shards_done: Counter,
    pub shard_duration: Histogram,
    pub probe_rate: Gauge<f64, AtomicU64>,
    pub connected: Gauge,
    /// Whether a session with the coordinator is up (welcome received).
    session: Arc<AtomicBool>,
    registry: Arc<Registry>,
}

impl Default for AgentMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl AgentMetrics {
    pub fn new() -> Self {
        let m = AgentMetrics {
            probes_sent: Counter::default(),
            replies: Counter::default(),
            open_ports: Counter::default(),
            shards_done: Counter::default(),
            // 0.5 s to about 17 min: shards are sized for tens of seconds.
            shard_duration: Histogram::new(exponential_buckets(0.5, 2.0, 12)),
            probe_rate: Gauge::default(),
            connected: Gauge::default(),
            session: Arc::default(),
            registry: Arc::default(),
        };
        let mut r = Registry::default();
        r.register("vantage_agent_probes_sent", "Probes sent (one per address and port)", m.probes_sent.clone());
        r.register("vantage_agent_replies_received", "Probes that were answered (open or closed)", m.replies.clone());
        r.register("vantage_agent_open_ports_found", "Open ports found", m.open_ports.clone());
        r.register("vantage_agent_shards_done", "Shards finished and reported", m.shards_done.clone());
        r.register_with_unit(
            "vantage_agent_shard_duration",
            "Time from assignment to the shard's report",
            Unit::Seconds,
            m.shard_duration.clone(),
        );
        r.register("vantage_agent_probe_rate", "Probes per second over the last second", m.probe_rate.clone());
        r.register("vantage_agent_connected", "1 while a session with the coordinator is up", m.connected.clone());
        AgentMetrics { registry: Arc::new(r), ..m }
    }

    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// A session started (`true`, on the coordinator's welcome) or ended.
    pub fn set_connected(&self, up: bool) {
        self.session.store(up, Ordering::Relaxed);
        self.connected.set(i64::from(up));
    }

    pub fn is_connected(&self) -> bool {
        self.session.load(Ordering::Relaxed)
    }

    /// A shard was finished and reported.
    pub fn shard_done(&self, stats: &EngineStats, elapsed: Duration) {
        self.replies.inc_by(stats.open + stats.closed);
        self.open_ports.inc_by(stats.open);
        self.shards_done.inc();
        self.shard_duration.observe(elapsed.as_secs_f64());
    }

    /// Recomputes the probe rate every second until `shutdown`.
    pub async fn track_rate(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(RATE_EVERY);
        let (mut last, mut at) = (self.probes_sent.get(), Instant::now());
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let (now, probes) = (Instant::now(), self.probes_sent.get());
            let secs = now.duration_since(at).as_secs_f64();
            if secs > 0.0 {
                self.probe_rate.set(probes.saturating_sub(last) as f64 / secs);
            }
            (last, at) = (probes, now);
        }
    }
}

impl crate::endpoint::Status for AgentMetrics {
    fn ready(&self) -> Result<(), String> {
        if self.is_connected() { Ok(()) } else { Err("not connected to the coordinator".into()) }
    }
}

/// Counts one shard's probes into the agent's counter as they are made.
pub struct ProbeMeter {
    metrics: AgentMetrics,
    counted: u64,
}

impl ProbeMeter {
    pub fn new(metrics: AgentMetrics) -> Self {
        ProbeMeter { metrics, counted: 0 }
    }

    /// The shard has made `probes` probes so far.
    pub fn update(&mut self, probes: u64) {
        if probes > self.counted {
            self.metrics.probes_sent.inc_by(probes - self.counted);
            self.counted = probes;
        }
    }
}
