//! Tickets and notifications: findings carried to where the team works.
//!
//! A review's findings are only worth what people do with them, and people
//! work in their tracker and their chat. So every finding gets one ticket
//! per tracker (Jira, GitHub Issues, a JSON webhook): created once, updated
//! when the finding changes (severity, status, detail), closed with a
//! comment when a review confirms it remediated. A new critical finding is
//! escalated at once (Slack, email, a webhook, and its owner by email),
//! never held back for the monthly report.
//!
//! Delivery is durable and idempotent:
//! * The review writes its findings and the deliveries their changes cause
//!   in one sled transaction ([`plan`] decides which, comparing each finding
//!   with what it was before): a crash keeps both or neither.
//! * A background task ([`delivery`]) works the outbox, oldest first, and
//!   removes an item only once the far side accepted it. Errors and
//!   timeouts are retried with exponential backoff: a few tries per round,
//!   then the item waits for a later round, never dropped.
//! * Each ticket's key is stored with the finding (`tickets` tree). Before a
//!   create leaves, the ticket is recorded as "create sent"; a retry of a
//!   create whose answer was lost (a timeout after the tracker acted) first
//!   searches the tracker for the finding's marker label (`vantage:F-12`,
//!   `vantage-F-12`) and adopts what it finds instead of filing again.
//!   Webhooks cannot be searched: every request carries an
//!   `Idempotency-Key` that is the same on every retry, for the receiver to
//!   deduplicate by.
//! * Escalations record each channel told (`escalations` tree); a channel
//!   already told is not told again. Chat and mail have no idempotency keys:
//!   a timeout after delivery may repeat one message (at least once).
//!
//! * [`config`]: `integrations.toml`, checked with lines and fields.
//! * [`templates`]: the messages, per finding kind, user-overridable.
//! * [`jira`], [`github`], [`webhook`], [`slack`], [`email`]: one integration each.

pub mod config;
pub mod delivery;
pub mod email;
pub mod github;
mod http;
pub mod jira;
pub mod reminder;
pub mod slack;
pub mod templates;
pub mod webhook;

#[cfg(test)]
pub(crate) mod testutil;

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::review::findings::{Finding, FindingKey, Status};
use crate::store::{Store, StoreError};
pub use config::{ConfigError, Integrations};
pub use delivery::{Notifier, NotifierConfig};

/// The store's document kind for `integrations.toml`.
pub const DOCUMENT_KIND: &str = "integrations";

/// What a delivery does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Bring the finding's ticket to the finding's state: create, update, close.
    Sync,
    /// Tell a channel about a new finding.
    Escalate,
    /// Tell the finding's owner, by email.
    EscalateOwner { to: String },
}

/// One delivery to make, with the finding as it was when enqueued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub integration: String,
    #[serde(flatten)]
    pub action: Action,
    pub finding: Finding,
    pub enqueued_at: SystemTime,
    /// Tries so far, over all rounds.
    #[serde(default)]
    pub attempts: u32,
    /// Not before this time (backoff after failures).
    pub next_at: SystemTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Where a finding's ticket stands in one tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TicketState {
    /// A create left; its answer has not come back (yet).
    CreateSent,
    Open,
    Closed,
}

impl TicketState {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketState::CreateSent => "create sent",
            TicketState::Open => "open",
            TicketState::Closed => "closed",
        }
    }
}

/// A finding's twin in a tracker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRecord {
    pub finding_id: String,
    pub integration: String,
    pub state: TicketState,
    /// The tracker's key: `SEC-12`, `#34`, the webhook receiver's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The [`fingerprint`] of what the ticket says now.
    pub fingerprint: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<SystemTime>,
    pub updated_at: SystemTime,
}

/// Where a tracker filed a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRef {
    pub key: String,
    pub url: Option<String>,
}

/// When a finding was escalated, channel by channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    pub finding_id: String,
    /// The first channel's delivery.
    pub at: SystemTime,
    pub channels: BTreeMap<String, SystemTime>,
}

/// A finding's tickets and escalation, as `vantage findings show` and the
/// report show them (added to the finding's JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notes {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tickets: Vec<TicketRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
}

impl Notes {
    pub fn of(store: &Store, finding_id: &str) -> Result<Notes, StoreError> {
        Ok(Notes { tickets: store.tickets_of(finding_id)?, escalation: store.escalation(finding_id)? })
    }
}

/// What a ticket shows of a finding; a change in it is worth an update.
pub fn fingerprint(f: &Finding) -> u64 {
    let shown = serde_json::to_vec(&(f.severity, f.status.name(), &f.sentence, &f.detail, &f.owner, f.deadline))
        .expect("findings serialize");
    // FNV-1a: stable across builds, unlike std's hasher.
    shown.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The marker that finds a finding's ticket again (a label).
pub fn marker(f: &Finding) -> String {
    format!("vantage:{}", f.id)
}

/// The deliveries a change of findings causes: for each tracker, a sync of
/// every finding that changed (or has no ticket yet and none pending); for
/// each escalation channel, every new finding of the escalated severity.
pub fn plan(
    cfg: &Integrations,
    before: &[Finding],
    after: &[Finding],
    has_ticket: &dyn Fn(&str, &str) -> bool,
    pending: &BTreeSet<(String, String)>,
    now: SystemTime,
) -> Vec<OutboxItem> {
    let before: BTreeMap<FindingKey, &Finding> = before.iter().map(|f| (f.key, f)).collect();
    let item = |integration: &str, action: Action, f: &Finding| OutboxItem {
        integration: integration.to_string(),
        action,
        finding: f.clone(),
        enqueued_at: now,
        attempts: 0,
        next_at: now,
        last_error: None,
    };
    let mut out = Vec::new();
    for f in after {
        let old = before.get(&f.key);
        let changed = old.is_none_or(|o| fingerprint(o) != fingerprint(f));
        let is_new = old.is_none_or(|o| matches!(o.status, Status::Remediated { .. }) && f.status == Status::Reopened);
        for i in cfg.integrations.iter().filter(|i| i.tickets) {
            let ticketed = has_ticket(&f.id, &i.name);
            let wanted = ticketed || (i.wants(f.key.kind, f.severity) && f.status.is_active(now));
            let missing = !ticketed && !pending.contains(&(f.id.clone(), i.name.clone()));
            if wanted && (changed || missing) {
                out.push(item(&i.name, Action::Sync, f));
            }
        }
        if is_new && cfg.escalate_severity.is_some_and(|s| f.severity >= s) && f.status.is_active(now) {
            for c in &cfg.escalate {
                out.push(item(c, Action::Escalate, f));
            }
            if let (Some(via), Some(contact)) = (&cfg.owner_via, &f.contact)
                && contact.contains('@')
            {
                out.push(item(via, Action::EscalateOwner { to: contact.clone() }, f));
            }
        }
    }
    out
}

/// The stored integrations file, parsed; `None` without one.
pub fn stored_config(store: &Store) -> Result<Option<Integrations>, StoreError> {
    let Some(doc) = store.document(DOCUMENT_KIND)? else { return Ok(None) };
    match Integrations::parse(&doc.text) {
        Ok(c) => Ok(Some(c)),
        Err(e) => {
            // Checked when stored: only a stricter build gets here.
            tracing::error!(name = %doc.name, error = %e, "stored integrations no longer parse; nothing is delivered");
            Ok(None)
        }
    }
}

/// Stores changed findings with the deliveries their changes cause.
pub fn store_findings(store: &Store, before: &[Finding], after: &[Finding]) -> Result<usize, StoreError> {
    let items = match stored_config(store)? {
        Some(cfg) => {
            let pending: BTreeSet<(String, String)> =
                store.outbox()?.into_iter().map(|(_, i)| (i.finding.id, i.integration)).collect();
            let has_ticket = |id: &str, name: &str| store.ticket(id, name).ok().flatten().is_some();
            plan(&cfg, before, after, &has_ticket, &pending, SystemTime::now())
        }
        None => Vec::new(),
    };
    store.put_findings_notify(after, &items)?;
    Ok(items.len())
}

#[cfg(test)]
mod tests;
