//! The coordinator's Prometheus metrics and readiness.
//!
//! Events are counted where they happen (the scheduler leases, completes and
//! re-queues; ingest stores observations). What is a state rather than an
//! event (agents connected, scans running, the store's size) is read at
//! scrape time ([`CoordinatorStatus::refresh`]), so it can never drift from
//! the scheduler's own view. The HTTP side is [`vantage_agent::endpoint`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::scheduler::Scheduler;
use crate::store::Store;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegionLabel {
    pub region: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: Requeue,
}

/// Why a lease went back to the queue.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Requeue {
    /// Its deadline passed without progress.
    expired,
    /// The agent gave it back (leaving, or its results were refused).
    returned,
    /// The agent's stream ended or was cut off.
    disconnected,
}

/// The coordinator's metrics; clones share the same values.
#[derive(Clone)]
pub struct CoordinatorMetrics {
    pub agents_connected: Family<RegionLabel, Gauge>,
    pub shards_leased: Counter,
    pub shards_done: Counter,
    pub leases_requeued: Family<ReasonLabel, Counter>,
    pub observations_ingested: Counter,
    pub shard_duration: Histogram,
    pub scans_running: Gauge,
    pub store_size: Gauge,
    registry: Arc<Registry>,
}

impl Default for CoordinatorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl CoordinatorMetrics {
    pub fn new() -> Self {
        let m = CoordinatorMetrics {
            agents_connected: Family::default(),
            shards_leased: Counter::default(),
            shards_done: Counter::default(),
            leases_requeued: Family::default(),
            observations_ingested: Counter::default(),
            shard_duration: Histogram::new(exponential_buckets(0.5, 2.0, 12)),
            scans_running: Gauge::default(),
            store_size: Gauge::default(),
            registry: Arc::default(),
        };
        let mut r = Registry::default();
        r.register("vantage_agents_connected", "Agents with a session, by region", m.agents_connected.clone());
        r.register("vantage_shards_leased", "Work units leased to agents", m.shards_leased.clone());
        r.register("vantage_shards_done", "Work units completed", m.shards_done.clone());
        r.register("vantage_leases_requeued", "Leases put back in the queue, by reason", m.leases_requeued.clone());
        r.register("vantage_observations_ingested", "Observations stored from agents", m.observations_ingested.clone());
        r.register_with_unit(
            "vantage_shard_duration",
            "How long agents took per work unit, as they reported it",
            Unit::Seconds,
            m.shard_duration.clone(),
        );
        r.register("vantage_scans_running", "Scans started and not finished", m.scans_running.clone());
        r.register_with_unit("vantage_store_size", "The store's size on disk", Unit::Bytes, m.store_size.clone());
        CoordinatorMetrics { registry: Arc::new(r), ..m }
    }

    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    pub fn requeued(&self, reason: Requeue, n: usize) {
        self.leases_requeued.get_or_create(&ReasonLabel { reason }).inc_by(n as u64);
    }
}

/// What `/readyz` and the scrape-time gauges read.
pub struct CoordinatorStatus {
    pub scheduler: Arc<Scheduler>,
    pub store: Store,
    /// Set once the gRPC listener accepts; cleared when serving stops.
    pub serving: Arc<AtomicBool>,
}

impl vantage_agent::endpoint::Status for CoordinatorStatus {
    fn refresh(&self) {
        let m = self.scheduler.metrics();
        m.agents_connected.clear();
        for agent in self.scheduler.agents() {
            m.agents_connected.get_or_create(&RegionLabel { region: agent.region }).inc();
        }
        m.scans_running.set(self.scheduler.scans_running() as i64);
        match self.store.size_on_disk() {
            Ok(bytes) => {
                m.store_size.set(bytes.min(i64::MAX as u64) as i64);
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the store's size"),
        }
    }

    fn ready(&self) -> Result<(), String> {
        // The store is open for as long as this status exists (it holds a clone).
        if self.serving.load(Ordering::Acquire) { Ok(()) } else { Err("the gRPC listener is not serving".into()) }
    }
}
