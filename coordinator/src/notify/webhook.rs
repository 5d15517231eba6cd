//! A generic JSON webhook: every event of a finding's ticket (created,
//! updated, remediated) and escalations, as one JSON document with the
//! finding in full and the rendered message. A receiver cannot be searched
//! for a lost create, so each request carries an `Idempotency-Key` that
//! every retry repeats (finding, integration, event, content fingerprint):
//! a receiver deduplicates by it. The ticket key is the receiver's `key` or
//! `id` from its JSON answer, or the finding id.

use reqwest::Client;
use serde_json::json;

use super::config::Webhook;
use super::http::{DeliveryError, client, send};
use super::templates::{Event, Message};
use super::{TicketRef, fingerprint};
use crate::review::findings::Finding;

pub struct WebhookClient {
    name: String,
    cfg: Webhook,
    http: Client,
}

impl WebhookClient {
    pub fn new(name: &str, cfg: Webhook, timeout: std::time::Duration) -> Result<WebhookClient, DeliveryError> {
        Ok(WebhookClient { name: name.to_string(), cfg, http: client(timeout)? })
    }

    /// Posts one event; the receiver's JSON answer, if any.
    pub async fn post(
        &self,
        event: Event,
        f: &Finding,
        m: &Message,
        ticket: Option<&str>,
    ) -> Result<serde_json::Value, DeliveryError> {
        let url = self.cfg.url.resolve().map_err(DeliveryError::Config)?;
        let key = format!("{}:{}:{}:{:016x}", f.id, self.name, event.as_str(), fingerprint(f));
        let body = json!({
            "event": event.as_str(),
            "finding_id": f.id,
            "ticket": ticket,
            "title": m.title,
            "text": m.body,
            "finding": f,
        });
        let mut req = self.http.post(url).header("Idempotency-Key", key).json(&body);
        if let Some(t) = &self.cfg.token {
            req = req.bearer_auth(t.value().map_err(DeliveryError::Config)?);
        }
        let resp = send("webhook", req).await?;
        Ok(resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Posts a reminder of a scheduled review; the same key on every retry.
    pub async fn post_reminder(&self, r: &super::reminder::Reminder, m: &Message) -> Result<(), DeliveryError> {
        let url = self.cfg.url.resolve().map_err(DeliveryError::Config)?;
        let at = r.review_at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        let body = json!({
            "event": "reminder",
            "title": m.title,
            "text": m.body,
            "review_at": crate::cli::output::rfc3339(r.review_at),
            "open": r.open,
            "overdue": r.overdue,
            "critical": r.critical,
        });
        let mut req = self.http.post(url).header("Idempotency-Key", format!("reminder:{}:{at}", self.name)).json(&body);
        if let Some(t) = &self.cfg.token {
            req = req.bearer_auth(t.value().map_err(DeliveryError::Config)?);
        }
        send("webhook", req).await.map(drop)
    }

    pub async fn create(&self, f: &Finding, m: &Message) -> Result<TicketRef, DeliveryError> {
        let answer = self.post(Event::Created, f, m, None).await?;
        let key = ["key", "id"]
            .iter()
            .find_map(|k| match answer.get(*k) {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                _ => None,
            })
            .unwrap_or_else(|| f.id.clone());
        Ok(TicketRef { key, url: answer.get("url").and_then(|u| u.as_str()).map(String::from) })
    }
}
