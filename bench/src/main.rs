//! `vantage-bench`: scan one lab with Vantage, nmap and masscan, and compare
//! wall time, probes per second, CPU, memory and accuracy against the
//! lab's ground truth. Needs root (the lab is made of network namespaces).
//!
//! # Layout
//! * `workload`: the labs scanned (`256x1000`, `16x65535`).
//! * `tools`: how each scanner is invoked in the lab, and read back.
//! * `parse`: Vantage JSON, nmap XML and masscan list output.
//! * `measure`: running a tool with `wait4` for its CPU time and peak RSS.
//! * `bench`: the loop over workloads, runs and tools.
//! * `heartbeat`: background traffic, so the lab is not unnaturally silent.
//! * `report`: the table and the JSON rows.
//! * `checks`: memory over 65,536 hosts, and rate caps, on a routed block.
//! * `services`: service and version detection against `nmap -sV` on the
//!   service lab's real daemons (`--services`); `agree` judges each port.
//! * `diffcheck`: the diff of two 1,000,000-port baselines (`--checks
//!   diff`), made up by `synth`; needs no lab and no root.
//! * `ingest`: observations per second `vantage serve` stores from 50
//!   simulated agents, and its peak memory (`--checks ingest`); loopback only.
//! * `reportcheck`: the monthly report of 10,000 findings, model and HTML
//!   (`--checks report`); in this process alone.

/// The same allocator as `vantage`, so the diff check's in-process stages
/// measure what the product does.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod agree;
mod bench;
mod checks;
mod diffcheck;
mod heartbeat;
mod ingest;
mod measure;
mod parse;
mod report;
mod reportcheck;
mod scaling;
mod services;
mod synth;
mod tools;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::bench::BenchConfig;
use crate::checks::CheckConfigs;
use crate::diffcheck::DiffConfig;
use crate::ingest::IngestConfig;
use crate::services::{ServicesConfig, SvcTool};
use crate::tools::{Tool, ToolOptions};
use crate::workload::Workload;

#[derive(Debug, Parser)]
#[command(
    name = "vantage-bench",
    about = "Scan a lab with Vantage, nmap and masscan; compare speed, cost and accuracy."
)]
struct Args {
    /// Workloads to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "256x1000,16x65535")]
    workloads: Vec<Workload>,
    /// Tools to compare, comma-separated, in this order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "vantage-connect,vantage-syn,nmap-sT,nmap-sS,masscan"
    )]
    tools: Vec<Tool>,
    /// Repeat every tool this many times (each run is its own row).
    #[arg(long, default_value_t = 1)]
    runs: u32,
    /// Also write the rows as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Seed of the labs' ground truth.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Name prefix of the labs (namespaces vl-<prefix>-<workload>-*).
    #[arg(long, default_value = "bench")]
    lab: String,
    /// Kill a tool run after this long.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "15m")]
    limit: Duration,
    /// masscan's --rate (packets per second).
    #[arg(long, default_value_t = 100_000)]
    masscan_rate: u32,
    /// masscan's --retries.
    #[arg(long, default_value_t = 1)]
    masscan_retries: u32,
    /// masscan's --wait after the last probe (whole seconds).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    masscan_wait: Duration,
    /// Instead of the tool comparison, measure these Vantage figures
    /// (comma-separated): memory, rate, diff, ingest, scaling, report. With diff and
    /// ingest, --runs repeats the measurements (diff on the same store,
    /// ingest each time on a new coordinator).
    #[arg(long, value_enum, value_delimiter = ',', conflicts_with = "services")]
    checks: Vec<checks::Check>,
    /// Entries of each baseline of `--checks diff`.
    #[arg(long, default_value_t = 1_000_000)]
    diff_entries: u64,
    /// Keep the store of `--checks diff` in this directory (generated if it
    /// does not exist, reused as it is if it does) instead of a temporary one.
    #[arg(long)]
    diff_store: Option<PathBuf>,
    /// Findings of the period `--checks report` reports on.
    #[arg(long, default_value_t = 10_000)]
    report_findings: u64,
    /// Simulated agents of `--checks ingest`, streaming at once.
    #[arg(long, default_value_t = 50)]
    ingest_agents: u32,
    /// Shards each simulated agent runs at once (the agent's --capacity).
    #[arg(long, default_value_t = 2)]
    ingest_capacity: u32,
    /// The addresses `--checks ingest` reports open (inside 198.18.0.0/15;
    /// nothing is sent to them).
    #[arg(long, default_value = "198.18.0.0/16")]
    ingest_targets: String,
    /// The ports `--checks ingest` reports open on every address.
    #[arg(long, default_value = "1-32")]
    ingest_ports: String,
    /// The coordinator's --shard-probes in `--checks ingest`.
    #[arg(long, default_value_t = 8192)]
    ingest_shard_probes: u64,
    /// Internal: run one stage of `--checks diff` on a data directory and
    /// print what it found (the check measures this as a child).
    #[arg(long, value_enum, hide = true, requires = "diff_data")]
    diff_child: Option<diffcheck::Stage>,
    /// Internal: the data directory of --diff-child.
    #[arg(long, hide = true)]
    diff_data: Option<PathBuf>,
    /// Instead of the tool comparison, compare service and version detection
    /// with `nmap -sV` on the service lab (named `<lab>-svc`).
    #[arg(long)]
    services: bool,
    /// The runs of --services, comma-separated, in this order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "vantage,vantage+nmap-probes,nmap-sV,vantage-udp,nmap-sU-sV"
    )]
    service_tools: Vec<SvcTool>,
    /// The nmap-service-probes file of the `vantage+nmap-probes` run.
    #[arg(long, default_value = services::NMAP_PROBES)]
    nmap_probes: PathBuf,
    /// With --services: kill a UDP run after this long (TCP runs: --limit).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10m")]
    udp_limit: Duration,
    /// Vantage's --timeout.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "300ms")]
    vantage_timeout: Duration,
}

impl Args {
    fn config(self) -> anyhow::Result<(BenchConfig, Option<PathBuf>)> {
        anyhow::ensure!(self.runs >= 1, "--runs must be at least 1");
        anyhow::ensure!(!self.tools.is_empty() && !self.workloads.is_empty(), "nothing to run");
        let options = ToolOptions {
            masscan_rate: self.masscan_rate,
            masscan_retries: self.masscan_retries,
            masscan_wait: self.masscan_wait,
            vantage_timeout: self.vantage_timeout,
        };
        let config = BenchConfig {
            workloads: self.workloads,
            tools: self.tools,
            runs: self.runs,
            seed: self.seed,
            lab_prefix: self.lab,
            limit: self.limit,
            options,
        };
        Ok((config, self.json))
    }
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("vantage-bench: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    if let (Some(stage), Some(dir)) = (args.diff_child, &args.diff_data) {
        return diffcheck::child_main(stage, dir, &synth::Synth::new(args.diff_entries, args.seed));
    }
    if args.services {
        anyhow::ensure!(args.runs >= 1 && !args.service_tools.is_empty(), "nothing to run");
        let config = ServicesConfig {
            tools: args.service_tools,
            runs: args.runs,
            lab: format!("{}-svc", args.lab),
            limit: args.limit,
            udp_limit: args.udp_limit,
            nmap_probes: args.nmap_probes,
        };
        let result = services::run(&config)?;
        services::print(&result, &mut std::io::stdout().lock())?;
        if let Some(path) = args.json {
            report::write_json(&result, &path)?;
        }
        return Ok(());
    }
    if !args.checks.is_empty() {
        if args.checks.iter().any(|c| c.needs_lab()) {
            vantage_tests::lab::check().map_err(|why| anyhow::anyhow!("the checks need a lab and cannot: {why}"))?;
        }
        anyhow::ensure!(args.runs >= 1, "--runs must be at least 1");
        let configs = CheckConfigs {
            diff: DiffConfig {
                entries: args.diff_entries,
                seed: args.seed,
                runs: args.runs,
                limit: args.limit,
                store: args.diff_store.clone(),
            },
            ingest: IngestConfig {
                agents: args.ingest_agents,
                capacity: args.ingest_capacity,
                targets: args.ingest_targets.clone(),
                ports: args.ingest_ports.clone(),
                shard_probes: args.ingest_shard_probes,
                runs: args.runs,
                limit: args.limit,
            },
            report: reportcheck::ReportConfig { findings: args.report_findings, seed: args.seed, runs: args.runs },
        };
        // The report check runs in this process: it alone needs no `vantage` binary built.
        let vantage = if args.checks.iter().all(|c| *c == checks::Check::Report) {
            PathBuf::new()
        } else {
            vantage_tests::bins::vantage()
        };
        let figures = checks::run(&args.checks, &args.lab, &vantage, &configs)?;
        for figure in &figures {
            println!("{:<50} {}", figure.name, figure.value);
        }
        let failed = figures.iter().filter(|f| f.failed).count();
        anyhow::ensure!(failed == 0, "{failed} of the figures above failed or came out wrong");
        return Ok(());
    }
    let (config, json) = args.config()?;
    let rows = bench::run(&config)?;
    report::table(&rows, &mut std::io::stdout().lock())?;
    if let Some(path) = json {
        report::write_json(&rows, &path)?;
    }
    Ok(())
}
