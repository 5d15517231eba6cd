//! `vantage integrations check FILE`: an integrations file read the way the
//! coordinator reads it, offline, so that a typo is found before a review
//! depends on it. Errors name the line and the field; the secrets' variables
//! are said to be set or not here (the coordinator's environment is the one
//! that counts), never their values.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::cli::UsageError;
use crate::notify::Integrations;
use crate::notify::templates::Templates;

const EXAMPLE: &str = "\
Examples:
  vantage integrations check integrations.toml
  vantage serve --integrations integrations.toml       # the coordinator files and escalates
  vantage review 2026-11 --integrations integrations.toml

A file (see deploy/integrations.sample.toml for every field):
  escalate = [\"slack-sec\"]          # new critical findings, at once
  [integration.gh]
  kind = \"github\"
  repo = \"acme/security\"
  token_env = \"GITHUB_TOKEN\"        # the variable, never the token
  [integration.slack-sec]
  kind = \"slack\"
  url_env = \"SLACK_WEBHOOK_URL\"";

#[derive(Debug, Subcommand)]
pub enum IntegrationsCommand {
    /// Check an integrations file offline: fields, kinds, escalation
    /// channels and templates; errors name the line and field.
    #[command(after_help = EXAMPLE)]
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The integrations file (TOML).
    pub file: PathBuf,
}

pub fn run(cmd: IntegrationsCommand) -> anyhow::Result<()> {
    let IntegrationsCommand::Check(args) = cmd;
    let (name, cfg) = load(&args.file)?;
    println!("{name}: {}", cfg.summary());
    for s in cfg.secrets() {
        let here = if std::env::var_os(&s.env).is_some() { "set here" } else { "not set here" };
        println!("secret ${}: {here} (the coordinator's environment needs it)", s.env);
    }
    Templates::new(&cfg.templates, cfg.templates_dir.as_deref().map(Path::new))
        .map_err(|e| UsageError(format!("{name}: {e}")))?;
    if !cfg.templates.is_empty() || cfg.templates_dir.is_some() {
        let names: Vec<&str> = cfg.templates.keys().map(String::as_str).collect();
        println!(
            "templates overridden: {}",
            if names.is_empty() { "from templates_dir".into() } else { names.join(", ") }
        );
    }
    Ok(())
}

/// Reads and checks a file; a usage error (exit 2) naming `FILE: line N: field: problem`.
pub fn load(path: &Path) -> Result<(String, Integrations), UsageError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| UsageError(format!("{name}: {e}")))?;
    let cfg = Integrations::parse(&text).map_err(|e| UsageError(format!("{name}: {e}")))?;
    Ok((name, cfg))
}
