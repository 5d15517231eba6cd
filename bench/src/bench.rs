//! One benchmark: for each workload, build its lab once, run every tool
//! (`--runs` times) against the same targets, and score each run against
//! the ground truth. A tool that fails gives a row with its error; it
//! never stops the others.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use vantage_tests::lab::{self, Lab};

use crate::heartbeat::Heartbeat;
use crate::measure::{Measured, measure};
use crate::report::Row;
use crate::tools::{Setup, Tool, ToolOptions};
use crate::workload::Workload;

/// What to run, validated from the command line.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub workloads: Vec<Workload>,
    pub tools: Vec<Tool>,
    pub runs: u32,
    pub seed: u64,
    /// Labs are named `<lab_prefix>-<workload>`.
    pub lab_prefix: String,
    /// Each tool run is killed after this long.
    pub limit: Duration,
    pub options: ToolOptions,
}

/// Runs the whole benchmark; rows come in the order they ran.
pub fn run(config: &BenchConfig) -> anyhow::Result<Vec<Row>> {
    lab::check().map_err(|why| anyhow::anyhow!("the benchmark builds a lab and cannot: {why}"))?;
    let uses_vantage = config.tools.iter().any(|t| matches!(t, Tool::VantageConnect | Tool::VantageSyn));
    // Builds the release binaries if needed (the benchmark is run with --release).
    let vantage = if uses_vantage { vantage_tests::bins::vantage() } else { PathBuf::from("vantage") };
    let mut rows = Vec::new();
    for workload in &config.workloads {
        run_workload(config, *workload, &vantage, &mut rows)?;
    }
    Ok(rows)
}

fn run_workload(config: &BenchConfig, workload: Workload, vantage: &Path, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let spec = workload.spec(&config.lab_prefix, config.seed);
    eprintln!("== {}: building lab {} ({} targets)", workload.name(), spec.name, spec.target_count());
    let lab = Lab::up(&spec).with_context(|| format!("building lab {}", spec.name))?;
    let dir = tempfile::tempdir().context("creating a work directory")?;
    let scope = dir.path().join("scope.txt");
    std::fs::write(&scope, format!("{}\n", lab.truth().network)).context("writing the scope file")?;
    let targets_file = dir.path().join("targets.txt");
    let addrs: Vec<String> = lab.truth().addresses().map(|a| a.to_string()).collect();
    std::fs::write(&targets_file, addrs.join("\n") + "\n").context("writing the targets file")?;
    let heartbeat = Heartbeat::start(&lab).context("starting the heartbeat")?;
    for run in 1..=config.runs {
        for (i, tool) in config.tools.iter().enumerate() {
            let setup = Setup {
                lab: &lab,
                vantage,
                scope: &scope,
                targets_file: &targets_file,
                data_dir: dir.path().join(format!("store-{run}-{i}")),
                options: &config.options,
            };
            eprint!("{} run {run}: {:<16} ", workload.name(), tool.name());
            let row = run_tool(&setup, *tool, workload, run, config.limit);
            eprintln!("{:.2} s{}", row.wall_s, row.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default());
            rows.push(row);
        }
    }
    drop(heartbeat);
    lab.down().context("tearing the lab down")?;
    Ok(())
}

fn run_tool(setup: &Setup<'_>, tool: Tool, workload: Workload, run: u32, limit: Duration) -> Row {
    let truth = setup.lab.truth();
    let mut row = Row {
        workload: workload.name().to_string(),
        tool: tool.name().to_string(),
        run,
        probes: truth.probes(),
        wall_s: 0.0,
        probes_per_s: 0.0,
        cpu_s: 0.0,
        peak_rss_mib: 0.0,
        expected_open: truth.expected_open().len(),
        reported_open: None,
        missed: None,
        false_open: None,
        error: None,
    };
    let measured = match measure(tool.command(setup), limit) {
        Ok(m) => m,
        Err(e) => {
            row.error = Some(format!("cannot run: {e}"));
            return row;
        }
    };
    row.wall_s = measured.wall.as_secs_f64();
    row.probes_per_s = row.probes as f64 / row.wall_s.max(1e-9);
    row.cpu_s = measured.cpu.as_secs_f64();
    row.peak_rss_mib = measured.max_rss_kib as f64 / 1024.0;
    if let Some(e) = failure(&measured, limit) {
        row.error = Some(e);
        return row;
    }
    match tool.parse(&String::from_utf8_lossy(&measured.stdout)) {
        Ok(open) => {
            let score = truth.score(&open);
            row.reported_open = Some(open.len());
            row.missed = Some(score.missed.len());
            row.false_open = Some(score.false_open.len());
        }
        Err(e) => row.error = Some(e.to_string()),
    }
    row
}

/// Why a run counts as failed: killed at the limit, or a non-zero exit
/// (with the error line of its stderr).
pub fn failure(m: &Measured, limit: Duration) -> Option<String> {
    if m.timed_out {
        return Some(format!("killed after {}", humantime::format_duration(limit)));
    }
    if m.success() {
        return None;
    }
    let stderr = String::from_utf8_lossy(&m.stderr);
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    // The line naming the error if there is one (clap ends with a hint), else the last.
    let line = lines.iter().find(|l| l.to_ascii_lowercase().contains("error")).or(lines.last()).unwrap_or(&"");
    let line: String = line.chars().take(100).collect();
    Some(match m.code {
        Some(code) => format!("exit {code}: {line}"),
        None => format!("killed by a signal: {line}"),
    })
}
