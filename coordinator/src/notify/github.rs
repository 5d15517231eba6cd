//! GitHub Issues: one issue per finding, labelled with the finding's marker
//! (`vantage:F-12`) so that a create whose answer was lost is found again
//! (`GET /repos/{repo}/issues?labels=...&state=all` reads the database, not
//! the search index, so it sees an issue made a moment ago). Remediated:
//! a comment, then closed as completed; reopened: opened again.

use reqwest::Client;
use serde_json::json;

use super::config::GitHub;
use super::http::{DeliveryError, client, send, send_json};
use super::templates::Message;
use super::{TicketRef, marker};
use crate::review::findings::Finding;

pub struct GitHubClient {
    cfg: GitHub,
    http: Client,
}

impl GitHubClient {
    pub fn new(cfg: GitHub, timeout: std::time::Duration) -> Result<GitHubClient, DeliveryError> {
        Ok(GitHubClient { cfg, http: client(timeout)? })
    }

    fn req(&self, method: reqwest::Method, path: &str) -> Result<reqwest::RequestBuilder, DeliveryError> {
        let token = self.cfg.token.value().map_err(DeliveryError::Config)?;
        Ok(self
            .http
            .request(method, format!("{}/repos/{}{path}", self.cfg.api, self.cfg.repo))
            .bearer_auth(token)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28"))
    }

    fn labels(&self, f: &Finding) -> Vec<String> {
        let mut l = self.cfg.labels.clone();
        l.push(marker(f));
        l.push(format!("severity:{}", f.severity));
        l
    }

    fn issue_ref(v: &serde_json::Value) -> Option<TicketRef> {
        let n = v.get("number")?.as_u64()?;
        Some(TicketRef { key: format!("#{n}"), url: v.get("html_url").and_then(|u| u.as_str()).map(String::from) })
    }

    pub async fn create(&self, f: &Finding, m: &Message) -> Result<TicketRef, DeliveryError> {
        let body = json!({ "title": m.title, "body": m.body, "labels": self.labels(f) });
        let v = send_json("github create", self.req(reqwest::Method::POST, "/issues")?.json(&body)).await?;
        Self::issue_ref(&v)
            .ok_or_else(|| DeliveryError::Answer { what: "github create".into(), detail: "no issue number".into() })
    }

    pub async fn find(&self, f: &Finding) -> Result<Option<TicketRef>, DeliveryError> {
        let req = self.req(reqwest::Method::GET, "/issues")?.query(&[("labels", marker(f).as_str()), ("state", "all")]);
        let v = send_json("github find", req).await?;
        // The first one filed, should a race ever have filed two.
        let first = v.as_array().and_then(|a| {
            a.iter().filter_map(|i| Some((i.get("number")?.as_u64()?, Self::issue_ref(i)?))).min_by_key(|(n, _)| *n)
        });
        Ok(first.map(|(_, t)| t))
    }

    fn number(key: &str) -> &str {
        key.trim_start_matches('#')
    }

    pub async fn update(&self, key: &str, f: &Finding, m: &Message) -> Result<(), DeliveryError> {
        let body = json!({ "title": m.title, "body": m.body, "labels": self.labels(f) });
        let path = format!("/issues/{}", Self::number(key));
        send("github update", self.req(reqwest::Method::PATCH, &path)?.json(&body)).await.map(drop)
    }

    pub async fn comment(&self, key: &str, text: &str) -> Result<(), DeliveryError> {
        let path = format!("/issues/{}/comments", Self::number(key));
        send("github comment", self.req(reqwest::Method::POST, &path)?.json(&json!({ "body": text }))).await.map(drop)
    }

    pub async fn set_state(&self, key: &str, open: bool) -> Result<(), DeliveryError> {
        let body =
            if open { json!({ "state": "open" }) } else { json!({ "state": "closed", "state_reason": "completed" }) };
        let path = format!("/issues/{}", Self::number(key));
        send("github state", self.req(reqwest::Method::PATCH, &path)?.json(&body)).await.map(drop)
    }
}
