//! The monthly review: periods' baselines, what changed between them, and
//! the findings people act on.
//!
//! * [`baseline`]: building a period's baseline from its latest scans, merged across regions.
//! * [`confirm`]: judging candidate changes against a re-probe.
//! * [`diff`]: the typed changes between two baselines, as a merge-join.
//! * [`findings`]: what a review asks people to act on: severity, owner, deadline, status, history.
//! * [`ignore`]: ignore rules for known noise, each with a reason and an expiry.
//! * [`import`]: an nmap XML report as a baseline (history from before Vantage).
//! * [`inventory`]: the asset inventory (CSV), and where a scan disagrees with it.
//! * [`policy`]: severities per kind of finding and deadlines per severity.
//! * [`register`]: the justification register of documented exposures, and judging ports against it.
//! * [`vulns`]: offline NVD and CISA KEV data, and which CVEs a detected CPE falls under.

pub mod baseline;
pub mod confirm;
pub mod diff;
pub mod findings;
pub mod ignore;
pub mod import;
pub mod inventory;
pub mod policy;
pub mod register;
pub mod vulns;
