//! `vantage-agent`: parse flags, set up logging, run until a signal.

use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use vantage_agent::{Agent, AgentArgs};

/// Vantage scan agent: dials out to a coordinator and scans what it is
/// assigned, never outside its own --allow list.
#[derive(Debug, Parser)]
#[command(name = "vantage-agent", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    agent: AgentArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
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
        tokio::spawn(signals(shutdown.clone()));
        Agent::new(cfg).run(shutdown).await;
    });
    ExitCode::SUCCESS
}

/// The first SIGINT or SIGTERM asks for a clean stop; a second one exits at once.
async fn signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return;
    };
    for round in 0..2 {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if round == 0 {
            tracing::info!("signal received; stopping (again to exit at once)");
            shutdown.cancel();
        } else {
            std::process::exit(130);
        }
    }
}
