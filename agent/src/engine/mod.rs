//! The scan engine: turns a set of (address, port) probes into results.
//!
//! The engine knows nothing of coordinators, leases or batches; it takes an
//! ordered stream of probes, keeps a bounded window of them in flight, and
//! sends one [`ProbeResult`] per probe down a bounded channel, so a slow
//! consumer slows the scan instead of growing memory.
//!
//! * [`order`]: which probe goes next.
//! * [`connect`]: the unprivileged TCP connect scan.
//! * [`banner`]: the first read on an open port.
//! * [`limits`]: file-descriptor budget.

pub mod banner;
pub mod connect;
pub mod limits;
pub mod order;

use std::net::IpAddr;
use std::time::Duration;

use vantage_shared::PortState;

/// The outcome of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    pub addr: IpAddr,
    pub port: u16,
    pub state: PortState,
    /// Time from the first packet to the answer that decided the state.
    pub rtt: Duration,
    /// What an open port said first, bounded in size.
    pub banner: Vec<u8>,
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
}

impl EngineStats {
    pub fn count(&mut self, state: PortState) {
        self.probes += 1;
        match state {
            PortState::Open => self.open += 1,
            PortState::Closed => self.closed += 1,
            PortState::Filtered => self.filtered += 1,
        }
    }
}
