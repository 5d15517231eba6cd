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
//!
//! [costs]                     # optional: what one exposure would cost if exploited,
//! currency = "EUR"            # per severity; reports show the cost avoided by closures
//! critical = 250000
//! high = 50000
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
    /// The user's estimate of what an exploited exposure costs, by severity;
    /// `None` until configured (reports then say how, and invent nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub costs: Option<Costs>,
}

/// What one exposure of a severity would cost if exploited, in `currency`:
/// the user's own figures, for the reports' "cost avoided".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Costs {
    pub currency: String,
    /// Severities without a figure count as zero.
    pub per_severity: BTreeMap<Severity, u64>,
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
            costs: None,
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
    costs: Option<toml::Spanned<BTreeMap<String, toml::Spanned<toml::Value>>>>,
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
        if let Some(costs) = &file.costs {
            policy.costs = Some(parse_costs(costs, &line_of)?);
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

/// The `[costs]` table: a currency and whole amounts per severity.
fn parse_costs(
    table: &toml::Spanned<BTreeMap<String, toml::Spanned<toml::Value>>>,
    line_of: &dyn Fn(usize) -> Option<usize>,
) -> Result<Costs, PolicyError> {
    let mut currency = None;
    let mut per_severity = BTreeMap::new();
    for (name, value) in table.get_ref() {
        let at = |problem: String| PolicyError { line: line_of(value.span().start), problem };
        if name == "currency" {
            let c = value.get_ref().as_str().map(str::trim).filter(|c| !c.is_empty());
            currency = Some(c.ok_or_else(|| at("costs.currency: write a currency, e.g. \"EUR\"".into()))?.to_string());
            continue;
        }
        let severity = Severity::parse(name).ok_or_else(|| {
            at(format!("costs: `{name}` is neither `currency` nor a severity (critical, high, medium, low)"))
        })?;
        let amount = value.get_ref().as_integer().and_then(|n| u64::try_from(n).ok()).ok_or_else(|| {
            at(format!("costs.{name}: `{}` is no whole amount (write e.g. {name} = 250000)", value.get_ref()))
        })?;
        per_severity.insert(severity, amount);
    }
    let currency = currency.ok_or_else(|| PolicyError {
        line: line_of(table.span().start),
        problem: "costs: name the currency (currency = \"EUR\")".into(),
    })?;
    Ok(Costs { currency, per_severity })
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
    fn costs_are_optional_and_checked() {
        assert_eq!(Policy::parse("").unwrap().costs, None);
        let p = Policy::parse("[costs]\ncurrency = \"EUR\"\ncritical = 250000\nhigh = 50000\n").unwrap();
        let costs = p.costs.unwrap();
        assert_eq!(costs.currency, "EUR");
        assert_eq!(costs.per_severity.get(&Severity::Critical), Some(&250_000));
        assert_eq!(costs.per_severity.get(&Severity::Low), None);
        let e = |t: &str| Policy::parse(t).unwrap_err().to_string();
        assert_eq!(e("[costs]\ncritical = 1\n"), "line 1: costs: name the currency (currency = \"EUR\")");
        assert!(e("[costs]\ncurrency = \"EUR\"\nhigh = -5\n").starts_with("line 3: costs.high: `-5`"));
        assert!(e("[costs]\ncurrency = \"EUR\"\nsevere = 5\n").contains("neither `currency` nor a severity"));
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
