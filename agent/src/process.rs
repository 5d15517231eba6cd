//! Process plumbing both binaries share: logging set-up and signals.

use tokio_util::sync::CancellationToken;

pub const ENV_LOG: &str = "VANTAGE_LOG";

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Human,
    /// One JSON object per event, for log collectors.
    Json,
}

/// Logs go to stderr (stdout is for data). `VANTAGE_LOG` (an env-filter
/// directive such as `debug` or `vantage_agent=trace`) overrides `default`.
pub fn init_logging(default: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env(ENV_LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The first SIGINT or SIGTERM cancels `shutdown` for a clean stop; a second
/// one exits at once.
pub async fn cancel_on_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::warn!("cannot install signal handlers");
        return;
    };
    for round in 0..2 {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if round == 0 {
            tracing::info!("signal received; stopping (send it again to exit at once)");
            shutdown.cancel();
        } else {
            std::process::exit(130);
        }
    }
}
