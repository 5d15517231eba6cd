//! Verifying findings: re-probe each one's address and port from every live
//! region, and record what each region saw on the finding (`vantage verify`,
//! the schedule's daily re-check of open critical findings).
//!
//! The verdict is [`judge`]'s on a closure: a finding is gone only when
//! every region that re-probed it saw the port closed, and at least one
//! region did; the coordinator then marks it remediated. Either way the
//! finding's history gets the regions' views.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use vantage_proto::v1;

use super::reprobe::{DEFAULT_HOST_RATE, reprobe};
use super::{Control, Say, WorkflowError, scan};
use crate::review::confirm::{Verdict, judge};
use crate::review::diff::{Change, ChangeKind};
use crate::review::findings::Finding;

/// How long a verification waits for some agent to be connected.
pub const AGENT_WAIT: Duration = Duration::from_secs(10);

/// What a verification asks.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    /// The findings (`F-12`) to re-probe.
    pub ids: Vec<String>,
    /// Who verifies, for the history.
    pub by: String,
    /// Re-probes per second to any one host.
    pub host_rate: u32,
}

impl VerifyRequest {
    pub fn new(ids: Vec<String>, by: impl Into<String>) -> VerifyRequest {
        VerifyRequest { ids, by: by.into(), host_rate: DEFAULT_HOST_RATE }
    }
}

/// One region's view of one finding's port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sight {
    pub region: String,
    pub open: bool,
}

/// The outcome for one finding.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub id: String,
    pub target: String,
    pub regions: Vec<Sight>,
    /// `gone` (every region saw it closed), `open` (some region still sees
    /// it), `regions-disagree`, or `unconfirmable` (no region could look).
    pub conclusion: &'static str,
    /// The finding's status after the verification.
    pub status: String,
    /// The finding as stored afterwards.
    pub finding: Finding,
}

/// Every finding the coordinator keeps.
pub async fn findings(control: &mut Control) -> Result<Vec<Finding>, WorkflowError> {
    let mut stream = control.list_findings(v1::ListFindingsRequest {}).await?.into_inner();
    let mut out = Vec::new();
    while let Some(r) = stream.message().await? {
        out.push(
            serde_json::from_slice(&r.json).map_err(|e| WorkflowError::Invalid(format!("finding {}: {e}", r.id)))?,
        );
    }
    Ok(out)
}

/// Re-probes the findings' ports from every live region and records each
/// verdict on its finding.
pub async fn verify(
    control: &mut Control,
    req: &VerifyRequest,
    say: Say<'_>,
) -> Result<Vec<Verification>, WorkflowError> {
    let all = findings(control).await?;
    let mut chosen = Vec::new();
    for id in &req.ids {
        let f = all
            .iter()
            .find(|f| f.id.eq_ignore_ascii_case(id))
            .ok_or_else(|| tonic::Status::not_found(format!("no finding {id} (vantage findings --all lists them)")))?;
        chosen.push(f.clone());
    }
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    if scan::wait_for_agents(control, AGENT_WAIT).await?.is_empty() {
        return Err(tonic::Status::failed_precondition("no agent is connected: nothing can re-probe").into());
    }
    let changes: Vec<Change> = chosen.iter().map(closure).collect();
    let refs: Vec<&Change> = changes.iter().filter(|c| c.port != 0).collect();
    let seen = reprobe(control, &refs, req.host_rate, &[], say).await?;
    let mut out = Vec::new();
    for (f, c) in chosen.iter().zip(&changes) {
        let key = (c.addr, c.proto, c.port);
        let regions: Vec<Sight> = if c.port == 0 {
            Vec::new()
        } else {
            seen.by_region.iter().map(|(r, s)| Sight { region: r.clone(), open: s.contains_key(&key) }).collect()
        };
        // Every region that looked is one whose view counts.
        let mut view = seen.clone();
        view.scanned = view.by_region.keys().cloned().collect();
        let conclusion = match judge(c, &view) {
            _ if regions.is_empty() => "unconfirmable",
            Verdict::Confirmed => "gone",
            Verdict::Contradicted => "open",
            Verdict::RegionsDisagree => "regions-disagree",
            Verdict::Unconfirmable => "unconfirmable",
        };
        let finding = if regions.is_empty() { f.clone() } else { record(control, f, &regions, &req.by).await? };
        let status = finding.status.name().to_string();
        out.push(Verification { id: f.id.clone(), target: f.key.to_string(), regions, conclusion, status, finding });
    }
    Ok(out)
}

/// A finding's port, as a closure a re-probe must confirm.
fn closure(f: &Finding) -> Change {
    Change {
        kind: ChangeKind::Closed,
        addr: f.key.addr,
        proto: f.key.proto,
        port: f.key.port,
        before: String::new(),
        after: String::new(),
        open_in: Vec::new(),
    }
}

async fn record(control: &mut Control, f: &Finding, regions: &[Sight], by: &str) -> Result<Finding, WorkflowError> {
    let verified = v1::Verified {
        regions: regions.iter().map(|s| v1::RegionSight { region: s.region.clone(), open: s.open }).collect(),
    };
    let request = v1::UpdateFindingRequest {
        id: f.id.clone(),
        by: by.to_string(),
        action: Some(v1::update_finding_request::Action::Verified(verified)),
    };
    let r = control.update_finding(request).await?.into_inner();
    serde_json::from_slice(&r.json).map_err(|e| WorkflowError::Invalid(format!("finding {}: {e}", r.id)))
}

/// Counts of verifications by conclusion, for one log line.
pub fn tally(done: &[Verification]) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for v in done {
        *out.entry(v.conclusion).or_default() += 1;
    }
    out
}
