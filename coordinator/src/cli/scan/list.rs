//! `vantage scan list`: every scan the coordinator knows, oldest first.

use clap::Args;
use vantage_proto::v1;

use crate::cli::connect::{Connection, Needs};
use crate::cli::output::{Format, ScanJson, rfc3339, table, wire_time};
use crate::cli::{GlobalArgs, status_error};

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn run(global: &GlobalArgs, args: ListArgs) -> anyhow::Result<()> {
    let mut conn = Connection::open(global, Needs::StoreOnly).await?;
    let scans = conn.control.list_scans(v1::ListScansRequest {}).await.map_err(status_error);
    conn.close().await;
    let scans = scans?.into_inner().scans;
    match args.format {
        Format::Json => {
            let docs: Vec<ScanJson> = scans.iter().map(Into::into).collect();
            println!("{}", serde_json::to_string_pretty(&docs)?);
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = scans
                .iter()
                .map(|s| {
                    let state = if s.finished {
                        "done".to_string()
                    } else {
                        format!("{}%", s.probes_done * 100 / s.probes_total.max(1))
                    };
                    vec![
                        s.scan_id.to_string(),
                        wire_time(s.started_at.as_ref()).map(rfc3339).unwrap_or_default(),
                        state,
                        s.open.to_string(),
                        s.ports.clone(),
                        s.targets.clone(),
                    ]
                })
                .collect();
            table(&mut std::io::stdout().lock(), &["SCAN", "STARTED", "STATE", "OPEN", "PORTS", "TARGETS"], &rows)?;
        }
    }
    Ok(())
}
