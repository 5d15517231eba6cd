//! The reminder before a scheduled review: people get time to close what
//! should not be open and document what should, before the scan sees it.
//!
//! It goes to the channels that escalations go to (`escalate = [...]` in
//! integrations.toml: Slack, email, webhooks) and to the log, rendered from
//! the `reminder.title` and `reminder.body` templates (user-overridable like
//! the others). Unlike tickets it is not kept in the outbox: it is about one
//! date, and a reminder that arrives after the review is worth nothing. Each
//! channel gets the integration's in-round retries; webhook requests carry an
//! `Idempotency-Key` per (integration, review date).

use std::path::Path;
use std::time::SystemTime;

use super::delivery::{Client, backoff, client};
use super::http::DeliveryError;
use super::stored_config;
use super::templates::{Message, Templates};
use crate::review::findings::{Finding, Severity};
use crate::store::{Store, StoreError};

/// What a reminder says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    /// When the review runs.
    pub review_at: SystemTime,
    /// Findings still to act on, of which critical, and past their deadline.
    pub open: usize,
    pub critical: usize,
    pub overdue: usize,
}

impl Reminder {
    /// The counts of `findings` at `now`.
    pub fn new(review_at: SystemTime, findings: &[Finding], now: SystemTime) -> Reminder {
        let active: Vec<&Finding> = findings.iter().filter(|f| f.status.is_active(now)).collect();
        Reminder {
            review_at,
            open: active.len(),
            critical: active.iter().filter(|f| f.severity == Severity::Critical).count(),
            overdue: active.iter().filter(|f| f.overdue(now)).count(),
        }
    }
}

/// What became of a reminder, channel by channel.
#[derive(Debug, Default)]
pub struct Sent {
    pub message: Option<Message>,
    pub delivered: Vec<String>,
    pub failed: Vec<(String, String)>,
}

/// Sends the reminder to every escalation channel of the stored integrations.
pub async fn send(store: &Store, r: &Reminder, now: SystemTime) -> Result<Sent, StoreError> {
    let Some(cfg) = stored_config(store)? else { return Ok(Sent::default()) };
    let templates = Templates::new(&cfg.templates, cfg.templates_dir.as_deref().map(Path::new))
        .or_else(|_| Templates::new(&Default::default(), None))
        .expect("built-in templates compile");
    let m = templates.render_reminder(r, now);
    let mut sent = Sent { message: Some(m.clone()), ..Sent::default() };
    for name in &cfg.escalate {
        let Some(i) = cfg.integrations.iter().find(|i| &i.name == name) else { continue };
        let mut last = None;
        for n in 0..cfg.attempts.max(1) {
            if n > 0 {
                tokio::time::sleep(backoff(&cfg, n)).await;
            }
            match deliver(i, r, &m).await {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        match last {
            None => sent.delivered.push(name.clone()),
            Some(e) => sent.failed.push((name.clone(), e.to_string())),
        }
    }
    Ok(sent)
}

async fn deliver(i: &super::config::Integration, r: &Reminder, m: &Message) -> Result<(), DeliveryError> {
    match client(i)? {
        Client::Slack(s) => s.post(m).await,
        Client::Email(e) => e.send(m, None).await,
        Client::Webhook(w) => w.post_reminder(r, m).await,
        Client::Jira(_) | Client::GitHub(_) => {
            Err(DeliveryError::Config(format!("{} files tickets; it cannot remind", i.name)))
        }
    }
}
