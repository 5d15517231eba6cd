//! One `[integration.NAME]` table, checked against its kind: the fields
//! each kind needs, the ones it may have, and their values.

use std::ops::Range;

use toml::Spanned;

use super::*;

/// Checks one `[integration.NAME]` table against its kind.
pub(super) fn check(at: &At, name: Spanned<String>, raw: Spanned<RawIntegration>) -> Result<Integration, ConfigError> {
    let header = raw.span();
    let raw = raw.into_inner();
    let path = format!("integration.{}", name.get_ref());
    let f = |field: &str| format!("{path}.{field}");
    let name = name.into_inner();
    let need = |v: &S<String>, field: &str| -> Result<String, ConfigError> {
        match v {
            Some(s) if !s.get_ref().trim().is_empty() => Ok(s.get_ref().trim().to_string()),
            Some(s) => Err(at.err(f(field), &s.span(), "empty")),
            None => Err(at.err(f(field), &header, format!("missing (a {} integration needs it)", raw.kind.get_ref()))),
        }
    };
    let env = |v: &S<String>, field: &str| -> Result<Option<Secret>, ConfigError> {
        let Some(s) = v else { return Ok(None) };
        let ok = !s.get_ref().is_empty() && s.get_ref().chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(at.err(
                f(field),
                &s.span(),
                format!("`{}` is no environment variable name (A-Z, 0-9, _)", s.get_ref()),
            ));
        }
        Ok(Some(Secret { env: s.get_ref().clone() }))
    };
    let url_of = |v: &S<String>, field: &str| -> Result<String, ConfigError> {
        let u = need(v, field)?;
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(at.err(f(field), &v.as_ref().expect("needed").span(), format!("`{u}` is no http(s) URL")));
        }
        Ok(u.trim_end_matches('/').to_string())
    };
    let url_or_env = |field: &str| -> Result<Url, ConfigError> {
        match (&raw.url, env(&raw.url_env, "url_env")?) {
            (Some(_), Some(_)) => Err(at.err(f("url_env"), &header, "give url or url_env, not both")),
            (_, Some(s)) => Ok(Url::Env(s)),
            (u, None) => url_of(u, field).map(Url::Plain),
        }
    };
    let token = || -> Result<Secret, ConfigError> {
        env(&raw.token_env, "token_env")?
            .ok_or_else(|| at.err(f("token_env"), &header, "missing (the environment variable with the API token)"))
    };
    let labels = raw.labels.as_ref().map(|l| l.get_ref().clone()).unwrap_or_else(|| vec!["vantage".into()]);
    let kind = raw.kind.get_ref().as_str();
    // Fields each kind may have, beyond the common ones.
    let allowed: &[&str] = match kind {
        "jira" => &["url", "token_env", "user", "project", "issue_type", "api", "done_transition", "labels"],
        "github" => &["url", "token_env", "repo", "labels"],
        "webhook" => &["url", "url_env", "token_env"],
        "slack" => &["url", "url_env"],
        "email" => &["smtp", "tls", "from", "to", "user", "password_env"],
        other => {
            return Err(at.err(
                f("kind"),
                &raw.kind.span(),
                format!("`{other}` is no integration kind (jira, github, webhook, slack, email)"),
            ));
        }
    };
    for (field, span) in raw.present() {
        if !allowed.contains(&field) && !COMMON.contains(&field) {
            return Err(at.err(f(field), &span, format!("not a field of a {kind} integration")));
        }
    }
    let target = match kind {
        "jira" => Target::Jira(Jira {
            url: url_of(&raw.url, "url")?,
            project: need(&raw.project, "project")?,
            issue_type: raw.issue_type.as_ref().map(|s| s.get_ref().clone()).unwrap_or_else(|| "Bug".into()),
            user: raw.user.as_ref().map(|s| s.get_ref().clone()),
            token: token()?,
            api: match &raw.api {
                None => 2,
                Some(a) if matches!(a.get_ref(), 2 | 3) => *a.get_ref(),
                Some(a) => {
                    return Err(at.err(f("api"), &a.span(), format!("{}: Jira's REST API is 2 or 3", a.get_ref())));
                }
            },
            done_transition: raw.done_transition.as_ref().map(|s| s.get_ref().clone()).unwrap_or_else(|| "Done".into()),
            labels,
        }),
        "github" => {
            let repo = need(&raw.repo, "repo")?;
            if repo.split('/').count() != 2 || repo.split('/').any(str::is_empty) {
                let span = raw.repo.as_ref().expect("needed").span();
                return Err(at.err(f("repo"), &span, format!("`{repo}`: write owner/name")));
            }
            let api = if raw.url.is_some() { url_of(&raw.url, "url")? } else { GITHUB_API.into() };
            Target::GitHub(GitHub { api, repo, token: token()?, labels })
        }
        "webhook" => Target::Webhook(Webhook { url: url_or_env("url")?, token: env(&raw.token_env, "token_env")? }),
        "slack" => Target::Slack(Slack { url: url_or_env("url")? }),
        _ => Target::Email(email(at, &raw, &f, &need, &env)?),
    };
    let is_tracker = matches!(target, Target::Jira(_) | Target::GitHub(_) | Target::Webhook(_));
    let tickets = match &raw.tickets {
        Some(t) if *t.get_ref() && !is_tracker => {
            return Err(at.err(
                f("tickets"),
                &t.span(),
                format!("a {kind} integration only notifies; tickets go to jira, github or webhook"),
            ));
        }
        Some(t) => *t.get_ref(),
        None => is_tracker,
    };
    let min_severity = match &raw.min_severity {
        Some(s) => severity(at, &f("min_severity"), s)?,
        None => Severity::Low,
    };
    let kinds = match &raw.kinds {
        None => Kind::ALL.into_iter().filter(|k| *k != Kind::Documented).collect(),
        Some(list) => list
            .get_ref()
            .iter()
            .map(|k| {
                Kind::parse(k).ok_or_else(|| at.err(f("kinds"), &list.span(), format!("`{k}` is no finding kind")))
            })
            .collect::<Result<_, _>>()?,
    };
    let timeout = match &raw.timeout {
        Some(t) => duration(at, &f("timeout"), t)?,
        None => DEFAULT_TIMEOUT,
    };
    Ok(Integration { name, target, tickets, min_severity, kinds, timeout })
}

const COMMON: &[&str] = &["kind", "tickets", "min_severity", "kinds", "timeout"];

impl RawIntegration {
    /// The fields given, with their spans.
    fn present(&self) -> Vec<(&'static str, Range<usize>)> {
        let s = |name: &'static str, v: Option<Range<usize>>| v.map(|r| (name, r));
        [
            s("url", self.url.as_ref().map(Spanned::span)),
            s("url_env", self.url_env.as_ref().map(Spanned::span)),
            s("token_env", self.token_env.as_ref().map(Spanned::span)),
            s("user", self.user.as_ref().map(Spanned::span)),
            s("project", self.project.as_ref().map(Spanned::span)),
            s("issue_type", self.issue_type.as_ref().map(Spanned::span)),
            s("api", self.api.as_ref().map(Spanned::span)),
            s("done_transition", self.done_transition.as_ref().map(Spanned::span)),
            s("repo", self.repo.as_ref().map(Spanned::span)),
            s("labels", self.labels.as_ref().map(Spanned::span)),
            s("smtp", self.smtp.as_ref().map(Spanned::span)),
            s("tls", self.tls.as_ref().map(Spanned::span)),
            s("from", self.from.as_ref().map(Spanned::span)),
            s("to", self.to.as_ref().map(Spanned::span)),
            s("password_env", self.password_env.as_ref().map(Spanned::span)),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

fn email(
    at: &At,
    raw: &RawIntegration,
    f: &dyn Fn(&str) -> String,
    need: Need,
    env: Env,
) -> Result<Email, ConfigError> {
    let smtp = need(&raw.smtp, "smtp")?;
    let span = raw.smtp.as_ref().expect("needed").span();
    let (host, port) = smtp
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_matches(['[', ']']).to_string(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| at.err(f("smtp"), &span, format!("`{smtp}`: write host:port (smtp.example.invalid:587)")))?;
    let tls = match raw.tls.as_ref().map(|t| (t.get_ref().as_str(), t.span())) {
        None | Some(("starttls", _)) => SmtpTls::StartTls,
        Some(("tls", _)) => SmtpTls::Tls,
        Some(("none", _)) => SmtpTls::None,
        Some((other, span)) => return Err(at.err(f("tls"), &span, format!("`{other}`: starttls, tls or none"))),
    };
    let from = need(&raw.from, "from")?;
    let to = raw.to.as_ref().map(|t| t.get_ref().clone()).unwrap_or_default();
    for a in std::iter::once(&from).chain(&to) {
        if a.parse::<lettre::Address>().is_err() {
            let span =
                if *a == from { raw.from.as_ref().map(Spanned::span) } else { raw.to.as_ref().map(Spanned::span) };
            return Err(at.err(
                f(if *a == from { "from" } else { "to" }),
                &span.unwrap_or_default(),
                format!("`{a}` is no email address"),
            ));
        }
    }
    let password = env(&raw.password_env, "password_env")?;
    let user = raw.user.as_ref().map(|s| s.get_ref().clone());
    if user.is_some() != password.is_some() {
        return Err(at.err(f("password_env"), &span, "user and password_env go together"));
    }
    Ok(Email { host, port, tls, from, to, user, password })
}
