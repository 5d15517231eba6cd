//! `vantage config check FILE`: is this file one that `vantage serve
//! --config` (or `vantage-agent --config`) would start with?

use std::path::{Path, PathBuf};

use clap::Args;
use vantage_agent::config_file::Schema;

use super::Kind;
use crate::cli::UsageError;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The file (TOML).
    pub file: PathBuf,

    /// What the file configures [default: told by its keys, else by its name].
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
}

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let path = &args.file;
    let text = std::fs::read_to_string(path).map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
    // Without a kind, a file that is not TOML at all is told so by either schema.
    let kind = match args.kind {
        Some(kind) => Some(kind),
        None => infer(path, &text)?,
    };
    let schema = kind.unwrap_or(Kind::Coordinator).schema();
    let what = kind.map_or("TOML file".to_string(), |k| format!("{} configuration", k.name()));
    match schema.parse(path, &text) {
        Ok(file) => {
            let total = schema.options().len();
            println!("{}: valid {what}; sets {} of {total} options", path.display(), file.len());
            Ok(())
        }
        Err(e) => {
            // The problems, one per line, then main's one line.
            eprintln!("{e}");
            Err(UsageError(format!("{}: not a valid {what}", path.display())).into())
        }
    }
}

/// The kind whose options the file's keys are (keys both binaries take
/// count for neither), else the one its name says; `None` when the file is
/// not TOML.
fn infer(path: &Path, text: &str) -> Result<Option<Kind>, UsageError> {
    let Ok(table) = text.parse::<toml::Table>() else { return Ok(None) };
    let keys: Vec<&String> = table.keys().collect();
    let (coordinator, agent) = (Kind::Coordinator.schema(), Kind::Agent.schema());
    let only = |a: &Schema, b: &Schema| keys.iter().filter(|k| takes(a, k) && !takes(b, k)).count();
    let (c, a) = (only(&coordinator, &agent), only(&agent, &coordinator));
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    match (c, a) {
        (c, a) if c > a => Ok(Some(Kind::Coordinator)),
        (c, a) if a > c => Ok(Some(Kind::Agent)),
        _ if name.contains("agent") => Ok(Some(Kind::Agent)),
        _ if name.contains("coordinator") => Ok(Some(Kind::Coordinator)),
        _ => Err(UsageError(format!(
            "{}: cannot tell a coordinator's file from an agent's by its keys or name; give --kind",
            path.display()
        ))),
    }
}

fn takes(schema: &Schema, key: &str) -> bool {
    schema.options().iter().any(|a| a.get_long() == Some(key))
}
