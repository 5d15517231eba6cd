//! `vantage baseline list`: every period's baseline, current and earlier revisions.

use clap::{Args, Subcommand};
use serde::Serialize;
use vantage_proto::v1;

use crate::cli::connect::{Connection, Needs};
use crate::cli::output::{Format, rfc3339, table, wire_time};
use crate::cli::{GlobalArgs, status_error};

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Baselines by period: revision, scans merged, regions, entries.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// A baseline as JSON shows it.
#[derive(Debug, Serialize)]
pub struct BaselineJson {
    pub period: String,
    pub revision: u32,
    pub current: bool,
    pub scans: Vec<u64>,
    pub regions: Vec<String>,
    pub entries: u64,
    pub built_at: Option<String>,
}

impl From<&v1::BaselineInfo> for BaselineJson {
    fn from(b: &v1::BaselineInfo) -> Self {
        BaselineJson {
            period: b.period.clone(),
            revision: b.revision,
            current: b.current,
            scans: b.scans.clone(),
            regions: b.regions.clone(),
            entries: b.entries,
            built_at: wire_time(b.built_at.as_ref()).map(rfc3339),
        }
    }
}

pub async fn run(global: &GlobalArgs, cmd: BaselineCommand) -> anyhow::Result<()> {
    let BaselineCommand::List(args) = cmd;
    let mut conn = Connection::open(global, Needs::StoreOnly).await?;
    let resp = conn.control.list_baselines(v1::ListBaselinesRequest {}).await.map_err(status_error);
    conn.close().await;
    let baselines: Vec<BaselineJson> = resp?.into_inner().baselines.iter().map(Into::into).collect();
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&baselines)?),
        Format::Table if baselines.is_empty() => {
            println!("no baselines yet: a period's baseline comes from its finished scans")
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = baselines
                .iter()
                .map(|b| {
                    vec![
                        b.period.clone(),
                        format!("{}{}", b.revision, if b.current { "" } else { " (history)" }),
                        b.scans.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
                        b.regions.join(","),
                        b.entries.to_string(),
                        b.built_at.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            table(
                &mut std::io::stdout().lock(),
                &["PERIOD", "REVISION", "SCANS", "REGIONS", "ENTRIES", "BUILT"],
                &rows,
            )?;
        }
    }
    Ok(())
}
