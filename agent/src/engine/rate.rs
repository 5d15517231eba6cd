//! Rate limits: a cap on probes per second for the whole agent, and one per
//! target host, both GCRA token buckets (governor).
//!
//! Buckets hold a fiftieth of a second's worth of tokens, so a cap is kept
//! over short intervals too (a full second of burst would let a "10,000/s"
//! scan send 20,000 probes in its first second).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The limits one scan runs under on one agent; shared by its shards.
#[derive(Debug, Default)]
pub struct RateLimits {
    global: Option<DefaultDirectRateLimiter>,
    per_host: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Made once: making a clock calibrates it, far too slow per probe.
    clock: DefaultClock,
}

fn quota(per_second: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new((per_second / 50).max(1)).expect("at least one");
    Some(Quota::per_second(rate).allow_burst(burst))
}

impl RateLimits {
    /// `0` means no cap.
    pub fn new(rate: u32, host_rate: u32) -> Self {
        RateLimits {
            global: quota(rate).map(RateLimiter::direct),
            per_host: quota(host_rate).map(RateLimiter::keyed),
            clock: DefaultClock::default(),
        }
    }

    pub fn is_unlimited(&self) -> bool {
        self.global.is_none() && self.per_host.is_none()
    }

    /// Takes a token for one probe to `addr`, or says which cap is in the
    /// way and for how long.
    ///
    /// The host's token is taken first: when the global bucket then says
    /// wait, that host token is spent without a probe, which only ever makes
    /// the scan slower than its caps, never faster.
    pub fn try_acquire(&self, addr: IpAddr) -> Result<(), Denied> {
        if let Some(host) = &self.per_host
            && let Err(not_until) = host.check_key(&addr)
        {
            return Err(Denied::Host(not_until.wait_time_from(self.clock.now())));
        }
        if let Some(global) = &self.global
            && let Err(not_until) = global.check()
        {
            return Err(Denied::Global(not_until.wait_time_from(self.clock.now())));
        }
        Ok(())
    }

    /// Drops per-host state of hosts not probed for a while (keeps memory flat).
    pub fn shrink(&self) {
        if let Some(host) = &self.per_host {
            host.retain_recent();
        }
    }
}

/// Which cap held a probe back, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The agent-wide cap: nothing may go before then.
    Global(Duration),
    /// This host's cap: probes to other hosts may go meanwhile.
    Host(Duration),
}

impl Denied {
    pub fn wait(self) -> Duration {
        match self {
            Denied::Global(d) | Denied::Host(d) => d,
        }
    }
}

/// Probes held back by their host's cap, so that probes to other hosts are
/// not stuck behind them. Bounded; first in, first out (waits on one cap are
/// all alike, so that is nearly the order in which they become ready).
#[derive(Debug)]
pub struct Deferred<T> {
    queue: VecDeque<(Instant, T)>,
    cap: usize,
}

impl<T> Deferred<T> {
    pub fn new(cap: usize) -> Self {
        Deferred { queue: VecDeque::new(), cap: cap.max(1) }
    }

    pub fn is_full(&self) -> bool {
        self.queue.len() >= self.cap
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn push(&mut self, ready: Instant, item: T) {
        self.queue.push_back((ready, item));
    }

    /// The oldest probe, if its wait is over.
    pub fn pop_ready(&mut self, now: Instant) -> Option<T> {
        if self.queue.front()?.0 <= now { self.queue.pop_front().map(|(_, item)| item) } else { None }
    }

    /// When the oldest probe may go.
    pub fn next_ready(&self) -> Option<Instant> {
        self.queue.front().map(|(at, _)| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_never_waits() {
        let limits = RateLimits::new(0, 0);
        assert!(limits.is_unlimited());
        for _ in 0..10_000 {
            assert!(limits.try_acquire("127.0.0.1".parse().unwrap()).is_ok());
        }
    }

    #[test]
    fn burst_is_a_fiftieth_of_the_rate() {
        assert_eq!(quota(5_000).unwrap().burst_size().get(), 100);
        assert_eq!(quota(10).unwrap().burst_size().get(), 1);
        assert!(quota(0).is_none());
    }

    #[test]
    fn host_cap_is_per_host() {
        // 10/s: a burst of one, the next token 100 ms later.
        let limits = RateLimits::new(0, 10);
        let a = "198.18.0.1".parse().unwrap();
        let b = "198.18.0.2".parse().unwrap();
        assert!(limits.try_acquire(a).is_ok());
        assert!(matches!(limits.try_acquire(a), Err(Denied::Host(_))), "one token per 100 ms for one host");
        assert!(limits.try_acquire(b).is_ok());
    }

    #[test]
    fn deferred_probes_come_back_when_ready() {
        let t0 = Instant::now();
        let mut d = Deferred::new(2);
        d.push(t0 + Duration::from_millis(5), "a");
        d.push(t0 + Duration::from_millis(1), "b");
        assert!(d.is_full());
        assert_eq!(d.pop_ready(t0), None);
        assert_eq!(d.next_ready(), Some(t0 + Duration::from_millis(5)));
        assert_eq!(d.pop_ready(t0 + Duration::from_millis(5)), Some("a"));
        assert_eq!(d.pop_ready(t0 + Duration::from_millis(5)), Some("b"));
        assert!(d.is_empty());
    }
}
