//! `vantage-agent`: parse flags, set up logging, run until a signal.

use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use vantage_agent::process::{LogFormat, cancel_on_signals, init_logging};
use vantage_agent::{Agent, AgentArgs};

/// Vantage scan agent.
///
/// Dials out to a coordinator (so it works from behind NAT), takes typed
/// work, and scans only addresses that are both in the assignment's scope
/// and in its own --allow list, never in its --deny list.
///
/// Example: vantage-agent --coordinator http://127.0.0.1:7420 --region eu-west --allow 198.18.0.0/15
#[derive(Debug, Parser)]
#[command(name = "vantage-agent", version)]
struct Cli {
    #[command(flatten)]
    agent: AgentArgs,

    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging("info", cli.log_format);
    let cfg = match cli.agent.validate() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("vantage-agent: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime starts");
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signals(shutdown.clone()));
        Agent::new(cfg).run(shutdown).await;
    });
    ExitCode::SUCCESS
}
