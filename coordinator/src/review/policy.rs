//! The review's policy: how severe each kind of finding is, and how long its
//! owner has to act. The default follows the monthly review's priorities —
//! exposed databases, remote access and management interfaces and
//! known-exploited versions first, known-vulnerable versions next, odd or
//! unexplained services after, documented ones last (still listed, so each
//! stays a decision). Deadlines are durations in hours, not whole days: a
//! critical exposure found at 17:00 is due at 17:00 the next day.
//!
//! ```toml
//! [deadlines]                 # humantime durations; any subset
//! critical = "24h"
//! high = "7days"
//! medium = "30days"
//! low = "90days"
//!
//! [severity]                  # per finding kind; any subset
//! inventory-mismatch = "low"
//! review-overdue = "high"
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::findings::{Kind, Severity};

/// A policy file that cannot be used: the line, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}{problem}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct PolicyError {
    pub line: Option<usize>,
    pub problem: String,
}

/// Severities and deadlines, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Time to remediate, by severity.
    pub deadlines: BTreeMap<Severity, Duration>,
    /// Severity, by finding kind.
    pub severity: BTreeMap<Kind, Severity>,
}

impl Default for Policy {
    fn default() -> Self {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        Policy {
            deadlines: BTreeMap::from([
                (Severity::Critical, hours(24)),
                (Severity::High, hours(7 * 24)),
                (Severity::Medium, hours(30 * 24)),
                (Severity::Low, hours(90 * 24)),
            ]),
            severity: Kind::ALL.iter().map(|k| (*k, k.default_severity())).collect(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    deadlines: BTreeMap<String, toml::Spanned<String>>,
    #[serde(default)]
    severity: BTreeMap<String, toml::Spanned<String>>,
}

impl Policy {
    /// Parses a policy file over the defaults.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let line_of = |offset: usize| Some(text[..offset.min(text.len())].matches('\n').count() + 1);
        let file: File = toml::from_str(text).map_err(|e| PolicyError {
            line: e.span().and_then(|s| line_of(s.start)),
            problem: e.message().to_string(),
        })?;
        let mut policy = Policy::default();
        for (name, value) in &file.deadlines {
            let at = |problem: String| PolicyError { line: line_of(value.span().start), problem };
            let severity = Severity::parse(name)
                .ok_or_else(|| at(format!("deadlines: `{name}` is no severity (critical, high, medium, low)")))?;
            let d = humantime::parse_duration(value.get_ref()).map_err(|e| {
                at(format!("deadlines.{name}: `{}`: {e} (write e.g. \"24h\" or \"7days\")", value.get_ref()))
            })?;
            if d < Duration::from_secs(3600) {
                return Err(at(format!("deadlines.{name}: under an hour is no deadline to meet")));
            }
            policy.deadlines.insert(severity, d);
        }
        for (name, value) in &file.severity {
            let at = |problem: String| PolicyError { line: line_of(value.span().start), problem };
            let kind = Kind::parse(name).ok_or_else(|| {
                let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                at(format!("severity: `{name}` is no finding kind (known: {})", known.join(", ")))
            })?;
            let severity = Severity::parse(value.get_ref()).ok_or_else(|| {
                at(format!("severity.{name}: `{}` is no severity (critical, high, medium, low)", value.get_ref()))
            })?;
            policy.severity.insert(kind, severity);
        }
        Ok(policy)
    }

    pub fn severity_of(&self, kind: Kind) -> Severity {
        self.severity.get(&kind).copied().unwrap_or_else(|| kind.default_severity())
    }

    pub fn deadline_of(&self, severity: Severity) -> Duration {
        self.deadlines.get(&severity).copied().unwrap_or(Duration::from_secs(90 * 24 * 3600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_review_priorities() {
        let p = Policy::default();
        assert_eq!(p.severity_of(Kind::ExposedService), Severity::Critical);
        assert_eq!(p.severity_of(Kind::KnownExploited), Severity::Critical);
        assert_eq!(p.severity_of(Kind::VulnerableVersion), Severity::High);
        assert_eq!(p.severity_of(Kind::Undocumented), Severity::Medium);
        assert_eq!(p.severity_of(Kind::NotAsDocumented), Severity::Medium);
        assert_eq!(p.severity_of(Kind::Documented), Severity::Low);
        assert_eq!(p.deadline_of(Severity::Critical), Duration::from_secs(24 * 3600));
        assert_eq!(p.deadline_of(Severity::High), Duration::from_secs(7 * 24 * 3600));
    }

    #[test]
    fn a_file_overrides_only_what_it_names() {
        let p = Policy::parse("[deadlines]\ncritical = \"12h\"\n[severity]\ninventory-mismatch = \"low\"\n").unwrap();
        assert_eq!(p.deadline_of(Severity::Critical), Duration::from_secs(12 * 3600));
        assert_eq!(p.deadline_of(Severity::Medium), Duration::from_secs(30 * 24 * 3600));
        assert_eq!(p.severity_of(Kind::InventoryMismatch), Severity::Low);
        assert_eq!(p.severity_of(Kind::ExposedService), Severity::Critical);
    }

    #[test]
    fn errors_name_the_line() {
        let e = |t: &str| Policy::parse(t).unwrap_err().to_string();
        assert_eq!(
            e("[deadlines]\ncritical = \"24h\"\nhigh = \"soon\"\n"),
            "line 3: deadlines.high: `soon`: expected number at 0 (write e.g. \"24h\" or \"7days\")"
        );
        assert!(e("[severity]\n\nexposed-service = \"urgent\"\n").starts_with("line 3: severity.exposed-service"));
        assert!(e("[severity]\nopen-port = \"low\"\n").contains("no finding kind"));
        assert!(e("[deadlines]\nurgent = \"1h\"\n").contains("`urgent` is no severity"));
        assert!(e("[deadlines]\ncritical = \"10m\"\n").contains("under an hour"));
        assert!(e("[deadline]\ncritical = \"1h\"\n").starts_with("line 1: unknown field"));
        assert!(e("[deadlines\n").starts_with("line 1:"));
    }
}
