//! The delivery task: works the outbox, oldest first, until shutdown, then
//! drains what is due for a grace period.
//!
//! A round tries every due item; a failing one gets `retry.attempts` tries
//! with doubling waits, then waits for a later round (its next try doubles
//! too, up to `retry.max_backoff`): never dropped. Items of one finding in
//! one integration keep their order: after a failure, the later ones wait.
//! Every state change is flushed before the next request leaves, so a stop
//! at any point leaves a state that the next run completes without filing
//! twice (see the module docs of [`super`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::config::{Integration, Integrations, Target};
use super::email::EmailClient;
use super::github::GitHubClient;
use super::http::DeliveryError;
use super::jira::JiraClient;
use super::slack::SlackClient;
use super::templates::{Event, Message, Templates};
use super::webhook::WebhookClient;
use super::{Action, Escalation, OutboxItem, TicketRecord, TicketRef, TicketState, fingerprint, stored_config};
use crate::review::findings::{Finding, Status};
use crate::store::{Store, StoreError};

/// How the delivery task paces itself.
#[derive(Debug, Clone, Copy)]
pub struct NotifierConfig {
    /// How often the outbox is looked at.
    pub poll: Duration,
    /// After shutdown, how long due deliveries may still go out.
    pub drain: Duration,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig { poll: Duration::from_millis(250), drain: Duration::from_secs(5) }
    }
}

/// What a round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub delivered: usize,
    pub failed: usize,
    /// Items still in the outbox.
    pub left: usize,
    /// The earliest next try among them.
    pub next_at: Option<SystemTime>,
}

/// An integration, ready to deliver.
pub(super) enum Client {
    Jira(JiraClient),
    GitHub(GitHubClient),
    Webhook(WebhookClient),
    Slack(SlackClient),
    Email(EmailClient),
}

/// Clients and templates of one version of the integrations file.
struct Prepared {
    text: String,
    cfg: Integrations,
    templates: Templates,
    clients: BTreeMap<String, Result<Client, String>>,
}

pub struct Notifier {
    store: Store,
    cfg: NotifierConfig,
    prepared: Option<Arc<Prepared>>,
}

impl Notifier {
    pub fn new(store: Store, cfg: NotifierConfig) -> Notifier {
        Notifier { store, cfg, prepared: None }
    }

    /// Delivers until `shutdown`, then drains for the grace period.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.cfg.poll) => {}
            }
            if let Err(e) = self.round().await {
                tracing::error!(error = %e, "notification round failed");
            }
        }
        let deadline = SystemTime::now() + self.cfg.drain;
        let drained = tokio::time::timeout(self.cfg.drain, async {
            loop {
                match self.round().await {
                    Ok(r) if r.left == 0 || r.next_at.is_none_or(|t| t > deadline) => return r.left,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "notification round failed");
                        return 0;
                    }
                }
                tokio::time::sleep(self.cfg.poll).await;
            }
        })
        .await;
        let left = match drained {
            Ok(left) => left,
            Err(_) => self.store.outbox().map(|o| o.len()).unwrap_or_default(),
        };
        if left > 0 {
            tracing::warn!(left, "deliveries left in the outbox; the coordinator's next run delivers them");
        }
    }

    fn prepare(&mut self) -> Result<Option<Arc<Prepared>>, StoreError> {
        let Some(doc) = self.store.document(super::DOCUMENT_KIND)? else { return Ok(None) };
        if let Some(p) = &self.prepared
            && p.text == doc.text
        {
            return Ok(Some(p.clone()));
        }
        let Some(cfg) = stored_config(&self.store)? else { return Ok(None) };
        let templates = match Templates::new(&cfg.templates, cfg.templates_dir.as_deref().map(Path::new)) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "templates unusable; the built-in ones are used");
                Templates::new(&Default::default(), None).expect("built-in templates compile")
            }
        };
        let clients = cfg.integrations.iter().map(|i| (i.name.clone(), client(i).map_err(|e| e.to_string()))).collect();
        let p = Arc::new(Prepared { text: doc.text, cfg, templates, clients });
        self.prepared = Some(p.clone());
        Ok(Some(p))
    }

    /// Tries every due item once (with its in-round retries).
    pub async fn round(&mut self) -> Result<Round, StoreError> {
        let items = self.store.outbox()?;
        let mut round = Round::default();
        if items.is_empty() {
            return Ok(round);
        }
        let Some(p) = self.prepare()? else {
            round.left = items.len();
            return Ok(round);
        };
        let mut blocked: BTreeSet<(String, String)> = BTreeSet::new();
        for (seq, mut item) in items {
            let pair = (item.finding.id.clone(), item.integration.clone());
            let now = SystemTime::now();
            if blocked.contains(&pair) || item.next_at > now {
                blocked.insert(pair);
                round.left += 1;
                round.next_at = round.next_at.min(Some(item.next_at)).or(Some(item.next_at));
                continue;
            }
            match self.attempts(&p, &item).await {
                Ok(()) => {
                    self.store.remove_outbox_item(seq)?;
                    self.store.flush().await?;
                    round.delivered += 1;
                }
                Err((tries, e)) => {
                    item.attempts += tries;
                    item.next_at = SystemTime::now() + backoff(&p.cfg, item.attempts);
                    tracing::warn!(
                        finding.id = %item.finding.id, integration = %item.integration, attempts = item.attempts,
                        error = %e, "delivery failed; retried later"
                    );
                    item.last_error = Some(e.to_string());
                    self.store.put_outbox_item(seq, &item)?;
                    self.store.flush().await?;
                    blocked.insert(pair);
                    round.failed += 1;
                    round.left += 1;
                    round.next_at = round.next_at.min(Some(item.next_at)).or(Some(item.next_at));
                }
            }
        }
        Ok(round)
    }

    /// Up to `retry.attempts` tries with doubling waits; the tries made and the last error.
    async fn attempts(&self, p: &Prepared, item: &OutboxItem) -> Result<(), (u32, DeliveryError)> {
        let mut last = None;
        for n in 0..p.cfg.attempts {
            if n > 0 {
                tokio::time::sleep(backoff(&p.cfg, n)).await;
            }
            match self.deliver(p, item).await {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err((p.cfg.attempts, last.expect("at least one attempt")))
    }

    async fn deliver(&self, p: &Prepared, item: &OutboxItem) -> Result<(), DeliveryError> {
        let integration = p.cfg.get(&item.integration).ok_or_else(|| {
            DeliveryError::Config(format!("no integration `{}` in the integrations file any more", item.integration))
        })?;
        let client = match p.clients.get(&integration.name) {
            Some(Ok(c)) => c,
            Some(Err(e)) => return Err(DeliveryError::Config(e.clone())),
            None => return Err(DeliveryError::Config("no client".into())),
        };
        let f = &item.finding;
        let store_err = |e: StoreError| DeliveryError::Config(format!("store: {e}"));
        match &item.action {
            Action::Sync => self.sync(client, integration, &p.templates, f).await,
            Action::Escalate => {
                self.escalate(client, &integration.name, &p.templates, f, None).await.map_err(store_err)?
            }
            Action::EscalateOwner { to } => {
                self.escalate(client, &integration.name, &p.templates, f, Some(to)).await.map_err(store_err)?
            }
        }
    }

    async fn save(&self, t: &TicketRecord) -> Result<(), DeliveryError> {
        let store_err = |e: StoreError| DeliveryError::Config(format!("store: {e}"));
        self.store.put_ticket(t).map_err(store_err)?;
        self.store.flush().await.map_err(store_err)
    }

    /// Brings the finding's ticket in `integration` to the finding's state.
    async fn sync(
        &self,
        c: &Client,
        integration: &Integration,
        t: &Templates,
        f: &Finding,
    ) -> Result<(), DeliveryError> {
        let now = SystemTime::now();
        let stored = self.store.ticket(&f.id, &integration.name).map_err(|e| DeliveryError::Config(e.to_string()))?;
        let remediated = matches!(f.status, Status::Remediated { .. });
        let mut rec = match stored {
            Some(r) => r,
            // Nothing to file for a finding that is already settled.
            None if !f.status.is_active(now) => return Ok(()),
            None => TicketRecord {
                finding_id: f.id.clone(),
                integration: integration.name.clone(),
                state: TicketState::CreateSent,
                key: None,
                url: None,
                fingerprint: 0,
                created_at: None,
                updated_at: now,
            },
        };
        if rec.state == TicketState::CreateSent {
            // Recorded before the request leaves: a lost answer is searched for, not filed again.
            self.save(&rec).await?;
            let found = if rec.key.is_none() { find(c, f).await? } else { None };
            let made = match found {
                Some(t) => {
                    tracing::info!(finding.id = %f.id, integration = %integration.name, ticket = %t.key, "earlier create found; not filed again");
                    rec.fingerprint = 0;
                    t
                }
                None => {
                    let t = create(c, f, &t.render(f, Event::Created)).await?;
                    rec.fingerprint = fingerprint(f);
                    t
                }
            };
            rec.key = Some(made.key);
            rec.url = made.url;
            rec.state = TicketState::Open;
            rec.created_at = Some(now);
            rec.updated_at = now;
            self.save(&rec).await?;
        }
        let key = rec.key.clone().unwrap_or_default();
        let fp = fingerprint(f);
        match (rec.state, remediated) {
            (TicketState::Open, true) => {
                close(c, &key, f, &t.render(f, Event::Remediated)).await?;
                rec.state = TicketState::Closed;
            }
            (TicketState::Open, false) if fp != rec.fingerprint => {
                update(c, &key, f, &t.render(f, Event::Updated)).await?
            }
            (TicketState::Closed, false) => {
                reopen(c, &key, f, &t.render(f, Event::Updated)).await?;
                rec.state = TicketState::Open;
            }
            _ => {}
        }
        if rec.fingerprint != fp || rec.updated_at != now {
            rec.fingerprint = fp;
            rec.updated_at = now;
            self.save(&rec).await?;
        }
        Ok(())
    }

    /// Tells one channel (or the owner) about a new finding, once.
    async fn escalate(
        &self,
        c: &Client,
        channel: &str,
        t: &Templates,
        f: &Finding,
        owner: Option<&str>,
    ) -> Result<Result<(), DeliveryError>, StoreError> {
        let label = match owner {
            Some(to) => format!("{channel} (owner {to})"),
            None => channel.to_string(),
        };
        let mut esc = self.store.escalation(&f.id)?.unwrap_or_else(|| Escalation {
            finding_id: f.id.clone(),
            at: SystemTime::now(),
            channels: BTreeMap::new(),
        });
        if esc.channels.contains_key(&label) {
            return Ok(Ok(()));
        }
        let m = t.render(f, Event::Escalated);
        let sent = match c {
            Client::Slack(s) => s.post(&m).await,
            Client::Email(e) => e.send(&m, owner).await,
            Client::Webhook(w) => w.post(Event::Escalated, f, &m, None).await.map(drop),
            Client::Jira(_) | Client::GitHub(_) => {
                Err(DeliveryError::Config(format!("{channel} files tickets; it cannot escalate")))
            }
        };
        if let Err(e) = sent {
            return Ok(Err(e));
        }
        let now = SystemTime::now();
        if esc.channels.is_empty() {
            esc.at = now;
        }
        esc.channels.insert(label, now);
        self.store.put_escalation(&esc)?;
        self.store.flush().await?;
        tracing::info!(finding.id = %f.id, channel, "finding escalated");
        Ok(Ok(()))
    }
}

pub(super) fn client(i: &Integration) -> Result<Client, DeliveryError> {
    Ok(match &i.target {
        Target::Jira(c) => Client::Jira(JiraClient::new(c.clone(), i.timeout)?),
        Target::GitHub(c) => Client::GitHub(GitHubClient::new(c.clone(), i.timeout)?),
        Target::Webhook(c) => Client::Webhook(WebhookClient::new(&i.name, c.clone(), i.timeout)?),
        Target::Slack(c) => Client::Slack(SlackClient::new(c.clone(), i.timeout)?),
        Target::Email(c) => Client::Email(EmailClient::new(c.clone(), i.timeout)),
    })
}

/// `backoff × 2^(n-1)`, at most `max_backoff`, with up to a quarter more of
/// jitter so that many items do not retry in step.
pub(super) fn backoff(cfg: &Integrations, n: u32) -> Duration {
    let exp = cfg.backoff.saturating_mul(1u32 << n.saturating_sub(1).min(20)).min(cfg.max_backoff);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    exp + exp.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

fn not_a_tracker(what: &str) -> DeliveryError {
    DeliveryError::Config(format!("{what}: slack and email integrations file no tickets"))
}

fn remediated_note(f: &Finding) -> String {
    let how = f.history.last().map(|e| e.what.as_str()).unwrap_or("remediated");
    format!("Vantage: {} is remediated ({how}). Closing.", f.id)
}

async fn create(c: &Client, f: &Finding, m: &Message) -> Result<TicketRef, DeliveryError> {
    match c {
        Client::Jira(j) => j.create(f, m).await,
        Client::GitHub(g) => g.create(f, m).await,
        Client::Webhook(w) => w.create(f, m).await,
        _ => Err(not_a_tracker("create")),
    }
}

async fn find(c: &Client, f: &Finding) -> Result<Option<TicketRef>, DeliveryError> {
    match c {
        Client::Jira(j) => j.find(f).await,
        Client::GitHub(g) => g.find(f).await,
        // The Idempotency-Key makes a repeated create harmless.
        _ => Ok(None),
    }
}

async fn update(c: &Client, key: &str, f: &Finding, m: &Message) -> Result<(), DeliveryError> {
    match c {
        Client::Jira(j) => j.update(key, f, m).await,
        Client::GitHub(g) => g.update(key, f, m).await,
        Client::Webhook(w) => w.post(Event::Updated, f, m, Some(key)).await.map(drop),
        _ => Err(not_a_tracker("update")),
    }
}

async fn close(c: &Client, key: &str, f: &Finding, m: &Message) -> Result<(), DeliveryError> {
    match c {
        // The comment goes last: the steps before it repeat harmlessly on a
        // retry, a comment would be posted twice.
        Client::Jira(j) => {
            j.update(key, f, m).await?;
            j.transition_done(key).await?;
            j.comment(key, &remediated_note(f)).await
        }
        Client::GitHub(g) => {
            g.update(key, f, m).await?;
            g.set_state(key, false).await?;
            g.comment(key, &remediated_note(f)).await
        }
        Client::Webhook(w) => w.post(Event::Remediated, f, m, Some(key)).await.map(drop),
        _ => Err(not_a_tracker("close")),
    }
}

async fn reopen(c: &Client, key: &str, f: &Finding, m: &Message) -> Result<(), DeliveryError> {
    let note = format!("Vantage: {} is back (repeat {}).", f.id, f.repeats);
    match c {
        Client::Jira(j) => {
            j.update(key, f, m).await?;
            j.comment(key, &note).await
        }
        Client::GitHub(g) => {
            g.set_state(key, true).await?;
            g.update(key, f, m).await?;
            g.comment(key, &note).await
        }
        Client::Webhook(w) => w.post(Event::Updated, f, m, Some(key)).await.map(drop),
        _ => Err(not_a_tracker("reopen")),
    }
}
