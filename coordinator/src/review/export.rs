//! Findings in other tools' formats, so teams keep working where they track
//! remediation. DefectDojo's "Generic Findings Import" JSON: each finding
//! keyed by its stable identity (`unique_id_from_tool`), so a re-import
//! updates DefectDojo's finding instead of filing a second one, and closed
//! ones arrive mitigated.

use std::time::SystemTime;

use serde::Serialize;

use super::findings::{Finding, Kind, Severity, Status};

/// The document DefectDojo's generic JSON parser reads.
#[derive(Debug, Serialize)]
pub struct DefectDojo {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub findings: Vec<DojoFinding>,
}

/// One finding, in the fields DefectDojo's generic import accepts.
#[derive(Debug, Serialize)]
pub struct DojoFinding {
    pub title: String,
    pub severity: &'static str,
    pub description: String,
    pub mitigation: String,
    pub impact: String,
    pub date: String,
    pub active: bool,
    pub verified: bool,
    pub false_p: bool,
    pub risk_accepted: bool,
    pub is_mitigated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mitigated: Option<String>,
    pub unique_id_from_tool: String,
    pub vuln_id_from_tool: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cve: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vulnerability_ids: Vec<String>,
    pub known_exploited: bool,
    pub planned_remediation_date: String,
    pub tags: Vec<String>,
    pub endpoints: Vec<DojoEndpoint>,
}

#[derive(Debug, Serialize)]
pub struct DojoEndpoint {
    pub host: String,
    pub port: u16,
    pub protocol: String,
}

/// What to do about a kind of finding, in a sentence.
pub fn mitigation(kind: Kind) -> &'static str {
    match kind {
        Kind::ExposedService => {
            "Close the port to the internet (firewall or bind address), or document the business need with an owner \
             and restrict who may connect."
        }
        Kind::KnownExploited => {
            "Upgrade to a fixed version now, or take the service off the internet until it is; check the host for \
             signs of compromise."
        }
        Kind::VulnerableVersion => "Upgrade to a version outside the affected ranges.",
        Kind::Undocumented => "Find the owner; document the service in the register with a justification, or close it.",
        Kind::NotAsDocumented => "Bring the service back to what the register documents, or update the register entry.",
        Kind::ReviewOverdue => "Have the owner renew the register entry's review-by date, or close the port.",
        Kind::InventoryMismatch => "Correct the asset inventory or the host so that they agree.",
        Kind::AnswersAll => "Find out what answers on every port (SYN proxy, tarpit, CDN edge) and document it.",
        Kind::Documented => "None: documented and as documented. Keep the register entry current.",
    }
}

fn dojo_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "Critical",
        Severity::High => "High",
        Severity::Medium => "Medium",
        Severity::Low => "Low",
    }
}

fn day(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()[..10].to_string()
}

/// The findings as DefectDojo's generic findings import.
pub fn defectdojo(findings: &[Finding], now: SystemTime) -> DefectDojo {
    let findings = findings
        .iter()
        .map(|f| {
            let d = &f.detail;
            let what = match (&d.product, &d.version) {
                (Some(p), Some(v)) => format!(" ({p} {v})"),
                (Some(p), None) => format!(" ({p})"),
                _ => String::new(),
            };
            let mut description = format!("{}\n\n", f.sentence);
            for (label, value) in [
                ("Finding", Some(format!("{} ({})", f.id, f.key))),
                ("Owner", f.owner.clone()),
                ("Service", d.service.clone()),
                ("Category", d.category.clone()),
                ("CPE", (!d.cpe.is_empty()).then(|| d.cpe.join(", "))),
                (
                    "Open from",
                    (!d.regions.is_empty()).then(|| {
                        format!("{} of {} regions: {}", d.regions.len(), d.regions_scanned, d.regions.join(", "))
                    }),
                ),
                ("Why", (!d.reasons.is_empty()).then(|| d.reasons.join("; "))),
                ("Justification", d.justification.clone()),
                ("Repeats", (f.repeats > 0).then(|| f.repeats.to_string())),
            ] {
                if let Some(value) = value {
                    description.push_str(&format!("**{label}:** {value}\n\n"));
                }
            }
            let (mitigated, accepted) = match &f.status {
                Status::Remediated { at, .. } => (Some(humantime::format_rfc3339_seconds(*at).to_string()), false),
                Status::AcceptedRisk { until, .. } => (None, now < *until),
                _ => (None, false),
            };
            let mut tags = vec!["vantage".to_string(), f.key.kind.to_string()];
            tags.extend(d.category.clone());
            DojoFinding {
                title: format!("{}{what} on {}:{}/{}", title_of(f.key.kind), f.key.addr, f.key.port, f.key.proto),
                severity: dojo_severity(f.severity),
                description,
                mitigation: mitigation(f.key.kind).to_string(),
                impact: f.sentence.clone(),
                date: day(f.first_seen),
                active: f.status.is_active(now),
                verified: true,
                false_p: false,
                risk_accepted: accepted,
                is_mitigated: mitigated.is_some(),
                mitigated,
                // The identity, not the store's id: stable across stores and re-imports.
                unique_id_from_tool: f.key.to_string(),
                vuln_id_from_tool: f.key.kind.as_str(),
                component_name: d.product.clone(),
                component_version: d.version.clone(),
                service: d.service.clone(),
                cve: d.cves.first().cloned(),
                vulnerability_ids: d.cves.iter().skip(1).cloned().collect(),
                known_exploited: f.key.kind == Kind::KnownExploited,
                planned_remediation_date: day(f.deadline),
                tags,
                endpoints: vec![DojoEndpoint {
                    host: f.key.addr.to_string(),
                    port: f.key.port,
                    protocol: d.service.clone().unwrap_or_else(|| f.key.proto.to_string()),
                }],
            }
        })
        .collect();
    DefectDojo { name: "Vantage", kind: "Vantage external port review", findings }
}

fn title_of(kind: Kind) -> &'static str {
    match kind {
        Kind::ExposedService => "Exposed undocumented service",
        Kind::KnownExploited => "Known-exploited version",
        Kind::VulnerableVersion => "Vulnerable version",
        Kind::Undocumented => "Undocumented service",
        Kind::NotAsDocumented => "Service differs from its documentation",
        Kind::ReviewOverdue => "Justification overdue for review",
        Kind::InventoryMismatch => "Inventory mismatch",
        Kind::AnswersAll => "Host answers on every port",
        Kind::Documented => "Documented service",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::*;
    use crate::review::findings::{Detail, Event, EventKind, FindingKey};

    /// The fields DefectDojo's generic JSON parser accepts on a finding
    /// (dojo/tools/generic/json_parser.py): anything else fails the import.
    const ACCEPTED: &[&str] = &[
        "title",
        "severity",
        "description",
        "date",
        "cwe",
        "cve",
        "epss_score",
        "epss_percentile",
        "cvssv3",
        "cvssv3_score",
        "cvssv4",
        "cvssv4_score",
        "mitigation",
        "impact",
        "steps_to_reproduce",
        "severity_justification",
        "references",
        "active",
        "verified",
        "false_p",
        "out_of_scope",
        "risk_accepted",
        "under_review",
        "is_mitigated",
        "thread_id",
        "mitigated",
        "numerical_severity",
        "param",
        "payload",
        "line",
        "file_path",
        "component_name",
        "component_version",
        "static_finding",
        "dynamic_finding",
        "scanner_confidence",
        "unique_id_from_tool",
        "vuln_id_from_tool",
        "sast_source_object",
        "sast_sink_object",
        "sast_source_line",
        "sast_source_file_path",
        "nb_occurences",
        "publish_date",
        "service",
        "planned_remediation_date",
        "planned_remediation_version",
        "effort_for_fixing",
        "tags",
        "kev_date",
        "known_exploited",
        "ransomware_used",
        "fix_available",
        "fix_version",
        "endpoints",
        "files",
        "vulnerability_ids",
        "cwes",
    ];

    fn finding(kind: Kind, status: Status) -> Finding {
        let t = humantime::parse_rfc3339("2026-11-02T09:00:00Z").unwrap();
        Finding {
            id: "F-3".into(),
            key: FindingKey { addr: "198.18.0.10".parse().unwrap(), proto: vantage_shared::Proto::Tcp, port: 22, kind },
            severity: Severity::Critical,
            status,
            owner: Some("ops".into()),
            contact: None,
            first_seen: t,
            opened_at: t,
            last_seen: t,
            last_period: "2026-11".parse().unwrap(),
            deadline: t + Duration::from_secs(24 * 3600),
            repeats: 1,
            sentence: "OpenSSH 9.2p1 runs a version with 1 vulnerability known to be exploited.".into(),
            detail: Detail {
                service: Some("ssh".into()),
                product: Some("OpenSSH".into()),
                version: Some("9.2p1".into()),
                cves: vec!["CVE-2099-0001".into(), "CVE-2099-0002".into()],
                regions: vec!["eu".into()],
                regions_scanned: 2,
                ..Detail::default()
            },
            history: vec![Event::new(EventKind::Found, t, None, "found")],
        }
    }

    #[test]
    fn every_field_is_one_defectdojo_accepts_and_the_required_ones_are_there() {
        let now = humantime::parse_rfc3339("2026-11-10T00:00:00Z").unwrap();
        let doc = serde_json::to_value(defectdojo(&[finding(Kind::KnownExploited, Status::Open)], now)).unwrap();
        let f = doc["findings"][0].as_object().unwrap();
        let accepted: BTreeSet<&str> = ACCEPTED.iter().copied().collect();
        for key in f.keys() {
            assert!(accepted.contains(key.as_str()), "DefectDojo refuses the field {key}");
        }
        for required in ["title", "severity", "description"] {
            assert!(f.contains_key(required), "{required} missing");
        }
        assert_eq!(f["title"], "Known-exploited version (OpenSSH 9.2p1) on 198.18.0.10:22/tcp");
        assert_eq!(f["severity"], "Critical");
        assert_eq!(f["cve"], "CVE-2099-0001");
        assert_eq!(f["vulnerability_ids"], serde_json::json!(["CVE-2099-0002"]));
        assert_eq!(f["unique_id_from_tool"], "198.18.0.10:22/tcp known-exploited");
        assert_eq!(f["planned_remediation_date"], "2026-11-03");
        assert_eq!(f["endpoints"][0], serde_json::json!({"host": "198.18.0.10", "port": 22, "protocol": "ssh"}));
        assert_eq!((f["active"].as_bool(), f["known_exploited"].as_bool()), (Some(true), Some(true)));
        assert!(f["description"].as_str().unwrap().contains("**Owner:** ops"));
    }

    #[test]
    fn remediated_and_accepted_findings_arrive_closed() {
        let now = humantime::parse_rfc3339("2026-12-10T00:00:00Z").unwrap();
        let closed_at = humantime::parse_rfc3339("2026-12-01T09:00:00Z").unwrap();
        let closed =
            finding(Kind::Undocumented, Status::Remediated { at: closed_at, period: "2026-12".parse().unwrap() });
        let until = now + Duration::from_secs(86400);
        let accepted =
            finding(Kind::Undocumented, Status::AcceptedRisk { by: "ciso".into(), reason: "x".into(), until });
        let doc = serde_json::to_value(defectdojo(&[closed, accepted], now)).unwrap();
        let (c, a) = (&doc["findings"][0], &doc["findings"][1]);
        assert_eq!((c["active"].as_bool(), c["is_mitigated"].as_bool()), (Some(false), Some(true)));
        assert_eq!(c["mitigated"], "2026-12-01T09:00:00Z");
        assert_eq!((a["active"].as_bool(), a["risk_accepted"].as_bool()), (Some(false), Some(true)));
        assert!(a.get("mitigated").is_none());
    }
}
