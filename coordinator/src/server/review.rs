//! The coordinator's side of findings: storing the documents reviews judge
//! against, running a review of a period, and the decisions operators take
//! on findings (acknowledge, accept a risk). The judging itself is in
//! [`crate::review::findings`]; this module gathers its inputs from the
//! store and writes its outcome back.

use std::collections::BTreeSet;
use std::time::SystemTime;

use tonic::Status;
use vantage_proto::v1;
use vantage_shared::convert::{addr_from_bytes, addr_to_bytes, time_from_wire};
use vantage_shared::{BaselineEntry, Method, Period, PortSpec, Proto, TargetSet, TargetSpec};

use crate::review::baseline;
use crate::review::diff::describe_facts;
use crate::review::findings::{
    Coverage, Event, EventKind, Finding, Knowledge, PortRef, Status as FindingStatus, evaluate, reconcile,
};
use crate::review::inventory::Inventory;
use crate::review::policy::Policy;
use crate::review::register::Register;
use crate::review::vulns::VulnDb;
use crate::store::{Document, Store, StoreError};

/// The store's name for a document kind.
pub fn kind_name(kind: v1::DocumentKind) -> Option<&'static str> {
    match kind {
        v1::DocumentKind::Register => Some("register"),
        v1::DocumentKind::Inventory => Some("inventory"),
        v1::DocumentKind::Policy => Some("policy"),
        v1::DocumentKind::Integrations => Some(crate::notify::DOCUMENT_KIND),
        v1::DocumentKind::Unspecified => None,
    }
}

/// Checks a document as its kind; a one-line summary of what it holds.
pub fn check(kind: &str, name: &str, text: &str) -> Result<String, String> {
    match kind {
        "register" => {
            let r = Register::parse(text).map_err(|e| e.in_file(name).to_string())?;
            let owners: std::collections::BTreeSet<&str> = r.entries().iter().map(|e| e.owner.as_str()).collect();
            Ok(format!("{} entries, {} owners", r.entries().len(), owners.len()))
        }
        "inventory" => {
            let i = Inventory::parse(text).map_err(|e| e.in_file(name).to_string())?;
            Ok(format!("{} records", i.records().len()))
        }
        "policy" => {
            Policy::parse(text).map_err(|e| format!("{name}: {e}"))?;
            Ok("policy".to_string())
        }
        crate::notify::DOCUMENT_KIND => {
            let i = crate::notify::Integrations::parse(text).map_err(|e| format!("{name}: {e}"))?;
            Ok(i.summary())
        }
        other => Err(format!("unknown document kind {other}")),
    }
}

pub fn put_document(store: &Store, req: v1::PutDocumentRequest) -> Result<v1::DocumentInfo, Status> {
    let kind = kind_name(req.kind()).ok_or_else(|| Status::invalid_argument("a document needs its kind"))?;
    let summary = check(kind, &req.name, &req.text).map_err(Status::invalid_argument)?;
    let doc = Document { kind: kind.into(), name: req.name, text: req.text, stored_at: SystemTime::now() };
    store.put_document(&doc)?;
    tracing::info!(kind, name = %doc.name, %summary, "review document stored");
    Ok(v1::DocumentInfo {
        kind: req.kind,
        name: doc.name,
        stored_at: Some(vantage_shared::convert::time_to_wire(doc.stored_at)),
        summary,
    })
}

/// What a review judges against, from the store.
struct Inputs {
    register: Option<Register>,
    inventory: Option<Inventory>,
    vulns: Option<VulnDb>,
    policy: Policy,
    /// Said back to the operator: what was there and what was not.
    knowledge: Vec<String>,
}

fn inputs(store: &Store) -> Result<Inputs, Status> {
    let stored = |kind: &str| -> Result<Option<Document>, Status> { Ok(store.document(kind)?) };
    // Documents were checked when stored; one that no longer parses (a newer
    // build reads stricter) is an error to fix, not a reason to judge blind.
    let broken = |d: &Document, e: String| Status::failed_precondition(format!("stored {} {}: {e}", d.kind, d.name));
    let mut knowledge = Vec::new();
    let register = match stored("register")? {
        Some(d) => {
            let r = Register::parse(&d.text).map_err(|e| broken(&d, e.in_file(&d.name).to_string()))?;
            knowledge.push(format!("register {} ({} entries)", d.name, r.entries().len()));
            Some(r)
        }
        None => {
            knowledge.push("no register: every open port counts as undocumented".into());
            None
        }
    };
    let inventory = match stored("inventory")? {
        Some(d) => {
            let i = Inventory::parse(&d.text).map_err(|e| broken(&d, e.in_file(&d.name).to_string()))?;
            knowledge.push(format!("inventory {} ({} records)", d.name, i.records().len()));
            Some(i)
        }
        None => {
            knowledge.push("no asset inventory".into());
            None
        }
    };
    let policy = match stored("policy")? {
        Some(d) => {
            let p = Policy::parse(&d.text).map_err(|e| broken(&d, e.to_string()))?;
            knowledge.push(format!("policy {}", d.name));
            p
        }
        None => {
            knowledge.push("default policy".into());
            Policy::default()
        }
    };
    let vulns = match store.vulns()? {
        Some(data) => {
            knowledge.push(format!("vulnerability data ({} CVEs, {} KEV entries)", data.cves.len(), data.kev.len()));
            Some(VulnDb::from_data(data))
        }
        None => {
            knowledge.push("no vulnerability data: no version is called vulnerable (vantage vulns import)".into());
            None
        }
    };
    Ok(Inputs { register, inventory, vulns, policy, knowledge })
}

/// Reviews a period: its baseline (built first if out of date) judged and
/// reconciled with the findings so far.
pub async fn review(store: &Store, req: v1::ReviewRequest) -> Result<v1::ReviewSummary, Status> {
    let period: Period =
        req.period.parse().map_err(|e: vantage_shared::period::PeriodError| Status::invalid_argument(e.to_string()))?;
    let Some(record) = baseline::current(store, period).await? else {
        return Err(Status::failed_precondition(format!(
            "no baseline for {period}: run a scan with --period {period} (or import one) first"
        )));
    };
    let inputs = inputs(store)?;
    // What the period's scans probed: only there can absence mean remediated.
    let mut covered: Vec<(TargetSet, PortSpec, Proto)> = Vec::new();
    for id in &record.scans {
        let Some(scan) = store.scan(*id)? else { continue };
        let (Ok(targets), Ok(ports)) = (TargetSpec::parse(&scan.targets), PortSpec::parse(&scan.ports)) else {
            continue;
        };
        covered.push((targets.resolve(), ports, if scan.is_udp() { Proto::Udp } else { Proto::Tcp }));
    }
    // Closed ports and open ones are disjoint: one set holds both confirmations.
    let confirmed: Option<BTreeSet<PortRef>> = if req.confirm_closures {
        Some(req.confirmed_closed.iter().chain(&req.confirmed_changed).map(port_from_wire).collect::<Result<_, _>>()?)
    } else {
        None
    };
    let plan_only = req.plan_only;
    let store2 = store.clone();
    let outcome = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
        let entries = store2.baseline_entries(record.period, record.revision).collect::<Result<Vec<_>, _>>()?;
        let knowledge = Knowledge {
            register: inputs.register.as_ref(),
            inventory: inputs.inventory.as_ref(),
            vulns: inputs.vulns.as_ref(),
            policy: &inputs.policy,
        };
        let candidates = evaluate(entries, record.regions.len(), knowledge, record.built_at);
        let is_covered =
            |addr, proto, port| covered.iter().any(|(t, p, pr)| *pr == proto && p.contains(port) && t.contains(addr));
        let coverage = Coverage { scanned: &is_covered, confirmed: confirmed.as_ref() };
        let mut id_error = None;
        let before = store2.findings()?;
        let outcome = reconcile(before.clone(), candidates, period, record.built_at, &inputs.policy, coverage, || {
            if plan_only {
                return "F-?".into();
            }
            store2.next_finding_id().unwrap_or_else(|e| {
                id_error.get_or_insert(e);
                String::new()
            })
        });
        if let Some(e) = id_error {
            return Err(e);
        }
        if !plan_only {
            // With the deliveries (tickets, escalations) their changes cause, in one step.
            let queued = crate::notify::store_findings(&store2, &before, &outcome.findings)?;
            if queued > 0 {
                tracing::info!(%period, deliveries = queued, "tickets and notifications queued");
            }
        }
        // What a re-probe must see again on ports whose findings change away
        // (read again: few ports, and the entries went into the judging).
        let mut changing = Vec::new();
        if !outcome.changing.is_empty() {
            for e in store2.baseline_entries(record.period, record.revision) {
                let e = e?;
                if outcome.changing.contains(&(e.addr, e.proto, e.port)) {
                    changing.push(expected_change(&e));
                }
            }
        }
        Ok((outcome, record, inputs.knowledge, changing))
    })
    .await
    .map_err(|e| Status::internal(format!("review task: {e}")))??;
    let (outcome, record, knowledge, changing) = outcome;
    if !plan_only {
        store.flush().await?;
        tracing::info!(
            %period, new = outcome.new, still_open = outcome.still_open, remediated = outcome.remediated,
            reopened = outcome.reopened, not_covered = outcome.not_covered, unconfirmed = outcome.unconfirmed,
            "review done"
        );
    }
    Ok(v1::ReviewSummary {
        baseline: Some(super::control::baseline_info(&record, true)),
        new: outcome.new as u64,
        still_open: outcome.still_open as u64,
        remediated: outcome.remediated as u64,
        reopened: outcome.reopened as u64,
        not_covered: outcome.not_covered as u64,
        knowledge,
        closing: outcome
            .closing
            .iter()
            .map(|(addr, proto, port)| v1::PortRef {
                addr: addr_to_bytes(*addr),
                proto: v1::Proto::from(*proto) as i32,
                port: u32::from(*port),
            })
            .collect(),
        unconfirmed: outcome.unconfirmed as u64,
        changing,
    })
}

/// The change a re-probe must see again on a port that stays open while its
/// finding goes: the period's service, or only the port open when the period
/// named none.
fn expected_change(e: &BaselineEntry) -> v1::Change {
    let facts = e.service.as_ref().filter(|f| f.method != Method::PortGuess);
    let kind = if facts.is_some() { v1::ChangeKind::ServiceChanged } else { v1::ChangeKind::New };
    v1::Change {
        kind: kind as i32,
        addr: addr_to_bytes(e.addr),
        proto: v1::Proto::from(e.proto) as i32,
        port: u32::from(e.port),
        after: facts.map(describe_facts).unwrap_or_default(),
        open_in: e.open_in.clone(),
        ..Default::default()
    }
}

fn port_from_wire(p: &v1::PortRef) -> Result<PortRef, Status> {
    let bad = |what: String| Status::invalid_argument(format!("confirmed_closed: {what}"));
    let addr = addr_from_bytes(&p.addr).map_err(|e| bad(e.to_string()))?;
    let proto = match p.proto() {
        v1::Proto::Tcp => Proto::Tcp,
        v1::Proto::Udp => Proto::Udp,
        v1::Proto::Unspecified => return Err(bad("no protocol".into())),
    };
    let port = u16::try_from(p.port).map_err(|_| bad(format!("port {}", p.port)))?;
    Ok((addr, proto, port))
}

pub fn record(f: &Finding) -> v1::FindingRecord {
    v1::FindingRecord { id: f.id.clone(), json: serde_json::to_vec(f).expect("findings serialize") }
}

/// A finding with its tickets and escalation ([`crate::notify::Notes`]) in the same JSON object.
pub fn record_with_notes(store: &Store, f: &Finding) -> Result<v1::FindingRecord, StoreError> {
    let notes = crate::notify::Notes::of(store, &f.id)?;
    let mut json = serde_json::to_value(f).expect("findings serialize");
    if let (Some(obj), serde_json::Value::Object(extra)) =
        (json.as_object_mut(), serde_json::to_value(notes).expect("notes serialize"))
    {
        obj.extend(extra);
    }
    Ok(v1::FindingRecord { id: f.id.clone(), json: serde_json::to_vec(&json).expect("json serializes") })
}

pub async fn update(store: &Store, req: v1::UpdateFindingRequest) -> Result<v1::FindingRecord, Status> {
    let mut f = store.finding(&req.id)?.ok_or_else(|| Status::not_found(format!("no finding {}", req.id)))?;
    let now = SystemTime::now();
    let by = if req.by.trim().is_empty() { "operator".to_string() } else { req.by.trim().to_string() };
    let verifying = matches!(req.action, Some(v1::update_finding_request::Action::Verified(_)));
    if matches!(f.status, FindingStatus::Remediated { .. }) && !verifying {
        return Err(Status::failed_precondition(format!("{} is remediated: nothing to decide", f.id)));
    }
    // A verification that remediates must reach the tickets as a change of status.
    let original = f.clone();
    let (kind, what) = match req.action {
        Some(v1::update_finding_request::Action::Acknowledge(_)) => {
            f.status = FindingStatus::Acknowledged { by: by.clone(), at: now };
            (EventKind::Acknowledged, format!("acknowledged by {by}"))
        }
        Some(v1::update_finding_request::Action::AcceptRisk(a)) => {
            let until = time_from_wire(a.until.as_ref())
                .filter(|u| *u > now)
                .ok_or_else(|| Status::invalid_argument("accepting a risk needs an end date in the future"))?;
            if a.reason.trim().is_empty() {
                return Err(Status::invalid_argument("accepting a risk needs a reason"));
            }
            f.status = FindingStatus::AcceptedRisk { by: by.clone(), reason: a.reason.clone(), until };
            let what =
                format!("risk accepted by {by} until {}: {}", humantime::format_rfc3339_seconds(until), a.reason);
            (EventKind::RiskAccepted, what)
        }
        Some(v1::update_finding_request::Action::Verified(v)) => verified(&mut f, &v, &by, now)?,
        None => return Err(Status::invalid_argument("no action: acknowledge or accept-risk")),
    };
    let before = if verifying { original } else { f.clone() };
    f.history.push(Event::new(kind, now, None, what));
    crate::notify::store_findings(store, std::slice::from_ref(&before), std::slice::from_ref(&f))?;
    store.flush().await?;
    Ok(record(&f))
}

/// Records a re-probe's views of a finding's port: remediated when every
/// region that looked saw it closed (DESIGN invariant 5's "later scan" is
/// here a scan of this one port from every live region); otherwise the
/// finding stays as it is. A remediated finding seen open again stays
/// remediated until a review reopens it, with the sighting in its history.
fn verified(f: &mut Finding, v: &v1::Verified, by: &str, now: SystemTime) -> Result<(EventKind, String), Status> {
    if v.regions.is_empty() || v.regions.iter().any(|r| r.region.trim().is_empty()) {
        return Err(Status::invalid_argument("a verification needs each region's view, named"));
    }
    let looked: Vec<&str> = v.regions.iter().map(|r| r.region.as_str()).collect();
    let open: Vec<&str> = v.regions.iter().filter(|r| r.open).map(|r| r.region.as_str()).collect();
    let remediated = matches!(f.status, FindingStatus::Remediated { .. });
    Ok(match (open.is_empty(), remediated) {
        (true, false) => {
            f.status = FindingStatus::Remediated { at: now, period: Period::of(now) };
            let what = format!("verified by {by}: closed from every region ({}); remediated", looked.join(", "));
            (EventKind::Remediated, what)
        }
        (true, true) => {
            (EventKind::Note, format!("verified by {by}: still closed from every region ({})", looked.join(", ")))
        }
        (false, _) => {
            let what =
                format!("verified by {by}: still open from {} (re-probed from {})", open.join(", "), looked.join(", "));
            (EventKind::Note, what)
        }
    })
}
