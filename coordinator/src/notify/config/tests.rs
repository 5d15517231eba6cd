use super::*;

const GOOD: &str = r#"
escalate = ["slack-sec", "hook"]
owner_via = "mail"

[retry]
attempts = 3
backoff = "50ms"

[integration.jira-sec]
kind = "jira"
url = "https://jira.example.invalid/"
project = "SEC"
user = "vantage@example.invalid"
token_env = "JIRA_TOKEN"
api = 3
min_severity = "high"

[integration.gh]
kind = "github"
repo = "acme/security"
token_env = "GITHUB_TOKEN"

[integration.hook]
kind = "webhook"
url = "http://127.0.0.1:9/hook"

[integration.slack-sec]
kind = "slack"
url_env = "SLACK_WEBHOOK_URL"

[integration.mail]
kind = "email"
smtp = "127.0.0.1:2525"
tls = "none"
from = "vantage@example.invalid"
to = ["oncall@example.invalid"]

[templates]
"exposed-service.title" = "DB {{ id }}"
"#;

fn err(text: &str) -> String {
    Integrations::parse(text).unwrap_err().to_string()
}

#[test]
fn a_full_file_parses() {
    let c = Integrations::parse(GOOD).unwrap();
    assert_eq!(c.integrations.len(), 5);
    let Target::Jira(j) = &c.get("jira-sec").unwrap().target else { panic!("jira") };
    assert_eq!((j.url.as_str(), j.api, j.done_transition.as_str()), ("https://jira.example.invalid", 3, "Done"));
    assert_eq!(c.get("jira-sec").unwrap().min_severity, Severity::High);
    let Target::GitHub(g) = &c.get("gh").unwrap().target else { panic!("github") };
    assert_eq!(g.api, "https://api.github.com");
    assert!(!c.get("slack-sec").unwrap().tickets);
    assert!(c.get("hook").unwrap().tickets);
    assert_eq!(c.escalate, ["slack-sec", "hook"]);
    assert_eq!(c.escalate_severity, Some(Severity::Critical));
    assert_eq!(c.owner_via.as_deref(), Some("mail"));
    assert_eq!((c.attempts, c.backoff), (3, Duration::from_millis(50)));
    assert_eq!(c.templates.len(), 1);
    // Documented ports get no ticket by default.
    assert!(!c.get("gh").unwrap().wants(Kind::Documented, Severity::Critical));
    assert!(c.get("gh").unwrap().wants(Kind::Undocumented, Severity::Low));
}

#[test]
fn secrets_show_their_variable_only() {
    let c = Integrations::parse(GOOD).unwrap();
    let shown = format!("{:?}", c);
    assert!(shown.contains("$JIRA_TOKEN"));
    let envs: Vec<&str> = c.secrets().iter().map(|s| s.env.as_str()).collect();
    assert_eq!(envs, ["GITHUB_TOKEN", "JIRA_TOKEN", "SLACK_WEBHOOK_URL"]);
}

#[test]
fn a_missing_field_names_the_table_line_and_field() {
    let e = err("\n[integration.gh]\nkind = \"github\"\ntoken_env = \"T\"\n");
    assert!(e.starts_with("line 2: integration.gh.repo: missing"), "{e}");
}

#[test]
fn a_bad_value_names_its_line_and_field() {
    let e = err("[integration.gh]\nkind = \"github\"\nrepo = \"security\"\ntoken_env = \"T\"\n");
    assert_eq!(e, "line 3: integration.gh.repo: `security`: write owner/name");
    let e = err(
        "[integration.j]\nkind = \"jira\"\nurl = \"https://j.example.invalid\"\nproject = \"S\"\ntoken_env = \"T\"\napi = 4\n",
    );
    assert!(e.starts_with("line 6: integration.j.api: 4"), "{e}");
    let e = err("[integration.s]\nkind = \"slack\"\nurl = \"hooks.example.invalid\"\n");
    assert!(e.starts_with("line 3: integration.s.url: `hooks.example.invalid` is no http(s) URL"), "{e}");
}

#[test]
fn a_token_in_the_file_is_refused() {
    // There is no `token` field: secrets come from the environment.
    let e = err("[integration.gh]\nkind = \"github\"\nrepo = \"a/b\"\ntoken = \"ghp_secret\"\n");
    assert!(e.starts_with("line 1:") || e.starts_with("line 4:"), "{e}");
    assert!(e.contains("unknown field `token`"), "{e}");
    let e = err("[integration.gh]\nkind = \"github\"\nrepo = \"a/b\"\ntoken_env = \"ghp-secret!\"\n");
    assert!(e.starts_with("line 4: integration.gh.token_env:"), "{e}");
}

#[test]
fn fields_of_another_kind_are_refused() {
    let e = err("[integration.s]\nkind = \"slack\"\nurl = \"http://127.0.0.1:1/\"\nproject = \"SEC\"\n");
    assert_eq!(e, "line 4: integration.s.project: not a field of a slack integration");
    let e = err("[integration.s]\nkind = \"teams\"\n");
    assert!(e.starts_with("line 2: integration.s.kind: `teams` is no integration kind"), "{e}");
}

#[test]
fn escalation_channels_must_exist_and_notify() {
    let e = err("escalate = [\"nope\"]\n");
    assert_eq!(e, "line 1: escalate: no integration named `nope`");
    let e = err("escalate = [\"gh\"]\n[integration.gh]\nkind = \"github\"\nrepo = \"a/b\"\ntoken_env = \"T\"\n");
    assert!(e.contains("files tickets"), "{e}");
    let e = err("owner_via = \"gh\"\n[integration.gh]\nkind = \"github\"\nrepo = \"a/b\"\ntoken_env = \"T\"\n");
    assert!(e.starts_with("line 1: owner_via: `gh` is no email integration"), "{e}");
}

#[test]
fn templates_are_checked_by_name_and_syntax() {
    let e = err("[templates]\n\"exposed.body\" = \"x\"\n");
    assert!(e.starts_with("line 2: templates.exposed.body: no template is called"), "{e}");
    let e = err("[templates]\n\n\"base.title\" = \"{% if %}\"\n");
    assert!(e.starts_with("line 3: templates.base.title:"), "{e}");
}

#[test]
fn email_fields_are_checked() {
    let base = "[integration.m]\nkind = \"email\"\nfrom = \"v@example.invalid\"\n";
    assert!(err(&format!("{base}smtp = \"mail.example.invalid\"\n")).starts_with("line 4: integration.m.smtp:"));
    assert!(err(&format!("{base}smtp = \"h:25\"\ntls = \"ssl\"\n")).starts_with("line 5: integration.m.tls:"));
    assert!(
        err(&format!("{base}smtp = \"h:25\"\nto = [\"not an address\"]\n")).starts_with("line 5: integration.m.to:")
    );
}

#[test]
fn toml_errors_keep_their_line() {
    assert!(err("[integration.x\n").starts_with("line 1:"));
    assert!(err("\n\nnonsense = 1\n").starts_with("line 3: unknown field `nonsense`"), "{}", err("\n\nnonsense = 1\n"));
}

#[test]
fn the_shipped_sample_parses() {
    let c = Integrations::parse(include_str!("../../../../deploy/integrations.sample.toml")).unwrap();
    assert_eq!(c.integrations.len(), 5);
    assert_eq!(c.owner_via.as_deref(), Some("email-oncall"));
}
