//! The state one SYN scan shares between its sender thread, the process's
//! receiver thread and its async side. No per-probe connection state: one
//! bit per probe (answered or not) and one send time per probe.

use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::packet::Answer;
use crate::engine::ProbeResult;
use crate::engine::order::ProbeSpace;
use crate::engine::rtt::RttEstimator;

pub struct ScanState {
    pub space: Arc<ProbeSpace>,
    /// Key of the sequence-number cookie.
    key: RandomState,
    pub sport: u16,
    answered: Vec<AtomicU64>,
    /// When each probe was last sent, in microseconds since `epoch`.
    sent_at: Vec<AtomicU32>,
    epoch: Instant,
    settled: AtomicU64,
    pub stop: AtomicBool,
    pub packets: AtomicU64,
    pub send_errors: AtomicU64,
    pub unroutable: AtomicU64,
    pub rtt: Mutex<RttEstimator>,
    /// Room for one answer per probe, so the receiver never waits on it.
    answers: mpsc::Sender<ProbeResult>,
}

impl ScanState {
    /// `answers` must have room for `space.len()` results.
    pub fn new(space: Arc<ProbeSpace>, sport: u16, timeout: Duration, answers: mpsc::Sender<ProbeResult>) -> Self {
        let n = space.len();
        ScanState {
            key: RandomState::new(),
            sport,
            answered: (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            sent_at: (0..n).map(|_| AtomicU32::new(0)).collect(),
            epoch: Instant::now(),
            settled: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            packets: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
            unroutable: AtomicU64::new(0),
            rtt: Mutex::new(RttEstimator::new(timeout)),
            answers,
            space,
        }
    }

    /// The sequence number of our SYN to (dst, dport).
    pub fn cookie(&self, dst: Ipv4Addr, dport: u16) -> u32 {
        self.key.hash_one((u32::from(dst), dport, self.sport)) as u32
    }

    /// Marks a probe settled (answered, or skipped); false when it already was.
    pub fn mark(&self, idx: u64) -> bool {
        let bit = 1u64 << (idx % 64);
        let fresh = self.answered[(idx / 64) as usize].fetch_or(bit, Ordering::Relaxed) & bit == 0;
        if fresh {
            self.settled.fetch_add(1, Ordering::Relaxed);
        }
        fresh
    }

    pub fn is_settled(&self, idx: u64) -> bool {
        self.answered[(idx / 64) as usize].load(Ordering::Relaxed) & (1u64 << (idx % 64)) != 0
    }

    pub fn all_settled(&self) -> bool {
        self.settled.load(Ordering::Relaxed) >= self.space.len()
    }

    pub fn now_micros(&self) -> u32 {
        self.epoch.elapsed().as_micros() as u32
    }

    pub fn record_send(&self, idx: u64) {
        self.sent_at[idx as usize].store(self.now_micros(), Ordering::Relaxed);
    }

    /// When the probe was last sent, in microseconds since the scan began.
    pub fn sent_at(&self, idx: u64) -> u32 {
        self.sent_at[idx as usize].load(Ordering::Relaxed)
    }

    pub fn timeout(&self, attempt: u32) -> Duration {
        self.rtt.lock().unwrap_or_else(|p| p.into_inner()).timeout(attempt)
    }

    /// Takes an answer from the receiver: ours only when it acknowledges our
    /// cookie for that very target and port, and only once per probe.
    pub fn accept(&self, a: &Answer) {
        if a.ack != self.cookie(a.from, a.sport).wrapping_add(1) {
            return;
        }
        let Some(idx) = self.space.index_of(IpAddr::V4(a.from), a.sport) else { return };
        if !self.mark(idx) {
            return;
        }
        let rtt = Duration::from_micros(u64::from(self.now_micros().saturating_sub(self.sent_at(idx))));
        self.rtt.lock().unwrap_or_else(|p| p.into_inner()).sample(rtt);
        // Cannot be full: one answer per probe at most, and room for all.
        let _ = self.answers.try_send(ProbeResult::new(IpAddr::V4(a.from), a.sport, a.state, rtt));
    }
}

#[cfg(test)]
mod tests {
    use vantage_shared::{PortSpec, PortState, TargetSet};

    use super::*;

    fn state() -> (ScanState, mpsc::Receiver<ProbeResult>) {
        let space =
            Arc::new(ProbeSpace::new(TargetSet::parse("198.18.1.0/30").unwrap(), PortSpec::parse("22,80").unwrap()));
        let (tx, rx) = mpsc::channel(space.len() as usize);
        (ScanState::new(space, 40_000, Duration::from_secs(1), tx), rx)
    }

    fn answer(s: &ScanState, from: Ipv4Addr, port: u16, ack: u32) -> Answer {
        let _ = s;
        Answer { from, sport: port, dport: 40_000, ack, state: PortState::Open }
    }

    #[test]
    fn only_answers_with_our_cookie_count_and_only_once() {
        let (s, mut rx) = state();
        let from = Ipv4Addr::new(198, 18, 1, 2);
        let good = s.cookie(from, 80).wrapping_add(1);
        s.accept(&answer(&s, from, 80, good.wrapping_add(1)));
        assert!(rx.try_recv().is_err(), "a wrong acknowledgement number is not ours");
        s.accept(&answer(&s, from, 80, good));
        s.accept(&answer(&s, from, 80, good));
        let r = rx.try_recv().unwrap();
        assert_eq!((r.addr, r.port, r.state), (IpAddr::V4(from), 80, PortState::Open));
        assert!(rx.try_recv().is_err(), "a duplicate answer is dropped");
    }

    #[test]
    fn answers_for_probes_outside_the_shard_are_ignored() {
        let (s, mut rx) = state();
        let stranger = Ipv4Addr::new(198, 18, 9, 9);
        s.accept(&answer(&s, stranger, 80, s.cookie(stranger, 80).wrapping_add(1)));
        let inside = Ipv4Addr::new(198, 18, 1, 1);
        s.accept(&answer(&s, inside, 443, s.cookie(inside, 443).wrapping_add(1)));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn settling_is_counted() {
        let (s, _rx) = state();
        for i in 0..s.space.len() {
            assert!(!s.all_settled());
            assert!(s.mark(i));
            assert!(!s.mark(i));
        }
        assert!(s.all_settled());
    }
}
