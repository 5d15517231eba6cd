//! Slack incoming webhooks: escalations as one message (`text`, mrkdwn).
//! The webhook URL carries its key, so it usually comes from `url_env`.

use reqwest::Client;
use serde_json::json;

use super::config::Slack;
use super::http::{DeliveryError, client, send};
use super::templates::Message;

pub struct SlackClient {
    cfg: Slack,
    http: Client,
}

impl SlackClient {
    pub fn new(cfg: Slack, timeout: std::time::Duration) -> Result<SlackClient, DeliveryError> {
        Ok(SlackClient { cfg, http: client(timeout)? })
    }

    pub async fn post(&self, m: &Message) -> Result<(), DeliveryError> {
        let url = self.cfg.url.resolve().map_err(DeliveryError::Config)?;
        let text = format!("*{}*\n{}", m.title, m.body);
        send("slack", self.http.post(url).json(&json!({ "text": text }))).await.map(drop)
    }
}
