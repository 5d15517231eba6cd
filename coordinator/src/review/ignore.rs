//! Ignore rules: known noise in diffs (a CDN edge that flaps, a partner's
//! test range), each with a reason and an expiry date, so that ignoring is
//! a decision with an end. Expired rules stop applying and say so.
//!
//! ```toml
//! [[ignore]]
//! target = "198.18.0.0/24"        # addresses, CIDRs or ranges (target syntax)
//! ports = "80,443"                # optional: every port when absent
//! proto = "tcp"                   # optional: tcp or udp
//! kinds = ["reachability-changed"] # optional: every kind of change when absent
//! reason = "CDN edge; reachability flaps between regions"
//! expires = "2026-12-31"          # applies through that day (UTC)
//! ```

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use vantage_shared::{PortSpec, Proto, TargetSet, TargetSpec};

use super::diff::{Change, ChangeKind};

/// A rules file that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    #[error("rule {rule}: {field}: {problem}")]
    Field { rule: usize, field: &'static str, problem: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    ignore: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    target: String,
    ports: Option<String>,
    proto: Option<String>,
    kinds: Option<Vec<String>>,
    reason: String,
    expires: String,
}

/// One rule, checked.
#[derive(Debug, Clone)]
pub struct Rule {
    /// 1-based position in the file.
    pub number: usize,
    pub target: TargetSet,
    pub ports: Option<PortSpec>,
    pub proto: Option<Proto>,
    pub kinds: Option<Vec<ChangeKind>>,
    pub reason: String,
    /// The day it applies through, as written, and the instant it ends.
    pub expires: String,
    pub ends: SystemTime,
}

impl Rule {
    pub fn expired(&self, now: SystemTime) -> bool {
        now >= self.ends
    }

    fn matches(&self, c: &Change) -> bool {
        self.target.contains(c.addr)
            && self.ports.as_ref().is_none_or(|p| p.contains(c.port))
            && self.proto.is_none_or(|p| p == c.proto)
            && self.kinds.as_ref().is_none_or(|k| k.contains(&c.kind))
    }
}

/// Parses a rules file; every problem names its rule and field.
pub fn parse(text: &str) -> Result<Vec<Rule>, RulesError> {
    let file: File = toml::from_str(text)?;
    file.ignore.into_iter().enumerate().map(|(i, raw)| check(i + 1, raw)).collect()
}

fn check(number: usize, raw: RawRule) -> Result<Rule, RulesError> {
    let bad = |field, problem: String| RulesError::Field { rule: number, field, problem };
    let target = TargetSpec::parse(&raw.target).map_err(|e| bad("target", e.to_string()))?.resolve();
    if target.is_empty() {
        return Err(bad("target", "names no address".into()));
    }
    let ports = raw.ports.as_deref().map(PortSpec::parse).transpose().map_err(|e| bad("ports", e.to_string()))?;
    let proto = match raw.proto.as_deref() {
        None => None,
        Some("tcp") => Some(Proto::Tcp),
        Some("udp") => Some(Proto::Udp),
        Some(other) => return Err(bad("proto", format!("`{other}` is neither tcp nor udp"))),
    };
    let kinds = raw
        .kinds
        .map(|ks| {
            ks.iter()
                .map(|k| ChangeKind::ALL.into_iter().find(|c| c.to_string() == *k).ok_or_else(|| k.clone()))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(|k| bad("kinds", format!("unknown kind `{k}` (one of: {})", kind_list())))?;
    if raw.reason.trim().is_empty() {
        return Err(bad("reason", "say why this noise may be ignored".into()));
    }
    let day = vantage_shared::period::day_start(&raw.expires)
        .ok_or_else(|| bad("expires", format!("`{}` is not a date (YYYY-MM-DD)", raw.expires)))?;
    Ok(Rule {
        number,
        target,
        ports,
        proto,
        kinds,
        reason: raw.reason,
        expires: raw.expires.trim().to_string(),
        ends: day + Duration::from_secs(24 * 3600),
    })
}

fn kind_list() -> String {
    ChangeKind::ALL.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// The first rule in force at `now` that covers `change`.
pub fn matching<'r>(rules: &'r [Rule], change: &Change, now: SystemTime) -> Option<&'r Rule> {
    rules.iter().find(|r| !r.expired(now) && r.matches(change))
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    const RULES: &str = r#"
[[ignore]]
target = "198.18.0.0/24"
ports = "80,443"
kinds = ["reachability-changed"]
reason = "CDN edge"
expires = "2026-12-31"

[[ignore]]
target = "198.18.1.5"
reason = "partner test host"
expires = "2026-10-31"
"#;

    fn change(addr: &str, port: u16, kind: ChangeKind) -> Change {
        Change {
            kind,
            addr: addr.parse().unwrap(),
            proto: Proto::Tcp,
            port,
            before: String::new(),
            after: String::new(),
            open_in: Vec::new(),
        }
    }

    #[test]
    fn rules_apply_until_they_expire() {
        let rules = parse(RULES).unwrap();
        // 2026-11-15T00:00:00Z
        let november = UNIX_EPOCH + Duration::from_secs(1_794_700_800);
        let cdn = change("198.18.0.7", 443, ChangeKind::ReachabilityChanged);
        assert_eq!(matching(&rules, &cdn, november).map(|r| r.number), Some(1));
        assert!(matching(&rules, &change("198.18.0.7", 443, ChangeKind::New), november).is_none());
        assert!(matching(&rules, &change("198.18.0.7", 22, ChangeKind::ReachabilityChanged), november).is_none());
        // The partner rule expired on 2026-10-31: it no longer hides anything.
        assert!(rules[1].expired(november));
        assert!(matching(&rules, &change("198.18.1.5", 22, ChangeKind::New), november).is_none());
        let october = UNIX_EPOCH + Duration::from_secs(1_792_000_000);
        assert_eq!(matching(&rules, &change("198.18.1.5", 22, ChangeKind::New), october).map(|r| r.number), Some(2));
    }

    #[test]
    fn errors_name_the_rule_and_field() {
        let e = |text: &str| parse(text).unwrap_err().to_string();
        assert!(
            e("[[ignore]]\ntarget = \"198.18.0.1\"\nreason = \"x\"\nexpires = \"next week\"\n")
                .contains("rule 1: expires")
        );
        assert!(
            e("[[ignore]]\ntarget = \"nope\"\nreason = \"x\"\nexpires = \"2026-01-01\"\n").contains("rule 1: target")
        );
        assert!(
            e("[[ignore]]\ntarget = \"198.18.0.1\"\nreason = \" \"\nexpires = \"2026-01-01\"\n").contains("reason")
        );
        let kinds =
            e("[[ignore]]\ntarget = \"198.18.0.1\"\nkinds = [\"moved\"]\nreason = \"x\"\nexpires = \"2026-01-01\"\n");
        assert!(kinds.contains("unknown kind `moved`"), "{kinds}");
        // TOML errors carry the line.
        assert!(e("[[ignore]]\ntarget = \n").contains("line 2"), "{}", e("[[ignore]]\ntarget = \n"));
        assert!(
            e("[[ignore]]\ntarget = \"198.18.0.1\"\nreason = \"x\"\nexpires = \"2026-01-01\"\ncolour = 1\n")
                .contains("colour")
        );
    }
}
