//! `vantage fleet token`: a one-time join token for one agent.

use std::time::Duration;

use clap::Args;
use vantage_proto::v1;
use vantage_shared::convert::duration_to_wire;

use crate::cli::connect::{Connection, Needs};
use crate::cli::output::{rfc3339, wire_time};
use crate::cli::{GlobalArgs, UsageError, status_error};

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The region the agent will scan from (it cannot choose another).
    #[arg(long)]
    pub region: String,

    /// How long the token may wait to be used (at most 7 days).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
    pub ttl: Duration,
}

pub async fn run(global: &GlobalArgs, args: TokenArgs) -> anyhow::Result<()> {
    let Some(url) = global.coordinator.clone() else {
        return Err(UsageError(
            "join tokens are for a running coordinator (`vantage serve`): give --coordinator https://HOST:PORT".into(),
        )
        .into());
    };
    let mut conn = Connection::open(global, Needs::StoreOnly).await?;
    let req = v1::CreateJoinTokenRequest { region: args.region, ttl: Some(duration_to_wire(args.ttl)) };
    let token = conn.control.create_join_token(req).await.map_err(status_error);
    conn.close().await;
    let token = token?.into_inner();
    // The token alone on stdout, for scripts; how to use it on stderr.
    println!("{}", token.token);
    let expires = wire_time(token.expires_at.as_ref()).map(rfc3339).unwrap_or_default();
    eprintln!(
        "one-time join token for region {}, valid until {expires}. On the agent's machine:\n  \
         vantage-agent enroll --coordinator {url} --token {}",
        token.region, token.token
    );
    Ok(())
}
