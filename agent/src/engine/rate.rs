//! Rate limits: a cap on probes per second for the whole agent, and one per
//! target host, both GCRA token buckets (governor).
//!
//! Buckets hold a fiftieth of a second's worth of tokens, so a cap is kept
//! over short intervals too (a full second of burst would let a "10,000/s"
//! scan send 20,000 probes in its first second).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

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

    /// Takes a token for one probe to `addr`, or says how long to wait.
    ///
    /// The host's token is taken first: when the global bucket then says
    /// wait, that host token is spent without a probe, which only ever makes
    /// the scan slower than its caps, never faster.
    pub fn try_acquire(&self, addr: IpAddr) -> Result<(), Duration> {
        if let Some(host) = &self.per_host
            && let Err(not_until) = host.check_key(&addr)
        {
            return Err(not_until.wait_time_from(self.clock.now()));
        }
        if let Some(global) = &self.global
            && let Err(not_until) = global.check()
        {
            return Err(not_until.wait_time_from(self.clock.now()));
        }
        Ok(())
    }

    /// Blocks the calling thread until a probe to `addr` may go.
    pub fn acquire_blocking(&self, addr: IpAddr) {
        while let Err(wait) = self.try_acquire(addr) {
            std::thread::sleep(wait.max(Duration::from_micros(50)));
        }
    }

    /// Drops per-host state of hosts not probed for a while (keeps memory flat).
    pub fn shrink(&self) {
        if let Some(host) = &self.per_host {
            host.retain_recent();
        }
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
        assert!(limits.try_acquire(a).is_err(), "one token per 100 ms for one host");
        assert!(limits.try_acquire(b).is_ok());
    }
}
