//! Figures that need a bigger network than a lab of listeners holds: flat
//! memory over 65,536 hosts, and rate caps kept to within 5 %; and two that
//! need no network beyond loopback: the diff of two 1,000,000-port baselines
//! ([`diffcheck`](crate::diffcheck)) and the coordinator's ingest rate with
//! 50 agents streaming at once ([`ingest`](crate::ingest)); and one that
//! needs nothing but this process: the report of 10,000 findings
//! ([`reportcheck`](crate::reportcheck)).
//!
//! A "block" is two namespaces joined by one veth pair, with no route out:
//! the scanner (198.18.0.1/30) routes 198.19.0.0/16 to the target
//! (198.18.0.2/30), which holds the whole /16 as a local route, so its
//! kernel answers for all 65,536 addresses (a RST on every port) behind a
//! single neighbour entry.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use clap::ValueEnum;
use serde_json::Value;
use vantage_tests::lab::net;

use crate::diffcheck::{self, DiffConfig};
use crate::ingest::{self, IngestConfig};
use crate::measure::measure;
use crate::reportcheck::{self, ReportConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Check {
    /// Peak RSS of a SYN scan of 65,536 hosts x 100 ports (embedded: coordinator and agent in one process).
    Memory,
    /// Achieved probe rates against --rate and --host-rate caps.
    Rate,
    /// The diff of two synthetic baselines of --diff-entries open ports, 10 % changed (no lab needed).
    Diff,
    /// Observations/s `vantage serve` stores from --ingest-agents simulated agents, and its peak RSS (no lab needed).
    Ingest,
    /// The same scan across 1, 2 and 4 agents of one region, with added latency (see `scaling`).
    Scaling,
    /// The monthly report of a period with --report-findings findings over 12 periods: model and HTML (no lab needed).
    Report,
}

impl Check {
    /// Does the check scan the block (and so need root and a lab)?
    pub fn needs_lab(self) -> bool {
        !matches!(self, Check::Diff | Check::Ingest | Check::Report)
    }
}

/// The block's namespaces, deleted on drop.
struct Block {
    scan: String,
    target: String,
}

impl Block {
    fn up(prefix: &str) -> anyhow::Result<Block> {
        let block = Block { scan: format!("vl-{prefix}-blk-scan"), target: format!("vl-{prefix}-blk-t") };
        block.delete();
        let ip = |args: &[&str]| net::run(Command::new("ip").args(args)).map(drop);
        ip(&["netns", "add", &block.scan])?;
        ip(&["netns", "add", &block.target])?;
        ip(&["-n", &block.scan, "link", "add", "b0", "type", "veth", "peer", "name", "b1", "netns", &block.target])?;
        for (ns, dev, addr) in [(&block.scan, "b0", "198.18.0.1/30"), (&block.target, "b1", "198.18.0.2/30")] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        ip(&["-n", &block.scan, "route", "add", "198.19.0.0/16", "via", "198.18.0.2"])?;
        ip(&["-n", &block.target, "route", "add", "local", "198.19.0.0/16", "dev", "lo"])?;
        Ok(block)
    }

    fn delete(&self) {
        for ns in [&self.scan, &self.target] {
            let _ = net::delete(ns);
        }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        self.delete();
    }
}

/// One figure: what was run and what came out.
pub struct Figure {
    pub name: String,
    pub value: String,
    /// The run failed, or came out wrong.
    pub failed: bool,
}

/// What the checks that need no lab are given.
pub struct CheckConfigs {
    pub diff: DiffConfig,
    pub ingest: IngestConfig,
    pub report: ReportConfig,
}

pub fn run(checks: &[Check], prefix: &str, vantage: &Path, configs: &CheckConfigs) -> anyhow::Result<Vec<Figure>> {
    let block = if checks.iter().any(|c| c.needs_lab()) {
        Some(Block::up(prefix).context("building the block")?)
    } else {
        None
    };
    let dir = tempfile::tempdir()?;
    let scope = dir.path().join("scope.txt");
    std::fs::write(&scope, "198.18.0.0/15\n")?;
    let mut figures = Vec::new();
    for check in checks {
        match (check, &block) {
            (Check::Memory, Some(block)) => figures.extend(memory(block, vantage, &scope, dir.path())?),
            (Check::Rate, Some(block)) => figures.extend(rates(block, vantage, &scope, dir.path())?),
            (Check::Diff, _) => figures.extend(diffcheck::run(&configs.diff, vantage)?),
            (Check::Ingest, _) => figures.extend(ingest::run(&configs.ingest, vantage)?),
            (Check::Report, _) => figures.extend(reportcheck::run(&configs.report)?),
            (Check::Scaling, _) => figures.extend(crate::scaling::run(prefix, configs.diff.runs, configs.diff.seed)?),
            (Check::Memory | Check::Rate, None) => unreachable!("the block is up for the checks that need it"),
        }
    }
    Ok(figures)
}

/// Runs `vantage scan` in the block; returns (wall, peak RSS MiB, JSON document).
fn scan(
    block: &Block,
    vantage: &Path,
    scope: &Path,
    data: &Path,
    args: &[&str],
) -> anyhow::Result<(Duration, f64, Value)> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &block.scan]).arg(vantage).arg("--data-dir").arg(data).arg("--scope").arg(scope);
    cmd.args(["scan", "--format", "json", "--banner-timeout", "0s"]).args(args);
    let m = measure(cmd, Duration::from_secs(1800))?;
    anyhow::ensure!(m.success(), "vantage {args:?} failed: {}", String::from_utf8_lossy(&m.stderr));
    let doc: Value = serde_json::from_slice(&m.stdout).context("vantage printed no JSON")?;
    Ok((m.wall, m.max_rss_kib as f64 / 1024.0, doc))
}

fn memory(block: &Block, vantage: &Path, scope: &Path, dir: &Path) -> anyhow::Result<Vec<Figure>> {
    let args = ["--mode", "syn", "--targets", "198.19.0.0/16", "--ports", "1-100"];
    let (wall, rss, doc) = scan(block, vantage, scope, &dir.join("memory"), &args)?;
    let s = &doc["scan"];
    Ok(vec![Figure {
        name: "memory: SYN scan of 65,536 hosts x 100 ports".into(),
        value: format!(
            "peak RSS {rss:.1} MiB, {:.1} s, {} probes ({} closed, {} open, {} filtered)",
            wall.as_secs_f64(),
            s["probes_done"],
            s["closed"],
            s["open"],
            s["filtered"]
        ),
        failed: false,
    }])
}

/// The achieved rate is taken over the whole run of the capped scan, start-up
/// and the final wait for late answers included, so it can only understate
/// how closely the pace kept to the cap, never overstate it.
fn rates(block: &Block, vantage: &Path, scope: &Path, dir: &Path) -> anyhow::Result<Vec<Figure>> {
    let cases: [(&str, &str, u32, &str, &str, u64); 3] = [
        ("--rate", "syn", 20_000, "198.19.0.0/20", "1-50", 1),
        ("--rate", "connect", 5_000, "198.19.0.0/20", "1-50", 1),
        // Four hosts at 200 probes/s each: the rate per host.
        ("--host-rate", "syn", 200, "198.19.0.1-4", "1-3000", 4),
    ];
    let mut figures = Vec::new();
    for (i, (flag, mode, cap, targets, ports, hosts)) in cases.into_iter().enumerate() {
        let cap_text = cap.to_string();
        let args = ["--mode", mode, "--targets", targets, "--ports", ports, "--retries", "0", flag, &cap_text];
        let (wall, _, doc) = scan(block, vantage, scope, &dir.join(format!("rate-{i}")), &args)?;
        let probes = doc["scan"]["packets"].as_u64().unwrap_or(0) / hosts;
        let achieved = probes as f64 / wall.as_secs_f64();
        let off = (achieved - f64::from(cap)) / f64::from(cap) * 100.0;
        let per = if hosts > 1 { " per host" } else { "" };
        figures.push(Figure {
            name: format!("rate: {flag} {cap} ({mode}{per})"),
            value: format!(
                "{achieved:.0} probes/s ({off:+.1} % of the cap): {probes} probes in {:.2} s",
                wall.as_secs_f64()
            ),
            failed: false,
        });
    }
    Ok(figures)
}
