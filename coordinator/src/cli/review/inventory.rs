//! `vantage inventory check FILE`: the asset inventory (CSV, as a CMDB or
//! spreadsheet exports it) read the way a review reads it, so that a bad
//! export is found when it is made rather than in the middle of a review.
//!
//! Offline like `vantage register`: it takes no
//! [`GlobalArgs`](crate::cli::GlobalArgs), so it never opens a coordinator.
//! Exit code 1 when the file is not a valid inventory (the message names
//! `FILE:LINE: column N (name)`), 2 when it cannot be read.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cli::UsageError;
use crate::review::inventory::Inventory;

const CHECK_EXAMPLE: &str = "\
Example:
  vantage inventory check inventory.csv

The file is CSV with a header naming host, software and version (any order,
any case; other columns are kept); one address and one piece of software per line:
  host,software,version,owner
  198.18.0.10,OpenSSH,9.2p1,ops
  198.18.0.12,nginx,,web";

#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// Check an inventory export before a review uses it: every line must
    /// name one address, its software and a version (or none); errors name
    /// the line and column.
    #[command(after_help = CHECK_EXAMPLE)]
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The inventory (CSV with a header).
    pub file: PathBuf,
}

pub fn run(cmd: InventoryCommand) -> anyhow::Result<()> {
    let InventoryCommand::Check(args) = cmd;
    let name = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file).map_err(|e| UsageError(format!("{name}: {e}")))?;
    let inventory = Inventory::parse(&text).map_err(|e| e.in_file(&name))?;
    let records = inventory.records();
    let hosts: BTreeSet<_> = records.iter().map(|r| r.host).collect();
    let unversioned = records.iter().filter(|r| r.version.is_none()).count();
    let extra: Vec<&str> =
        records.first().map(|r| r.extra.iter().map(|(k, _)| k.as_str()).collect()).unwrap_or_default();
    println!(
        "{name}: {} records, {} hosts{}",
        records.len(),
        hosts.len(),
        if extra.is_empty() { String::new() } else { format!(" (further columns: {})", extra.join(", ")) }
    );
    if unversioned > 0 {
        println!("{unversioned} records without a version: a scan's version is not compared with them");
    }
    Ok(())
}
