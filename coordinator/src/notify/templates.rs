//! The words of tickets and notifications, from minijinja templates.
//!
//! Each finding kind has a title and a body: what was seen (the technical
//! detail), why it matters (the business risk) and what to do (recommended
//! steps). The built-in bodies extend one layout, `base.body`, and fill its
//! `risk` and `steps` blocks; a user overrides any of them by name
//! (`exposed-service.body`, `base.title`, ...), inline in `integrations.toml`
//! under `[templates]` or as `<name>.j2` files in `templates_dir`. A user's
//! template wins over the built-in one of the same name; one that fails to
//! render falls back to the built-in, so a typo never stops a ticket.

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::Environment;
use serde::Serialize;

use crate::cli::output::rfc3339;
use crate::review::findings::{Detail, Finding, Kind};

/// What happened to the finding, as a message says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    Created,
    Updated,
    Remediated,
    Escalated,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Created => "created",
            Event::Updated => "updated",
            Event::Remediated => "remediated",
            Event::Escalated => "escalated",
        }
    }
}

const BASE_TITLE: &str = "[{{ id }}] {{ severity|upper }} {{ kind_title }}: {{ target }}";

const BASE_BODY: &str = "\
{{ sentence }}

What was seen
- Finding: {{ id }} ({{ kind }}, {{ severity }}, {{ status }})
- Where: {{ target }}{% if detail.regions %}, open from {{ detail.regions|join(\", \") }}{% endif %}
{%- if detail.service or detail.product %}
- Service: {{ [detail.service, detail.product, detail.version]|select|join(\" \") }}{% endif %}
{%- if detail.cpe %}
- CPE: {{ detail.cpe|join(\", \") }}{% endif %}
{%- if detail.cves %}
- CVEs: {{ detail.cves|join(\", \") }}{% endif %}
{%- for r in detail.reasons %}
- {{ r }}{% endfor %}
- First seen: {{ first_seen }}; due: {{ deadline }}
- Owner: {{ owner or \"unknown (not in the register)\" }}

Why it matters
{% block risk %}An exposure nobody has decided on is one an attacker may find first.{% endblock %}

What to do
{% block steps %}- Close the port, or document it in the register with a reason and a review-by date.{% endblock %}
";

const REMINDER_TITLE: &str =
    "Port security review on {{ review_day }}: {{ open }} findings open, {{ overdue }} overdue";

const REMINDER_BODY: &str = "\
The monthly port security review runs on {{ review_at }} ({{ lead }} from now).

Findings still to act on: {{ open }} ({{ critical }} critical), {{ overdue }} past their deadline.

Before the review
- Owners: close what should not be exposed, or document it in the register with a reason.
- Tell the security team about planned changes and new services.
- `vantage findings --overdue` lists what is late; `vantage verify F-12` re-checks a fix at once.
";

/// (kind, title words, business risk, recommended steps) of the built-in templates.
const KINDS: [(Kind, &str, &str, &str); 9] = [
    (
        Kind::ExposedService,
        "exposed database or management service",
        "A database, remote-access or management interface reachable from the internet is a direct way in: \
         credential stuffing, default passwords and its own vulnerabilities put the data and the host at stake.",
        "- Close it to the internet now (firewall or security group); reach it through a VPN or bastion.\n\
         - Check its logs for logins from unknown addresses since {{ first_seen }}.\n\
         - If it must stay reachable, document it in the register with the owner's justification.",
    ),
    (
        Kind::KnownExploited,
        "known-exploited vulnerability",
        "The version answering here has a vulnerability that attackers are exploiting in the wild (CISA KEV): \
         compromise is a matter of when, not if.",
        "- Patch or upgrade today, or take the service off the internet until patched.\n\
         - Look for signs of compromise: the CVEs above are used by active campaigns.",
    ),
    (
        Kind::VulnerableVersion,
        "vulnerable version",
        "The version answering here has published vulnerabilities; public exposure makes them reachable.",
        "- Upgrade to a fixed version within the deadline.\n\
         - If an upgrade must wait, restrict who can reach the port.",
    ),
    (
        Kind::Undocumented,
        "undocumented service",
        "A service nobody has documented is one nobody is watching: it may be forgotten, unpatched or unintended.",
        "- Find the owner; close the port if the service is not needed.\n\
         - Otherwise add it to the register with a justification and a review-by date.",
    ),
    (
        Kind::NotAsDocumented,
        "service differs from the register",
        "What answers is not what the register says should: a changed, replaced or hijacked service.",
        "- Confirm the change with the owner.\n\
         - Update the register entry, or restore the documented service.",
    ),
    (
        Kind::ReviewOverdue,
        "register entry past its review date",
        "An exposure whose justification has lapsed may no longer be needed or wanted.",
        "- Have the owner re-confirm the need and renew the entry's review-by date, or close the port.",
    ),
    (
        Kind::InventoryMismatch,
        "version differs from the asset inventory",
        "The inventory is wrong about what runs here, so patching and vulnerability tracking miss it.",
        "- Correct the inventory, or bring the host to the inventory's version.",
    ),
    (
        Kind::Documented,
        "documented exposure",
        "Documented and as documented: listed so it stays a decision.",
        "- Nothing now; renew the register entry before its review-by date.",
    ),
    (
        Kind::AnswersAll,
        "host answers on every port",
        "A proxy, tarpit or CDN edge answers for every port, hiding what really runs behind it.",
        "- Confirm what the host is; scan its origin directly if it has one.",
    ),
];

/// The names a user may override.
pub fn names() -> Vec<String> {
    let mut out = vec!["base.title".to_string(), "base.body".to_string()];
    out.extend(["reminder.title".to_string(), "reminder.body".to_string()]);
    for (k, ..) in KINDS {
        out.push(format!("{k}.title"));
        out.push(format!("{k}.body"));
    }
    out
}

/// Checks a template name a user gives.
pub fn check_name(name: &str) -> Result<(), String> {
    if names().iter().any(|n| n == name) {
        Ok(())
    } else {
        Err(format!(
            "no template is called `{name}` (base.title, base.body, <kind>.title, <kind>.body, reminder.title, reminder.body)"
        ))
    }
}

/// Checks a template's syntax.
pub fn check_source(name: &str, source: &str) -> Result<(), String> {
    let mut env = Environment::new();
    env.add_template_owned(name.to_string(), source.to_string()).map_err(|e| e.to_string())
}

fn builtins() -> BTreeMap<String, String> {
    let mut out = BTreeMap::from([
        ("base.title".to_string(), BASE_TITLE.to_string()),
        ("base.body".to_string(), BASE_BODY.to_string()),
        ("reminder.title".to_string(), REMINDER_TITLE.to_string()),
        ("reminder.body".to_string(), REMINDER_BODY.to_string()),
    ]);
    for (k, _, risk, steps) in KINDS {
        out.insert(
            format!("{k}.body"),
            format!("{{% extends \"base.body\" %}}{{% block risk %}}{risk}{{% endblock %}}{{% block steps %}}{steps}{{% endblock %}}"),
        );
    }
    out
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub title: String,
    pub body: String,
}

/// The built-in templates, with a user's on top.
pub struct Templates {
    builtin: Environment<'static>,
    user: Option<Environment<'static>>,
}

#[derive(Serialize)]
struct Context<'a> {
    event: Event,
    id: &'a str,
    kind: &'a str,
    kind_title: &'a str,
    severity: &'a str,
    status: &'a str,
    target: String,
    addr: String,
    port: u16,
    proto: String,
    owner: Option<&'a str>,
    contact: Option<&'a str>,
    sentence: &'a str,
    first_seen: String,
    deadline: String,
    repeats: u32,
    detail: &'a Detail,
}

fn environment(templates: &BTreeMap<String, String>) -> Result<Environment<'static>, String> {
    let mut env = Environment::new();
    for (name, source) in templates {
        env.add_template_owned(name.clone(), source.clone()).map_err(|e| format!("template {name}: {e}"))?;
    }
    Ok(env)
}

impl Templates {
    /// The built-ins, overridden by `overrides` (inline in the file) and by
    /// `<name>.j2` files in `dir` (which win over inline ones).
    pub fn new(overrides: &BTreeMap<String, String>, dir: Option<&Path>) -> Result<Templates, String> {
        let builtin = environment(&builtins())?;
        let mut user_set = overrides.clone();
        if let Some(dir) = dir {
            for name in names() {
                let path = dir.join(format!("{name}.j2"));
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        user_set.insert(name, text);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("{}: {e}", path.display())),
                }
            }
        }
        let user = if user_set.is_empty() {
            None
        } else {
            // A user's body may extend the built-in layout: start from the built-ins.
            let mut all = builtins();
            all.extend(user_set);
            Some(environment(&all)?)
        };
        Ok(Templates { builtin, user })
    }

    /// The title and body for a finding.
    pub fn render(&self, f: &Finding, event: Event) -> Message {
        let kind_title = KINDS.iter().find(|(k, ..)| *k == f.key.kind).map_or("finding", |(_, t, ..)| *t);
        let ctx = Context {
            event,
            id: &f.id,
            kind: f.key.kind.as_str(),
            kind_title,
            severity: f.severity.as_str(),
            status: f.status.name(),
            target: format!("{}:{}/{}", host(f), f.key.port, f.key.proto),
            addr: f.key.addr.to_string(),
            port: f.key.port,
            proto: f.key.proto.to_string(),
            owner: f.owner.as_deref(),
            contact: f.contact.as_deref(),
            sentence: &f.sentence,
            first_seen: rfc3339(f.first_seen),
            deadline: rfc3339(f.deadline),
            repeats: f.repeats,
            detail: &f.detail,
        };
        let value = minijinja::Value::from(minijinja::value::Serde(&ctx));
        let kind = f.key.kind.as_str();
        let title = self.one(&[format!("{kind}.title"), "base.title".into()], &value);
        let body = self.one(&[format!("{kind}.body"), "base.body".into()], &value);
        Message { title: title.trim().to_string(), body: body.trim_end().to_string() + "\n" }
    }

    /// The reminder before a scheduled review.
    pub fn render_reminder(&self, r: &super::reminder::Reminder, now: std::time::SystemTime) -> Message {
        // In whole hours (whole minutes within the hour): "14days", not "13days 23h 59m 58s".
        let secs = r.review_at.duration_since(now).unwrap_or_default().as_secs();
        let unit = if secs >= 3600 {
            3600
        } else if secs >= 60 {
            60
        } else {
            1
        };
        let lead = humantime::format_duration(std::time::Duration::from_secs(secs.div_ceil(unit) * unit));
        let day = rfc3339(r.review_at);
        let value = minijinja::context! {
            review_at => rfc3339(r.review_at),
            review_day => day.get(..10).unwrap_or(&day),
            lead => lead.to_string(),
            open => r.open,
            overdue => r.overdue,
            critical => r.critical,
        };
        let title = self.one(&["reminder.title".into()], &value);
        let body = self.one(&["reminder.body".into()], &value);
        Message { title: title.trim().to_string(), body: body.trim_end().to_string() + "\n" }
    }

    /// The first of `names` that exists, the user's first; a user template
    /// that fails falls back to the built-in.
    fn one(&self, names: &[String], value: &minijinja::Value) -> String {
        for env in self.user.iter().chain(std::iter::once(&self.builtin)) {
            for name in names {
                let Ok(t) = env.get_template(name) else { continue };
                match t.render(value) {
                    Ok(text) => return text,
                    Err(e) => {
                        tracing::warn!(template = %name, error = %e, "template failed; using the built-in");
                        break;
                    }
                }
            }
        }
        String::new()
    }
}

fn host(f: &Finding) -> String {
    match f.key.addr {
        std::net::IpAddr::V6(a) => format!("[{a}]"),
        a => a.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::testutil::finding;

    #[test]
    fn builtins_carry_detail_risk_and_steps() {
        let t = Templates::new(&BTreeMap::new(), None).unwrap();
        let m = t.render(&finding("F-7", Kind::ExposedService), Event::Created);
        assert_eq!(m.title, "[F-7] CRITICAL exposed database or management service: 127.0.0.1:5432/tcp");
        assert!(m.body.contains("- Service: postgresql PostgreSQL 16.1"), "{}", m.body);
        assert!(m.body.contains("database, remote-access or management interface"), "{}", m.body);
        assert!(m.body.contains("- Close it to the internet now"), "{}", m.body);
    }

    #[test]
    fn every_kind_has_its_own_risk() {
        let t = Templates::new(&BTreeMap::new(), None).unwrap();
        let a = t.render(&finding("F-1", Kind::KnownExploited), Event::Created).body;
        let b = t.render(&finding("F-1", Kind::Undocumented), Event::Created).body;
        assert!(a.contains("exploiting in the wild"));
        assert!(b.contains("nobody is watching"));
    }

    #[test]
    fn a_user_template_wins_over_the_builtin() {
        let o = BTreeMap::from([("exposed-service.title".to_string(), "DB open: {{ id }} {{ target }}".to_string())]);
        let t = Templates::new(&o, None).unwrap();
        assert_eq!(
            t.render(&finding("F-2", Kind::ExposedService), Event::Created).title,
            "DB open: F-2 127.0.0.1:5432/tcp"
        );
        // Other kinds keep the built-in.
        assert!(t.render(&finding("F-3", Kind::Undocumented), Event::Created).title.starts_with("[F-3] CRITICAL"));
    }

    #[test]
    fn a_user_layout_applies_to_every_builtin_body() {
        let o =
            BTreeMap::from([("base.body".to_string(), "ours {{ id }}: {% block risk %}{% endblock %}".to_string())]);
        let t = Templates::new(&o, None).unwrap();
        let body = t.render(&finding("F-4", Kind::KnownExploited), Event::Created).body;
        assert!(body.starts_with("ours F-4: The version answering here"), "{body}");
    }

    #[test]
    fn a_templates_dir_wins_over_inline() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.title.j2"), "from dir {{ id }}").unwrap();
        let o = BTreeMap::from([("base.title".to_string(), "inline {{ id }}".to_string())]);
        let t = Templates::new(&o, Some(dir.path())).unwrap();
        assert_eq!(t.render(&finding("F-5", Kind::Undocumented), Event::Created).title, "from dir F-5");
    }

    #[test]
    fn a_failing_user_template_falls_back() {
        let o = BTreeMap::from([("base.title".to_string(), "{{ id|nosuchfilter }}".to_string())]);
        // Unknown filters are a render-time error in minijinja.
        let t = Templates::new(&o, None).unwrap();
        assert!(t.render(&finding("F-6", Kind::Undocumented), Event::Created).title.starts_with("[F-6]"));
    }

    #[test]
    fn a_reminder_names_the_date_and_the_counts() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_623_200); // 2026-12-07T06:00:00Z
        let r = super::super::reminder::Reminder { review_at: at, open: 5, critical: 2, overdue: 1 };
        let now = at - std::time::Duration::from_secs(14 * 24 * 3600);
        let m = Templates::new(&BTreeMap::new(), None).unwrap().render_reminder(&r, now);
        assert_eq!(m.title, "Port security review on 2026-12-07: 5 findings open, 1 overdue");
        assert!(m.body.contains("runs on 2026-12-07T06:00:00Z (14days from now)"), "{}", m.body);
        assert!(m.body.contains("5 (2 critical), 1 past their deadline"), "{}", m.body);
        let user = BTreeMap::from([("reminder.title".to_string(), "Review {{ review_day }}".to_string())]);
        let m = Templates::new(&user, None).unwrap().render_reminder(&r, now);
        assert_eq!(m.title, "Review 2026-12-07");
        assert!(check_name("reminder.body").is_ok());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("exposed-service.body").is_ok());
        assert!(check_name("exposed.body").unwrap_err().contains("no template is called"));
        assert!(check_source("x", "{% if %}").is_err());
    }
}
