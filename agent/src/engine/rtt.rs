//! Probe timeouts that follow the network: a smoothed round-trip time and
//! its variation (as TCP's retransmission timer, RFC 6298), bounded below so
//! a burst of fast loopback answers cannot shrink it to nothing, and above by
//! what the operator configured.

use std::time::Duration;

/// Never wait less than this for an answer.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    ceiling: Duration,
}

impl RttEstimator {
    pub fn new(ceiling: Duration) -> Self {
        RttEstimator { srtt: None, rttvar: Duration::ZERO, ceiling: ceiling.max(MIN_TIMEOUT) }
    }

    /// Feeds the round-trip time of a probe that was answered.
    pub fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    /// How long to wait for the first attempt at a probe; later attempts
    /// double it (up to the ceiling).
    pub fn timeout(&self, attempt: u32) -> Duration {
        let base = match self.srtt {
            None => self.ceiling,
            Some(srtt) => (srtt + self.rttvar * 4).clamp(MIN_TIMEOUT, self.ceiling),
        };
        (base * 2u32.saturating_pow(attempt)).min(self.ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_the_ceiling() {
        assert_eq!(RttEstimator::new(Duration::from_secs(1)).timeout(0), Duration::from_secs(1));
    }

    #[test]
    fn follows_fast_answers_down_to_the_floor() {
        let mut e = RttEstimator::new(Duration::from_secs(1));
        for _ in 0..50 {
            e.sample(Duration::from_micros(200));
        }
        assert_eq!(e.timeout(0), MIN_TIMEOUT);
        assert_eq!(e.timeout(1), MIN_TIMEOUT * 2);
    }

    #[test]
    fn jitter_widens_the_timeout() {
        let mut e = RttEstimator::new(Duration::from_secs(2));
        for i in 0..50 {
            e.sample(Duration::from_millis(if i % 2 == 0 { 50 } else { 250 }));
        }
        assert!(e.timeout(0) > Duration::from_millis(300), "{:?}", e.timeout(0));
        assert!(e.timeout(5) <= Duration::from_secs(2));
    }
}
