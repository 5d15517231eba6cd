//! A period's review as one piece of work: optionally scan the period
//! first, store the documents to judge against, plan the review, re-probe
//! the ports whose findings it would remediate, then review for real with
//! the confirmed ones. `vantage review` runs it (drawing its own progress
//! for the scan) and so does the schedule inside `vantage serve`.

use vantage_proto::v1;
use vantage_shared::convert::{addr_from_bytes, addr_to_bytes};
use vantage_shared::{Period, Proto};

use super::reprobe::{DEFAULT_HOST_RATE, MAX_CANDIDATES, reprobe};
use super::{Control, Say, WorkflowError, scan};
use crate::review::confirm::{Verdict, judge};
use crate::review::diff::{Change, ChangeKind};

/// What to review, and how.
#[derive(Debug, Clone)]
pub struct ReviewRun {
    pub period: Period,
    /// A scan of the period to run first.
    pub scan: Option<v1::StartScanRequest>,
    /// Documents (register, inventory, policy, integrations) to store first.
    pub documents: Vec<v1::PutDocumentRequest>,
    /// Re-probe closures before they count (`--no-confirm` turns it off;
    /// then nothing is remediated).
    pub confirm: bool,
    /// Re-probes per second to any one host.
    pub host_rate: u32,
}

impl ReviewRun {
    pub fn new(period: Period) -> ReviewRun {
        ReviewRun { period, scan: None, documents: Vec::new(), confirm: true, host_rate: DEFAULT_HOST_RATE }
    }
}

/// What a review did.
#[derive(Debug, Clone)]
pub struct ReviewDone {
    pub summary: v1::ReviewSummary,
    /// The scan it ran first, if any.
    pub scan: Option<v1::ScanStatus>,
}

/// Runs the review: scan (if asked), documents, plan, re-probe, review.
pub async fn run(control: &mut Control, r: &ReviewRun, say: Say<'_>) -> Result<ReviewDone, WorkflowError> {
    let scanned = match &r.scan {
        Some(request) => {
            let status = scan::run(control, request.clone()).await?;
            say(&format!("scan {} finished: {} open ports", status.scan_id, status.open));
            Some(status)
        }
        None => None,
    };
    for d in &r.documents {
        let info = control.put_document(d.clone()).await?.into_inner();
        say(&format!("stored {}: {}", info.name, info.summary));
    }
    let plan = v1::ReviewRequest { period: r.period.to_string(), plan_only: true, ..Default::default() };
    let plan = control.review(plan).await?.into_inner();
    let (confirmed_closed, confirmed_changed) = confirm_gone(control, &plan, r, say).await?;
    let request = v1::ReviewRequest {
        period: r.period.to_string(),
        confirm_closures: true,
        confirmed_closed,
        confirmed_changed,
        ..Default::default()
    };
    let summary = control.review(request).await?.into_inner();
    Ok(ReviewDone { summary, scan: scanned })
}

/// Re-probes the ports whose findings a review would remediate: closed ones
/// (still closed?) and open ones whose service changed (still as the period
/// saw it?), in one verification scan from every region with an agent. The
/// confirmed ones, closed and changed. A failed or skipped re-probe confirms
/// nothing, so nothing is remediated on its word.
async fn confirm_gone(
    control: &mut Control,
    plan: &v1::ReviewSummary,
    r: &ReviewRun,
    say: Say<'_>,
) -> Result<(Vec<v1::PortRef>, Vec<v1::PortRef>), WorkflowError> {
    let total = plan.closing.len() + plan.changing.len();
    if total == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let why_not = if !r.confirm {
        Some("--no-confirm")
    } else if total > MAX_CANDIDATES {
        Some("too many to re-probe")
    } else {
        None
    };
    if let Some(why) = why_not {
        say(&format!(
            "not re-probing {total} ports whose findings would be remediated ({why}): they stay as they were"
        ));
        return Ok((Vec::new(), Vec::new()));
    }
    let closed = plan.closing.iter().map(|p| {
        change_from_wire(v1::Change {
            kind: v1::ChangeKind::Closed as i32,
            addr: p.addr.clone(),
            proto: p.proto,
            port: p.port,
            ..Default::default()
        })
    });
    let changed = plan.changing.iter().cloned().map(change_from_wire);
    let candidates: Vec<Change> = closed.chain(changed).collect::<Result<_, _>>()?;
    let refs: Vec<&Change> = candidates.iter().collect();
    say(&format!(
        "re-probing {} closed ports and {} changed ones before their findings count as remediated",
        plan.closing.len(),
        plan.changing.len()
    ));
    let scanned = plan.baseline.as_ref().map(|b| b.regions.clone()).unwrap_or_default();
    let seen = match reprobe(control, &refs, r.host_rate, &scanned, say).await {
        Ok(seen) => seen,
        Err(e) => {
            say(&format!("re-probe failed: {e}; no remediation is confirmed"));
            return Ok((Vec::new(), Vec::new()));
        }
    };
    let port_ref = |c: &Change| v1::PortRef {
        addr: addr_to_bytes(c.addr),
        proto: v1::Proto::from(c.proto) as i32,
        port: u32::from(c.port),
    };
    let (mut closed, mut changed) = (Vec::new(), Vec::new());
    for c in candidates.iter().filter(|c| judge(c, &seen) == Verdict::Confirmed) {
        if c.kind == ChangeKind::Closed { &mut closed } else { &mut changed }.push(port_ref(c));
    }
    Ok((closed, changed))
}

/// A change as the Control API sends it, checked.
pub fn change_from_wire(c: v1::Change) -> Result<Change, WorkflowError> {
    let bad = |what: String| WorkflowError::Invalid(format!("change from the coordinator: {what}"));
    Ok(Change {
        kind: change_kind(c.kind()).ok_or_else(|| bad(format!("unknown change kind {}", c.kind)))?,
        addr: addr_from_bytes(&c.addr).map_err(|e| bad(e.to_string()))?,
        proto: if c.proto() == v1::Proto::Udp { Proto::Udp } else { Proto::Tcp },
        port: u16::try_from(c.port).map_err(|_| bad(format!("port {}", c.port)))?,
        before: c.before,
        after: c.after,
        open_in: c.open_in,
    })
}

fn change_kind(k: v1::ChangeKind) -> Option<ChangeKind> {
    Some(match k {
        v1::ChangeKind::New => ChangeKind::New,
        v1::ChangeKind::Closed => ChangeKind::Closed,
        v1::ChangeKind::ServiceChanged => ChangeKind::ServiceChanged,
        v1::ChangeKind::VersionChanged => ChangeKind::VersionChanged,
        v1::ChangeKind::TlsChanged => ChangeKind::TlsChanged,
        v1::ChangeKind::ReachabilityChanged => ChangeKind::ReachabilityChanged,
        v1::ChangeKind::StateChanged => ChangeKind::StateChanged,
        v1::ChangeKind::Unspecified => return None,
    })
}
