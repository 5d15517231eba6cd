//! A period's baseline: per (address, protocol, port), what the review
//! found, merged across regions. Diffs compare two baselines.
//!
//! Baselines hold the exposures only (open ports and answers-all hosts);
//! a port absent from a baseline was closed or filtered from every region
//! that scanned it.

use std::net::IpAddr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::observation::{PortState, Proto};
use crate::service::ServiceFacts;

/// The order baselines are stored and diffed in: address (IPv4 first),
/// protocol, port.
pub type PortKey = (IpAddr, Proto, u16);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineEntry {
    pub addr: IpAddr,
    pub proto: Proto,
    /// 0 for an answers-all host.
    pub port: u16,
    /// `Open`, or `AnswersAll` for a host that answers on (nearly) every port.
    pub state: PortState,
    /// The regions that saw it, sorted.
    pub open_in: Vec<String>,
    /// What answers, as the first region (in name order) with facts saw it.
    pub service: Option<ServiceFacts>,
    /// The scan it comes from.
    pub scan_id: u64,
    pub seen_at: SystemTime,
}

impl BaselineEntry {
    pub fn key(&self) -> PortKey {
        (self.addr, self.proto, self.port)
    }
}
