//! The detection stage, between the scan engine and the batches: every
//! open TCP port gets a bounded conversation ([`vantage_detect::Detector`])
//! before its observation goes up.
//!
//! Conversations run concurrently, at most [`CONCURRENCY`] per shard; at
//! most [`MAX_WAITING`] open ports wait for one. When the queue is full the
//! shard stops taking engine results, so a host with thousands of open
//! ports slows its own scan instead of growing memory.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinSet;
use vantage_detect::Detector;
use vantage_shared::{PortState, Proto};

use crate::engine::ProbeResult;

/// Conversations in progress at once, per shard.
pub const CONCURRENCY: usize = 256;
/// Open ports waiting for a conversation, per shard.
pub const MAX_WAITING: usize = 4096;

pub struct DetectStage {
    detector: Option<Arc<Detector>>,
    /// Did the engine already listen for a greeting (so the banner is one)?
    greeting_read: bool,
    waiting: VecDeque<ProbeResult>,
    running: JoinSet<ProbeResult>,
}

impl DetectStage {
    /// A stage that detects with `detector`, or passes everything through (`None`).
    pub fn new(detector: Option<Arc<Detector>>, greeting_read: bool) -> DetectStage {
        DetectStage { detector, greeting_read, waiting: VecDeque::new(), running: JoinSet::new() }
    }

    /// Takes a result that needs a conversation; hands back any other.
    pub fn offer(&mut self, r: ProbeResult) -> Option<ProbeResult> {
        if self.detector.is_none() || r.state != PortState::Open || r.proto != Proto::Tcp || r.service.is_some() {
            return Some(r);
        }
        self.waiting.push_back(r);
        None
    }

    /// Too many ports waiting: take no more from the engine for now.
    pub fn saturated(&self) -> bool {
        self.waiting.len() >= MAX_WAITING
    }

    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.running.is_empty()
    }

    /// The next port whose conversation ended. Cancel-safe.
    pub async fn next(&mut self) -> Option<ProbeResult> {
        self.top_up();
        loop {
            match self.running.join_next().await? {
                Ok(r) => return Some(r),
                Err(e) => tracing::error!(error = %e, "detection task failed"),
            }
        }
    }

    fn top_up(&mut self) {
        let Some(detector) = &self.detector else { return };
        while self.running.len() < CONCURRENCY {
            let Some(mut r) = self.waiting.pop_front() else { break };
            let detector = detector.clone();
            let greeting = self.greeting_read.then(|| r.banner.clone());
            self.running.spawn(async move {
                let d = detector.tcp(SocketAddr::new(r.addr, r.port), r.rtt, greeting).await;
                r.service = Some(d.facts);
                if r.banner.is_empty() {
                    r.banner = d.first_bytes;
                }
                r
            });
        }
    }
}
