//! Confirming a diff: a candidate change counts only when a re-probe shows
//! it again. Scan results vary with rate and packet loss; a diff that cries
//! wolf is not read twice.
//!
//! The re-probe is a low-rate verification scan of the candidates' hosts
//! and ports (see `vantage diff`); this module judges each candidate
//! against what that scan saw. A change that needs a second region to
//! confirm (reachability) stays unconfirmed until the fleet can ask one.

use std::collections::BTreeMap;

use vantage_shared::{Observation, PortKey, PortState, ServiceFacts};

use super::diff::{Change, ChangeKind, describe_facts, tls_words};

/// What a re-probe says of one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Seen again: a change.
    Confirmed,
    /// The re-probe saw something else (packet loss, a flapping service):
    /// not a change, listed as unconfirmed.
    Contradicted,
    /// A re-probe cannot tell (it needs another region).
    Unconfirmable,
}

/// What the verification scan saw, by key: open ports with their facts.
pub type Seen = BTreeMap<PortKey, Option<ServiceFacts>>;

pub fn seen(observations: impl IntoIterator<Item = Observation>) -> Seen {
    observations
        .into_iter()
        .filter(|o| matches!(o.state, PortState::Open | PortState::AnswersAll))
        .map(|o| ((o.addr, o.proto, o.port), o.service))
        .collect()
}

pub fn judge(c: &Change, seen: &Seen) -> Verdict {
    let now = seen.get(&(c.addr, c.proto, c.port));
    let yes = |ok: bool| if ok { Verdict::Confirmed } else { Verdict::Contradicted };
    match c.kind {
        ChangeKind::New => yes(now.is_some()),
        ChangeKind::Closed => yes(now.is_none()),
        ChangeKind::ServiceChanged | ChangeKind::VersionChanged => {
            yes(now.and_then(Option::as_ref).is_some_and(|f| describe_facts(f) == c.after))
        }
        ChangeKind::TlsChanged => yes(now.and_then(Option::as_ref).is_some_and(|f| tls_words(f) == c.after)),
        ChangeKind::ReachabilityChanged | ChangeKind::StateChanged => Verdict::Unconfirmable,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use vantage_shared::Proto;

    use super::*;

    fn obs(port: u16, service: Option<ServiceFacts>) -> Observation {
        Observation {
            addr: "198.18.0.1".parse().unwrap(),
            proto: Proto::Tcp,
            port,
            state: PortState::Open,
            rtt: Duration::ZERO,
            seen_at: UNIX_EPOCH,
            banner: Vec::new(),
            region: "r1".into(),
            agent: "a".into(),
            service,
        }
    }

    fn change(kind: ChangeKind, port: u16, after: &str) -> Change {
        let addr = "198.18.0.1".parse().unwrap();
        Change { kind, addr, proto: Proto::Tcp, port, before: String::new(), after: after.into() }
    }

    #[test]
    fn candidates_against_the_re_probe() {
        let ssh = ServiceFacts::named("ssh").product("OpenSSH").version("9.3p1");
        let seen = seen([obs(22, Some(ssh.clone())), obs(80, None)]);
        assert_eq!(judge(&change(ChangeKind::New, 80, ""), &seen), Verdict::Confirmed);
        assert_eq!(judge(&change(ChangeKind::New, 81, ""), &seen), Verdict::Contradicted);
        assert_eq!(judge(&change(ChangeKind::Closed, 81, ""), &seen), Verdict::Confirmed);
        assert_eq!(judge(&change(ChangeKind::Closed, 80, ""), &seen), Verdict::Contradicted);
        let after = describe_facts(&ssh);
        assert_eq!(judge(&change(ChangeKind::VersionChanged, 22, &after), &seen), Verdict::Confirmed);
        assert_eq!(judge(&change(ChangeKind::VersionChanged, 22, "ssh OpenSSH 9.4p1"), &seen), Verdict::Contradicted);
        assert_eq!(judge(&change(ChangeKind::ReachabilityChanged, 22, "r1"), &seen), Verdict::Unconfirmable);
    }
}
