//! Probe rates per agent and per region, from the progress snapshots a
//! scan's watch stream sends: the probes each agent has done, over a
//! sliding window of a few seconds (a shard's end makes single deltas jump).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use vantage_proto::v1;

/// How far back the rates look.
const WINDOW: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct Rates {
    samples: VecDeque<(Instant, BTreeMap<String, u64>)>,
    regions: BTreeMap<String, String>,
}

impl Rates {
    pub fn push(&mut self, at: Instant, agents: &[v1::AgentProgress]) {
        let probes = agents.iter().map(|a| (a.agent_id.clone(), a.probes_done)).collect();
        for a in agents {
            self.regions.insert(a.agent_id.clone(), a.region.clone());
        }
        self.samples.push_back((at, probes));
        while self.samples.len() > 2 && self.samples.front().is_some_and(|(t, _)| at.duration_since(*t) > WINDOW) {
            self.samples.pop_front();
        }
    }

    /// Probes per second of each agent over the window.
    pub fn per_agent(&self) -> BTreeMap<String, f64> {
        let (Some((t0, first)), Some((t1, last))) = (self.samples.front(), self.samples.back()) else {
            return BTreeMap::new();
        };
        let secs = t1.duration_since(*t0).as_secs_f64();
        last.iter()
            .map(|(agent, &probes)| {
                let before = first.get(agent).copied().unwrap_or(0);
                let rate = if secs > 0.0 { probes.saturating_sub(before) as f64 / secs } else { 0.0 };
                (agent.clone(), rate)
            })
            .collect()
    }

    /// Probes per second of each region (its agents together).
    pub fn per_region(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (agent, rate) in self.per_agent() {
            let region = self.regions.get(&agent).cloned().unwrap_or_default();
            *out.entry(region).or_insert(0.0) += rate;
        }
        out
    }
}

/// `12.3k/s`, `850/s`.
pub fn human_rate(per_sec: f64) -> String {
    match per_sec {
        r if r >= 1e6 => format!("{:.1}M/s", r / 1e6),
        r if r >= 1e3 => format!("{:.1}k/s", r / 1e3),
        r => format!("{r:.0}/s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(agent: &str, region: &str, probes: u64) -> v1::AgentProgress {
        v1::AgentProgress { agent_id: agent.into(), region: region.into(), probes_done: probes, ..Default::default() }
    }

    #[test]
    fn rates_follow_each_agent_over_the_window_and_add_up_per_region() {
        let t = Instant::now();
        let mut rates = Rates::default();
        rates.push(t, &[progress("a-1", "eu", 0), progress("a-2", "eu", 100)]);
        rates.push(t + Duration::from_secs(1), &[progress("a-1", "eu", 500), progress("a-2", "eu", 300)]);
        rates.push(
            t + Duration::from_secs(2),
            &[progress("a-1", "eu", 1000), progress("a-2", "eu", 500), progress("a-3", "us", 400)],
        );
        let agents = rates.per_agent();
        assert_eq!(agents["a-1"], 500.0);
        assert_eq!(agents["a-2"], 200.0);
        assert_eq!(agents["a-3"], 200.0, "an agent that joined late counts from zero");
        let regions = rates.per_region();
        assert_eq!((regions["eu"], regions["us"]), (700.0, 200.0));

        // Old samples leave the window.
        rates.push(t + Duration::from_secs(9), &[progress("a-1", "eu", 1000)]);
        rates.push(t + Duration::from_secs(10), &[progress("a-1", "eu", 1100)]);
        assert_eq!(rates.per_agent()["a-1"], 100.0);
        assert_eq!(human_rate(12_345.0), "12.3k/s");
        assert_eq!(human_rate(850.0), "850/s");
    }
}
