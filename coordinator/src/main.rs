//! `vantage`: parse flags, set up logging, run one command, exit with a code.

use std::process::ExitCode;

use vantage_agent::process::init_logging;
use vantage_coordinator::cli::{self, Command, UsageError};

/// A review reads millions of baseline entries, each a handful of small
/// allocations; mimalloc makes a 1M-port diff ~25 % cheaper than glibc's
/// allocator (bench/README.md, "Diff of two 1,000,000-port baselines").
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // `serve --config FILE` supplies defaults: the file is read before parsing for good.
    let cli = cli::config::parse();
    // The coordinator logs its work; one-shot commands only say what went wrong.
    let default_level = if matches!(cli.command, Command::Serve(_)) { "info" } else { "warn" };
    init_logging(default_level, cli.global.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime starts");
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vantage: {}", one_line(&e));
            if e.downcast_ref::<UsageError>().is_some() { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}

/// The error and its causes on one line, without the repeats that layered
/// transport errors produce ("transport error: transport error: ...").
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !parts.last().is_some_and(|prev| prev.ends_with(&text) || prev == &text) {
            parts.push(text);
        }
    }
    parts.join(": ")
}
