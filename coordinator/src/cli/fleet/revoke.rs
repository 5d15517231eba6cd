//! `vantage fleet revoke`: cut an agent off, at once and for good.

use clap::Args;
use vantage_proto::v1;

use crate::cli::connect::{Connection, Needs};
use crate::cli::{GlobalArgs, status_error};

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The agent's id (`a-3`), as `vantage fleet list` shows it.
    pub agent: String,

    /// Why, for the coordinator's log and `vantage fleet list`.
    #[arg(long, default_value = "")]
    pub reason: String,
}

pub async fn run(global: &GlobalArgs, args: RevokeArgs) -> anyhow::Result<()> {
    let mut conn = Connection::open(global, Needs::StoreOnly).await?;
    let req = v1::RevokeAgentRequest { agent_id: args.agent, reason: args.reason };
    let info = conn.control.revoke_agent(req).await.map_err(status_error);
    conn.close().await;
    let info = info?.into_inner();
    println!("{} ({}, region {}) revoked: {}", info.agent_id, info.name, info.region, info.revoked_reason);
    eprintln!(
        "its open connection is closed and its certificate is refused from now on; its leases went back to the queue"
    );
    Ok(())
}
