//! `vantage-agent`: parse flags, set up logging, run until a signal.

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;
use vantage_agent::Agent;
use vantage_agent::cli::{self, Command};
use vantage_agent::identity::{self, IdentityDir};
use vantage_agent::process::{cancel_on_signals, init_logging};

fn main() -> ExitCode {
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("{}", e.report("vantage-agent", "agent"));
            return ExitCode::from(2);
        }
    };
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
        let agent = Agent::new(cfg);
        if let Err(e) = agent.serve_metrics(&shutdown).await {
            eprintln!("vantage-agent: --metrics-listen: {e}");
            return ExitCode::FAILURE;
        }
        agent.run(shutdown).await;
        ExitCode::SUCCESS
    })
}
