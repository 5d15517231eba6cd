//! The scan engine: turns a set of (address, port) probes into results.
//!
//! The engine knows nothing of coordinators, leases or batches; it takes an
//! ordered stream of probes, keeps a bounded window of them in flight, and
//! sends one [`ProbeResult`] per probe down a bounded channel, so a slow
//! consumer slows the scan instead of growing memory.
//!
//! * [`order`]: which probe goes next (a random permutation).
//! * [`connect`]: the unprivileged TCP connect scan.
//! * [`syn`]: the raw-socket SYN scan.
//! * [`udp`]: the UDP scan, a probe in each port's own protocol.
//! * [`banner`]: the first read on an open port.
//! * [`rate`]: global and per-host probe rate caps.
//! * [`rtt`]: timeouts that follow measured round-trip times.
//! * [`limits`]: file-descriptor budget.

pub mod banner;
pub mod connect;
pub mod limits;
pub mod order;
pub mod rate;
pub mod rtt;
pub mod syn;
pub mod udp;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use vantage_shared::{PortState, Proto, ServiceFacts};

use rate::RateLimits;

/// The outcome of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    pub addr: IpAddr,
    pub proto: Proto,
    pub port: u16,
    pub state: PortState,
    /// Time from the first packet to the answer that decided the state.
    pub rtt: Duration,
    /// What an open port said first, bounded in size.
    pub banner: Vec<u8>,
    /// What answers on the port, once detection (or a UDP answer) told.
    pub service: Option<ServiceFacts>,
}

impl ProbeResult {
    /// A TCP result.
    pub fn new(addr: IpAddr, port: u16, state: PortState, rtt: Duration) -> Self {
        ProbeResult { addr, proto: Proto::Tcp, port, state, rtt, banner: Vec::new(), service: None }
    }
}

/// Counters the engine keeps for one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub probes: u64,
    pub open: u64,
    pub closed: u64,
    pub filtered: u64,
    /// Times a local resource (file descriptors, ephemeral ports, buffers)
    /// ran out and the engine slowed down instead of failing.
    pub resource_waits: u64,
    /// Packets sent, retransmissions included.
    pub packets: u64,
    /// Probes that found no route at all to their target (ENETUNREACH): a
    /// network problem on the scanner's side, not an answer from the target.
    pub unreachable: u64,
}

impl EngineStats {
    pub fn count(&mut self, state: PortState) {
        self.probes += 1;
        match state {
            PortState::Open => self.open += 1,
            PortState::Closed => self.closed += 1,
            PortState::Filtered => self.filtered += 1,
            PortState::AnswersAll => {}
        }
    }
}

/// Hosts whose open ports are no longer worth a banner read: they answer on
/// (nearly) every port, and reading thousands of silent banners from a
/// tarpit would stall the scan.
#[derive(Debug, Default)]
pub struct QuietHosts(RwLock<HashSet<IpAddr>>);

impl QuietHosts {
    pub fn insert(&self, addr: IpAddr) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).insert(addr);
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        self.0.read().unwrap_or_else(|p| p.into_inner()).contains(&addr)
    }
}

/// What an engine run shares with its caller.
#[derive(Debug, Default, Clone)]
pub struct RunHandles {
    /// Rate caps, shared by every shard of the same scan on this agent.
    pub limits: Arc<RateLimits>,
    pub quiet: Arc<QuietHosts>,
    /// Probes finished so far.
    pub progress: Arc<AtomicU64>,
    pub cancel: CancellationToken,
}
