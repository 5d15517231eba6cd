//! `vantage fleet list`.

use clap::Args;
use serde::Serialize;
use vantage_proto::v1;

use crate::cli::connect::{Connection, Needs};
use crate::cli::output::{Format, rfc3339, table, wire_time};
use crate::cli::{GlobalArgs, status_error};

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Serialize)]
struct AgentJson {
    id: String,
    name: String,
    region: String,
    version: String,
    capacity: u32,
    state: String,
    connected_at: Option<String>,
    last_seen: Option<String>,
    active_leases: u32,
    shards_done: u64,
    cert_expires_at: Option<String>,
    revoked_at: Option<String>,
    revoked_reason: String,
}

pub async fn run(global: &GlobalArgs, args: ListArgs) -> anyhow::Result<()> {
    if global.coordinator.is_none() {
        eprintln!("no --coordinator given: an embedded coordinator has no agents of its own between commands");
    }
    let mut conn = Connection::open(global, Needs::StoreOnly).await?;
    let agents = conn.control.list_agents(v1::ListAgentsRequest {}).await.map_err(status_error);
    conn.close().await;
    let agents: Vec<AgentJson> = agents?
        .into_inner()
        .agents
        .into_iter()
        .map(|a| AgentJson {
            connected_at: wire_time(a.connected_at.as_ref()).map(rfc3339),
            last_seen: wire_time(a.last_seen.as_ref()).map(rfc3339),
            cert_expires_at: wire_time(a.cert_expires_at.as_ref()).map(rfc3339),
            revoked_at: wire_time(a.revoked_at.as_ref()).map(rfc3339),
            revoked_reason: a.revoked_reason,
            state: a.state,
            id: a.agent_id,
            name: a.name,
            region: a.region,
            version: a.version,
            capacity: a.capacity,
            active_leases: a.active_leases,
            shards_done: a.shards_done,
        })
        .collect();
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&agents)?),
        Format::Table => {
            let rows: Vec<Vec<String>> = agents
                .iter()
                .map(|a| {
                    vec![
                        a.id.clone(),
                        a.name.clone(),
                        a.region.clone(),
                        a.state.clone(),
                        a.version.clone(),
                        a.last_seen.clone().unwrap_or_default(),
                        format!("{}/{}", a.active_leases, a.capacity),
                        a.shards_done.to_string(),
                        a.cert_expires_at.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            table(
                &mut std::io::stdout().lock(),
                &["AGENT", "NAME", "REGION", "STATE", "VERSION", "LAST SEEN", "LEASES", "SHARDS DONE", "CERT EXPIRES"],
                &rows,
            )?;
        }
    }
    Ok(())
}
