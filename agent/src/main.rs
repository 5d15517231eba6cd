//! `vantage-agent`: parse flags, set up logging, run until a signal.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use vantage_agent::identity::{self, ENV_AGENT_DIR, IdentityDir};
use vantage_agent::process::{LogFormat, cancel_on_signals, init_logging};
use vantage_agent::{Agent, AgentArgs};

/// Vantage scan agent.
///
/// Dials out to a coordinator (so it works from behind NAT), takes typed
/// work, and scans only addresses that are both in the assignment's scope
/// and in its own --allow list, never in its --deny list. Every connection
/// is TLS with the certificate it got when it enrolled.
///
/// Examples:
///   vantage-agent enroll --token vjt1.... --coordinator https://coordinator.example:7420
///   vantage-agent --allow 198.18.0.0/15
#[derive(Debug, Parser)]
#[command(name = "vantage-agent", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    agent: AgentArgs,

    /// Log format on stderr.
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Join a coordinator with a one-time token from `vantage fleet token`:
    /// generates this agent's key, gets its certificate, and keeps both in --dir.
    Enroll(EnrollArgs),
}

#[derive(Debug, Args)]
struct EnrollArgs {
    /// The join token (vjt1....), printed by `vantage fleet token --region REGION`.
    #[arg(long, env = "VANTAGE_JOIN_TOKEN")]
    token: String,

    /// The coordinator's address, e.g. https://coordinator.example:7420.
    #[arg(long, env = vantage_agent::config::ENV_COORDINATOR)]
    coordinator: String,

    /// Where to keep the key, the certificate and the CA.
    #[arg(long, env = ENV_AGENT_DIR, value_name = "DIR", default_value_os_t = identity::default_dir())]
    dir: PathBuf,

    /// This agent's name in `vantage fleet list` [default: the host name].
    #[arg(long)]
    name: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging("info", cli.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime starts");
    if let Some(Command::Enroll(args)) = cli.command {
        let dir = IdentityDir::new(args.dir);
        let name = args.name.unwrap_or_else(vantage_agent::config::default_name);
        return match runtime.block_on(identity::enroll(&dir, &args.token, &args.coordinator, &name)) {
            Ok(e) => {
                println!(
                    "enrolled as {} ({}) in region {}; identity kept in {}",
                    e.agent_id,
                    e.name,
                    e.region,
                    dir.path.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vantage-agent enroll: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let cfg = match cli.agent.validate() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("vantage-agent: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signals(shutdown.clone()));
        Agent::new(cfg).run(shutdown).await;
    });
    ExitCode::SUCCESS
}
