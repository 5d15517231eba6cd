//! `integrations.toml`: where tickets are filed and who is told about what.
//!
//! Parsed once into typed settings; every problem names its line and the
//! field (`line 7: integration.jira-sec.project: missing`), so a file is
//! fixed in one go. Secrets never sit in the file: a field ending in `_env`
//! names the environment variable of the process that delivers (the
//! coordinator), read at delivery time and never logged.
//!
//! ```toml
//! escalate = ["slack-sec", "email-oncall"]   # new critical findings, at once
//! owner_via = "email-oncall"                 # ...and the owner's contact by email
//!
//! [integration.jira-sec]
//! kind = "jira"
//! url = "https://jira.example.invalid"
//! project = "SEC"
//! user = "vantage@example.invalid"           # basic auth (Jira Cloud); without: bearer token
//! token_env = "JIRA_TOKEN"
//!
//! [integration.slack-sec]
//! kind = "slack"
//! url_env = "SLACK_WEBHOOK_URL"
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::review::findings::{Kind, Severity};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const GITHUB_API: &str = "https://api.github.com";

/// An integrations file that cannot be used: where, which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{problem}", line.map(|l| format!("line {l}: ")).unwrap_or_default(), field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct ConfigError {
    pub line: Option<usize>,
    /// The dotted path of the field (`integration.gh.repo`).
    pub field: Option<String>,
    pub problem: String,
}

/// An environment variable that holds a secret (a token, a password, a
/// webhook URL with its key). Only the variable's name is ever shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    pub env: String,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "${}", self.env)
    }
}

impl Secret {
    /// The secret's value, read now.
    pub fn value(&self) -> Result<String, String> {
        std::env::var(&self.env).map_err(|_| format!("environment variable {} is not set", self.env))
    }
}

/// A URL given in the file, or one kept in the environment (Slack's webhook
/// URLs carry their key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Url {
    Plain(String),
    Env(Secret),
}

impl Url {
    pub fn resolve(&self) -> Result<String, String> {
        match self {
            Url::Plain(u) => Ok(u.clone()),
            Url::Env(s) => s.value(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jira {
    pub url: String,
    pub project: String,
    pub issue_type: String,
    /// With a user: basic auth (Jira Cloud's API tokens); without: a bearer token (Data Center PATs).
    pub user: Option<String>,
    pub token: Secret,
    /// REST API 2 (plain-text descriptions) or 3 (Atlassian document format).
    pub api: u8,
    /// The transition that closes an issue ("Done"); a comment is always added.
    pub done_transition: String,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHub {
    pub api: String,
    /// `owner/name`.
    pub repo: String,
    pub token: Secret,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: Url,
    /// Sent as a bearer token, when given.
    pub token: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slack {
    pub url: Url,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS, required (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// Plaintext: loopback relays only.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub from: String,
    pub to: Vec<String>,
    pub user: Option<String>,
    pub password: Option<Secret>,
}

/// Where an integration delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Jira(Jira),
    GitHub(GitHub),
    Webhook(Webhook),
    Slack(Slack),
    Email(Email),
}

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Jira(_) => "jira",
            Target::GitHub(_) => "github",
            Target::Webhook(_) => "webhook",
            Target::Slack(_) => "slack",
            Target::Email(_) => "email",
        }
    }
}

/// One named integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    pub name: String,
    pub target: Target,
    /// Files a ticket per finding (Jira, GitHub, webhooks by default).
    pub tickets: bool,
    /// Findings below this severity get no ticket.
    pub min_severity: Severity,
    /// Only these kinds get tickets (default: every kind but `documented`).
    pub kinds: BTreeSet<Kind>,
    pub timeout: Duration,
}

impl Integration {
    /// Whether a finding of this kind and severity gets a ticket here.
    pub fn wants(&self, kind: Kind, severity: Severity) -> bool {
        self.tickets && severity >= self.min_severity && self.kinds.contains(&kind)
    }
}

/// A template given in the file, by name (`exposed-service.body`).
pub type TemplateOverrides = BTreeMap<String, String>;

/// The whole file, checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Integrations {
    pub integrations: Vec<Integration>,
    /// Channels told at once about a new finding of `escalate_severity` or worse.
    pub escalate: Vec<String>,
    pub escalate_severity: Option<Severity>,
    /// The email integration that also tells a new critical finding's owner.
    pub owner_via: Option<String>,
    pub templates: TemplateOverrides,
    /// A directory of `<name>.j2` templates on the coordinator's disk.
    pub templates_dir: Option<String>,
    /// Deliveries tried per item and round before it waits for the next round.
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Integrations {
    pub fn get(&self, name: &str) -> Option<&Integration> {
        self.integrations.iter().find(|i| i.name == name)
    }

    /// Every secret the file refers to.
    pub fn secrets(&self) -> Vec<&Secret> {
        let mut out = Vec::new();
        for i in &self.integrations {
            match &i.target {
                Target::Jira(j) => out.push(&j.token),
                Target::GitHub(g) => out.push(&g.token),
                Target::Webhook(w) => {
                    out.extend(w.token.as_ref());
                    if let Url::Env(s) = &w.url {
                        out.push(s);
                    }
                }
                Target::Slack(s) => {
                    if let Url::Env(s) = &s.url {
                        out.push(s);
                    }
                }
                Target::Email(e) => out.extend(e.password.as_ref()),
            }
        }
        out
    }

    /// A line for `check`: what the file holds.
    pub fn summary(&self) -> String {
        let names: Vec<String> =
            self.integrations.iter().map(|i| format!("{} ({})", i.name, i.target.kind())).collect();
        let escalate = if self.escalate.is_empty() { "none".to_string() } else { self.escalate.join(", ") };
        format!("{} integrations: {}; escalation to {escalate}", names.len(), names.join(", "))
    }
}

type S<T> = Option<Spanned<T>>;
/// A required field's value, checked.
type Need<'a> = &'a dyn Fn(&S<String>, &str) -> Result<String, ConfigError>;
/// An optional `*_env` field, checked.
type Env<'a> = &'a dyn Fn(&S<String>, &str) -> Result<Option<Secret>, ConfigError>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    escalate: Vec<Spanned<String>>,
    escalate_severity: S<String>,
    owner_via: S<String>,
    templates_dir: S<String>,
    #[serde(default)]
    templates: BTreeMap<String, Spanned<String>>,
    retry: S<RawRetry>,
    #[serde(default)]
    integration: BTreeMap<Spanned<String>, Spanned<RawIntegration>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    attempts: S<u32>,
    backoff: S<String>,
    max_backoff: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntegration {
    kind: Spanned<String>,
    url: S<String>,
    url_env: S<String>,
    token_env: S<String>,
    user: S<String>,
    project: S<String>,
    issue_type: S<String>,
    api: S<u8>,
    done_transition: S<String>,
    repo: S<String>,
    labels: S<Vec<String>>,
    smtp: S<String>,
    tls: S<String>,
    from: S<String>,
    to: S<Vec<String>>,
    password_env: S<String>,
    tickets: S<bool>,
    min_severity: S<String>,
    kinds: S<Vec<String>>,
    timeout: S<String>,
}

/// Turns byte offsets into lines and builds errors.
struct At<'a> {
    text: &'a str,
}

impl At<'_> {
    fn line(&self, span: &Range<usize>) -> usize {
        self.text[..span.start.min(self.text.len())].matches('\n').count() + 1
    }

    fn err(&self, field: impl Into<String>, span: &Range<usize>, problem: impl Into<String>) -> ConfigError {
        ConfigError { line: Some(self.line(span)), field: Some(field.into()), problem: problem.into() }
    }
}

impl Integrations {
    pub fn parse(text: &str) -> Result<Integrations, ConfigError> {
        let at = At { text };
        let file: File = toml::from_str(text).map_err(|e| ConfigError {
            line: e.span().map(|s| at.line(&s)),
            field: None,
            problem: e.message().trim().to_string(),
        })?;
        let mut out = Integrations {
            attempts: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            ..Default::default()
        };
        for (name, raw) in file.integration {
            out.integrations.push(integration::check(&at, name, raw)?);
        }
        for e in &file.escalate {
            let Some(i) = out.get(e.get_ref()) else {
                return Err(at.err("escalate", &e.span(), format!("no integration named `{}`", e.get_ref())));
            };
            if matches!(i.target, Target::Jira(_) | Target::GitHub(_)) {
                return Err(at.err(
                    "escalate",
                    &e.span(),
                    format!("`{}` files tickets; escalate to slack, email or webhook", e.get_ref()),
                ));
            }
            out.escalate.push(e.get_ref().clone());
        }
        if let Some(s) = &file.escalate_severity {
            out.escalate_severity = Some(severity(&at, "escalate_severity", s)?);
        } else if !out.escalate.is_empty() || file.owner_via.is_some() {
            out.escalate_severity = Some(Severity::Critical);
        }
        if let Some(o) = &file.owner_via {
            match out.get(o.get_ref()) {
                Some(i) if matches!(i.target, Target::Email(_)) => out.owner_via = Some(o.get_ref().clone()),
                _ => return Err(at.err("owner_via", &o.span(), format!("`{}` is no email integration", o.get_ref()))),
            }
        }
        for (name, t) in &file.templates {
            if super::templates::check_name(name).is_err() {
                return Err(at.err(
                    format!("templates.{name}"),
                    &t.span(),
                    super::templates::check_name(name).unwrap_err(),
                ));
            }
            super::templates::check_source(name, t.get_ref())
                .map_err(|e| at.err(format!("templates.{name}"), &t.span(), e))?;
            out.templates.insert(name.clone(), t.get_ref().clone());
        }
        out.templates_dir = file.templates_dir.map(|d| d.into_inner());
        if let Some(r) = &file.retry {
            let r = r.get_ref();
            if let Some(a) = &r.attempts {
                if *a.get_ref() == 0 {
                    return Err(at.err("retry.attempts", &a.span(), "at least 1"));
                }
                out.attempts = *a.get_ref();
            }
            if let Some(b) = &r.backoff {
                out.backoff = duration(&at, "retry.backoff", b)?;
            }
            if let Some(b) = &r.max_backoff {
                out.max_backoff = duration(&at, "retry.max_backoff", b)?;
            }
        }
        Ok(out)
    }
}

fn severity(at: &At, field: &str, s: &Spanned<String>) -> Result<Severity, ConfigError> {
    Severity::parse(s.get_ref()).ok_or_else(|| {
        at.err(field, &s.span(), format!("`{}` is no severity (critical, high, medium, low)", s.get_ref()))
    })
}

fn duration(at: &At, field: &str, s: &Spanned<String>) -> Result<Duration, ConfigError> {
    humantime::parse_duration(s.get_ref())
        .map_err(|e| at.err(field, &s.span(), format!("`{}`: {e} (write e.g. \"10s\")", s.get_ref())))
}

mod integration;

#[cfg(test)]
mod tests;
