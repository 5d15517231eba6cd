//! The monthly review: periods' baselines, what changed between them, and
//! the findings people act on.
//!
//! * [`baseline`]: building a period's baseline from its latest scans, merged across regions.
//! * [`confirm`]: judging candidate changes against a re-probe.
//! * [`diff`]: the typed changes between two baselines, as a merge-join.
//! * [`export`]: findings in other tools' formats (DefectDojo's generic findings import).
//! * [`findings`]: what a review asks people to act on: severity, owner, deadline, status, history.
//! * [`ignore`]: ignore rules for known noise, each with a reason and an expiry.
//! * [`import`]: an nmap XML report as a baseline (history from before Vantage).
//! * [`inventory`]: the asset inventory (CSV), and where a scan disagrees with it.
//! * [`policy`]: severities per kind of finding and deadlines per severity.
//! * [`reachability`]: one scan's open ports from every region, and where regions disagree.
//! * [`register`]: the justification register of documented exposures, and judging ports against it.
//! * [`vulns`]: offline NVD and CISA KEV data, and which CVEs a detected CPE falls under.

pub mod baseline;
pub mod confirm;
pub mod diff;
pub mod export;
pub mod findings;
pub mod ignore;
pub mod import;
pub mod inventory;
pub mod policy;
pub mod reachability;
pub mod register;
pub mod vulns;

/// `file:line: `, `file: `, `line N: ` or nothing: where a problem in a
/// review document is, as its error message starts.
pub(crate) fn write_place(
    f: &mut std::fmt::Formatter<'_>,
    file: Option<&str>,
    line: Option<impl std::fmt::Display>,
) -> std::fmt::Result {
    match (file, line) {
        (Some(file), Some(line)) => write!(f, "{file}:{line}: "),
        (Some(file), None) => write!(f, "{file}: "),
        (None, Some(line)) => write!(f, "line {line}: "),
        (None, None) => Ok(()),
    }
}

/// An open TCP port of a baseline, for the review's tests.
#[cfg(test)]
pub(crate) fn open_entry(
    addr: &str,
    port: u16,
    service: Option<vantage_shared::ServiceFacts>,
    regions: &[&str],
    seen_at: std::time::SystemTime,
) -> vantage_shared::BaselineEntry {
    vantage_shared::BaselineEntry {
        addr: addr.parse().unwrap(),
        proto: vantage_shared::Proto::Tcp,
        port,
        state: vantage_shared::PortState::Open,
        open_in: regions.iter().map(|r| r.to_string()).collect(),
        service,
        scan_id: 1,
        seen_at,
    }
}
