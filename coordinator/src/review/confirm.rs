//! Confirming a diff: a candidate change counts only when a re-probe shows
//! it again. Scan results vary with rate and packet loss; a diff that cries
//! wolf is not read twice.
//!
//! The re-probe is a low-rate verification scan of the candidates' hosts
//! and ports (see `vantage diff`), run from every region that has a live
//! agent; this module judges each candidate against what each region saw.
//!
//! The rule, per region: a region that scanned the period must see again
//! what it saw then (open from the regions in [`Change::open_in`], not open
//! from the others, with the same service where it is open). A region that
//! did not scan the period is a second opinion: it must see the change's
//! later side (open for a new port, closed for a closed one). So a port
//! fenced off from one region is confirmed when both regions repeat their
//! views, while a port that one region no longer sees the same way is not.

use std::collections::{BTreeMap, BTreeSet};

use vantage_shared::{Observation, PortKey, PortState, ServiceFacts};

use super::diff::{Change, ChangeKind, describe_facts, tls_words};

/// What a re-probe says of one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Seen again, from every region that re-probed it: a change.
    Confirmed,
    /// A region that scanned the period saw something else this time
    /// (packet loss, a flapping service): not a change, listed as unconfirmed.
    Contradicted,
    /// The regions that scanned the period saw it again, but a region that
    /// did not (the second opinion) sees it differently: a question for
    /// `vantage reachability`, not a change.
    RegionsDisagree,
    /// No region that could tell re-probed it (the only region that saw it
    /// has no live agent; a reachability change needs every region of the
    /// period; an answers-all host needs a whole-host scan).
    Unconfirmable,
}

impl Verdict {
    /// The word in `vantage diff`'s STATUS column and JSON.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Confirmed => "confirmed",
            Verdict::Contradicted => "contradicted",
            Verdict::RegionsDisagree => "regions-disagree",
            Verdict::Unconfirmable => "unconfirmable",
        }
    }
}

/// What one region's verification scan saw, by key: open ports with their facts.
pub type Seen = BTreeMap<PortKey, Option<ServiceFacts>>;

/// What the verification scan saw, region by region, and the regions the
/// period being confirmed was scanned from.
#[derive(Debug, Clone, Default)]
pub struct Reprobe {
    pub by_region: BTreeMap<String, Seen>,
    pub scanned: BTreeSet<String>,
}

impl Reprobe {
    pub fn new(scanned: impl IntoIterator<Item = String>) -> Reprobe {
        Reprobe { by_region: BTreeMap::new(), scanned: scanned.into_iter().collect() }
    }

    /// Adds observations of a verification scan, each to its region's view.
    /// A region that re-probed and saw nothing open still counts: call
    /// [`Reprobe::region`] for every region the scan ran in.
    pub fn add(&mut self, observations: impl IntoIterator<Item = Observation>) {
        for o in observations.into_iter().filter(|o| matches!(o.state, PortState::Open | PortState::AnswersAll)) {
            self.region(&o.region).insert((o.addr, o.proto, o.port), o.service);
        }
    }

    /// The view of one region, empty until it reports an open port.
    pub fn region(&mut self, region: &str) -> &mut Seen {
        self.by_region.entry(region.to_string()).or_default()
    }
}

pub fn judge(c: &Change, reprobe: &Reprobe) -> Verdict {
    if c.kind == ChangeKind::StateChanged {
        return Verdict::Unconfirmable;
    }
    let key = (c.addr, c.proto, c.port);
    let (mut contradicted, mut disagree, mut witness) = (false, false, false);
    for (region, seen) in &reprobe.by_region {
        let in_period = reprobe.scanned.contains(region);
        let expect_open = match c.kind {
            _ if in_period => c.open_in.contains(region),
            ChangeKind::Closed => false,
            // Another region's view of where a port is open says nothing of
            // the period's regions.
            ChangeKind::ReachabilityChanged => continue,
            _ => true,
        };
        let agrees = match (expect_open, seen.get(&key)) {
            (false, None) => true,
            (false, Some(_)) | (true, None) => false,
            (true, Some(facts)) => match c.kind {
                ChangeKind::ServiceChanged | ChangeKind::VersionChanged => {
                    facts.as_ref().is_some_and(|f| describe_facts(f) == c.after)
                }
                ChangeKind::TlsChanged => facts.as_ref().is_some_and(|f| tls_words(f) == c.after),
                _ => true,
            },
        };
        match (agrees, in_period) {
            (false, true) => contradicted = true,
            (false, false) => disagree = true,
            // A closure is witnessed by any region seeing it closed; the
            // rest by a region seeing the port again.
            (true, _) => witness |= expect_open || c.kind == ChangeKind::Closed,
        }
    }
    if c.kind == ChangeKind::ReachabilityChanged {
        // Where it is open is only known when every region of the period looked.
        let all = reprobe.scanned.len() >= 2 && reprobe.scanned.iter().all(|r| reprobe.by_region.contains_key(r));
        witness = all;
    }
    if contradicted {
        Verdict::Contradicted
    } else if disagree {
        Verdict::RegionsDisagree
    } else if witness {
        Verdict::Confirmed
    } else {
        Verdict::Unconfirmable
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use vantage_shared::Proto;

    use super::*;

    fn obs(region: &str, port: u16, service: Option<ServiceFacts>) -> Observation {
        Observation {
            addr: "198.18.0.1".parse().unwrap(),
            proto: Proto::Tcp,
            port,
            state: PortState::Open,
            rtt: Duration::ZERO,
            seen_at: UNIX_EPOCH,
            banner: Vec::new(),
            region: region.into(),
            agent: "a".into(),
            service,
        }
    }

    fn change(kind: ChangeKind, port: u16, after: &str, open_in: &[&str]) -> Change {
        let addr = "198.18.0.1".parse().unwrap();
        let open_in = open_in.iter().map(|r| r.to_string()).collect();
        Change { kind, addr, proto: Proto::Tcp, port, before: String::new(), after: after.into(), open_in }
    }

    /// A re-probe from these regions (each listed, even when it saw nothing
    /// open) of a period scanned from `scanned`.
    fn reprobe(scanned: &[&str], regions: &[&str], observations: Vec<Observation>) -> Reprobe {
        let mut r = Reprobe::new(scanned.iter().map(|s| s.to_string()));
        for region in regions {
            r.region(region);
        }
        r.add(observations);
        r
    }

    #[test]
    fn candidates_against_a_one_region_re_probe() {
        let ssh = ServiceFacts::named("ssh").product("OpenSSH").version("9.3p1");
        let seen = reprobe(&["r1"], &["r1"], vec![obs("r1", 22, Some(ssh.clone())), obs("r1", 80, None)]);
        let judge = |kind, port, after: &str| {
            let open_in: &[&str] = if kind == ChangeKind::Closed { &[] } else { &["r1"] };
            judge(&change(kind, port, after, open_in), &seen)
        };
        assert_eq!(judge(ChangeKind::New, 80, ""), Verdict::Confirmed);
        assert_eq!(judge(ChangeKind::New, 81, ""), Verdict::Contradicted);
        assert_eq!(judge(ChangeKind::Closed, 81, ""), Verdict::Confirmed);
        assert_eq!(judge(ChangeKind::Closed, 80, ""), Verdict::Contradicted);
        let after = describe_facts(&ssh);
        assert_eq!(judge(ChangeKind::VersionChanged, 22, &after), Verdict::Confirmed);
        assert_eq!(judge(ChangeKind::VersionChanged, 22, "ssh OpenSSH 9.4p1"), Verdict::Contradicted);
        assert_eq!(judge(ChangeKind::ReachabilityChanged, 22, "r1"), Verdict::Unconfirmable);
        assert_eq!(judge(ChangeKind::StateChanged, 22, ""), Verdict::Unconfirmable);
    }

    #[test]
    fn every_region_must_repeat_what_it_saw() {
        // Period scanned from eu and us; port 80 new and open from both,
        // port 443 new and open from eu only (fenced off from us).
        let both = change(ChangeKind::New, 80, "", &["eu", "us"]);
        let fenced = change(ChangeKind::New, 443, "", &["eu"]);
        let regions = ["eu", "us"];
        let again = reprobe(&regions, &regions, vec![obs("eu", 80, None), obs("us", 80, None), obs("eu", 443, None)]);
        assert_eq!(judge(&both, &again), Verdict::Confirmed);
        assert_eq!(judge(&fenced, &again), Verdict::Confirmed, "the fence is repeated too");
        // us no longer sees 80: the period's view is not repeated.
        let flaky = reprobe(&regions, &regions, vec![obs("eu", 80, None)]);
        assert_eq!(judge(&both, &flaky), Verdict::Contradicted);
        // us suddenly sees 443: the change as the period saw it is not repeated.
        let opened = reprobe(&regions, &regions, vec![obs("eu", 443, None), obs("us", 443, None)]);
        assert_eq!(judge(&fenced, &opened), Verdict::Contradicted);
        // Only us is live: it repeats its "not open", but no region that saw
        // 443 open looked again.
        let us_only = reprobe(&regions, &["us"], vec![]);
        assert_eq!(judge(&fenced, &us_only), Verdict::Unconfirmable);
        // A closure seen closed from both regions.
        let closed = change(ChangeKind::Closed, 8080, "", &[]);
        assert_eq!(judge(&closed, &again), Verdict::Confirmed);
        let still_open_from_us = reprobe(&regions, &regions, vec![obs("us", 8080, None)]);
        assert_eq!(judge(&closed, &still_open_from_us), Verdict::Contradicted);
    }

    #[test]
    fn a_region_outside_the_period_is_a_second_opinion() {
        // Period scanned from eu alone; ap re-probes as well.
        let new = change(ChangeKind::New, 80, "", &["eu"]);
        let seen_by_both = reprobe(&["eu"], &["eu", "ap"], vec![obs("eu", 80, None), obs("ap", 80, None)]);
        assert_eq!(judge(&new, &seen_by_both), Verdict::Confirmed);
        let eu_only = reprobe(&["eu"], &["eu", "ap"], vec![obs("eu", 80, None)]);
        assert_eq!(judge(&new, &eu_only), Verdict::RegionsDisagree);
        let neither = reprobe(&["eu"], &["eu", "ap"], vec![]);
        assert_eq!(judge(&new, &neither), Verdict::Contradicted, "the period's own region outranks");
        // A closure: the second opinion must see it closed too.
        let closed = change(ChangeKind::Closed, 81, "", &[]);
        let ap_sees_it = reprobe(&["eu"], &["eu", "ap"], vec![obs("ap", 81, None)]);
        assert_eq!(judge(&closed, &ap_sees_it), Verdict::RegionsDisagree);
        // A version change seen by the second region with the old version.
        let ssh = ServiceFacts::named("ssh").product("OpenSSH").version("9.3p1");
        let old = ServiceFacts::named("ssh").product("OpenSSH").version("9.2p1");
        let changed = change(ChangeKind::VersionChanged, 22, &describe_facts(&ssh), &["eu"]);
        let mixed = reprobe(&["eu"], &["eu", "ap"], vec![obs("eu", 22, Some(ssh)), obs("ap", 22, Some(old))]);
        assert_eq!(judge(&changed, &mixed), Verdict::RegionsDisagree);
    }

    #[test]
    fn a_reachability_change_needs_every_region_of_the_period() {
        // Port 22 now open from eu only (us was fenced off this month).
        let change = change(ChangeKind::ReachabilityChanged, 22, "eu", &["eu"]);
        let regions = ["eu", "us"];
        let repeated = reprobe(&regions, &regions, vec![obs("eu", 22, None)]);
        assert_eq!(judge(&change, &repeated), Verdict::Confirmed);
        let open_again = reprobe(&regions, &regions, vec![obs("eu", 22, None), obs("us", 22, None)]);
        assert_eq!(judge(&change, &open_again), Verdict::Contradicted);
        let eu_alone = reprobe(&regions, &["eu"], vec![obs("eu", 22, None)]);
        assert_eq!(judge(&change, &eu_alone), Verdict::Unconfirmable);
        // A region outside the period has no say in where it is open.
        let with_ap = reprobe(&regions, &["eu", "us", "ap"], vec![obs("eu", 22, None), obs("ap", 22, None)]);
        assert_eq!(judge(&change, &with_ap), Verdict::Confirmed);
    }
}
