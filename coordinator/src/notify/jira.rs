//! Jira (REST API 2 or 3): one issue per finding in the configured project,
//! labelled with the finding's marker (`vantage-F-12`; Jira labels take no
//! colon) so that a create whose answer was lost is found again by JQL.
//! Updates rewrite summary, description and labels; remediated: a comment,
//! then the configured transition ("Done") when the workflow offers it;
//! reopened: a comment (workflows differ too much to pick a transition).
//! API 3 wants descriptions and comments in the Atlassian document format.

use reqwest::{Client, Method, RequestBuilder};
use serde_json::{Value, json};

use super::TicketRef;
use super::config::Jira;
use super::http::{DeliveryError, client, send, send_json};
use super::templates::Message;
use crate::review::findings::Finding;

pub struct JiraClient {
    cfg: Jira,
    http: Client,
}

/// A finding's marker label in Jira.
pub fn label(f: &Finding) -> String {
    format!("vantage-{}", f.id)
}

impl JiraClient {
    pub fn new(cfg: Jira, timeout: std::time::Duration) -> Result<JiraClient, DeliveryError> {
        Ok(JiraClient { cfg, http: client(timeout)? })
    }

    fn req(&self, method: Method, path: &str) -> Result<RequestBuilder, DeliveryError> {
        let token = self.cfg.token.value().map_err(DeliveryError::Config)?;
        let url = format!("{}/rest/api/{}{path}", self.cfg.url, self.cfg.api);
        let req = self.http.request(method, url);
        Ok(match &self.cfg.user {
            Some(user) => req.basic_auth(user, Some(token)),
            None => req.bearer_auth(token),
        })
    }

    /// Text as API 2 takes it (a string) or API 3 (a document).
    fn text(&self, text: &str) -> Value {
        if self.cfg.api == 2 {
            return Value::String(text.to_string());
        }
        let paragraphs: Vec<Value> = text
            .split("\n\n")
            .filter(|p| !p.trim().is_empty())
            .map(|p| json!({ "type": "paragraph", "content": [{ "type": "text", "text": p }] }))
            .collect();
        json!({ "type": "doc", "version": 1, "content": paragraphs })
    }

    fn fields(&self, f: &Finding, m: &Message) -> Value {
        let mut labels = self.cfg.labels.clone();
        labels.push(label(f));
        json!({ "summary": m.title, "description": self.text(&m.body), "labels": labels })
    }

    fn browse(&self, key: &str) -> String {
        format!("{}/browse/{key}", self.cfg.url)
    }

    pub async fn create(&self, f: &Finding, m: &Message) -> Result<TicketRef, DeliveryError> {
        let mut fields = self.fields(f, m);
        fields["project"] = json!({ "key": self.cfg.project });
        fields["issuetype"] = json!({ "name": self.cfg.issue_type });
        let v = send_json("jira create", self.req(Method::POST, "/issue")?.json(&json!({ "fields": fields }))).await?;
        let key = v
            .get("key")
            .and_then(Value::as_str)
            .ok_or_else(|| DeliveryError::Answer { what: "jira create".into(), detail: "no issue key".into() })?;
        Ok(TicketRef { key: key.to_string(), url: Some(self.browse(key)) })
    }

    pub async fn find(&self, f: &Finding) -> Result<Option<TicketRef>, DeliveryError> {
        let jql = format!("project = \"{}\" AND labels = \"{}\" ORDER BY created ASC", self.cfg.project, label(f));
        // API 3's search moved to /search/jql; API 2 keeps /search.
        let path = if self.cfg.api == 3 { "/search/jql" } else { "/search" };
        let req = self.req(Method::GET, path)?.query(&[("jql", jql.as_str()), ("fields", "key")]);
        let v = send_json("jira find", req).await?;
        let key = v
            .get("issues")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|i| i.get("key"))
            .and_then(Value::as_str);
        Ok(key.map(|k| TicketRef { key: k.to_string(), url: Some(self.browse(k)) }))
    }

    pub async fn update(&self, key: &str, f: &Finding, m: &Message) -> Result<(), DeliveryError> {
        let req = self.req(Method::PUT, &format!("/issue/{key}"))?.json(&json!({ "fields": self.fields(f, m) }));
        send("jira update", req).await.map(drop)
    }

    pub async fn comment(&self, key: &str, text: &str) -> Result<(), DeliveryError> {
        let req = self.req(Method::POST, &format!("/issue/{key}/comment"))?.json(&json!({ "body": self.text(text) }));
        send("jira comment", req).await.map(drop)
    }

    /// Moves the issue through the configured transition, when offered;
    /// whether it was.
    pub async fn transition_done(&self, key: &str) -> Result<bool, DeliveryError> {
        let v = send_json("jira transitions", self.req(Method::GET, &format!("/issue/{key}/transitions"))?).await?;
        let wanted = &self.cfg.done_transition;
        let id = v.get("transitions").and_then(Value::as_array).and_then(|ts| {
            ts.iter()
                .find(|t| t.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(wanted)))
                .and_then(|t| t.get("id").and_then(Value::as_str))
        });
        let Some(id) = id else {
            tracing::warn!(issue = key, transition = %wanted, "jira offers no such transition; commented only");
            return Ok(false);
        };
        let req =
            self.req(Method::POST, &format!("/issue/{key}/transitions"))?.json(&json!({ "transition": { "id": id } }));
        send("jira transition", req).await.map(|_| true)
    }
}
