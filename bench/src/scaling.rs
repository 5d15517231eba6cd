//! `--checks scaling`: the same scan across 1, 2 and 4 agents of one region,
//! in the lab with added latency (issue #5: 4 agents at least 3x faster than 1).
//!
//! The lab has four scanner namespaces and a control namespace; the target
//! namespace delays everything it sends by [`DELAY`], so every answer takes a
//! wide-area round trip: with `tc qdisc ... netem` on its interface where the
//! kernel has netem, otherwise through the lab's delay line (a TUN device and
//! a user-space process, `vantage_tests::lab::delay`). The added round trip
//! is measured, not assumed: the median of [`RTT_PROBES`] TCP connects from
//! the first scanner to an open port, before and after the delay is added;
//! below [`DELAY`], the figure fails. For each
//! agent count a fresh TLS fleet is started ([`Fleet::start`]): a coordinator
//! in the control namespace serving shards of [`SHARD_PROBES`] probes, and
//! that many agents, all enrolled for region [`REGION`], each in its own
//! scanner namespace. Then the operator runs one connect scan of the whole
//! lab with `--rate` [`RATE`]: the rate cap is per agent and per scan, so one
//! agent alone is the bottleneck and more agents share the shards.
//!
//! The wall is the `vantage scan` process's, from spawn to exit (it prints
//! the JSON document when the scan has finished); the JSON's own
//! `started_at`..`finished_at` (whole seconds) is shown next to it. Each scan
//! must be exact against the lab's truth (every open port, no other, every
//! probe done, the filtered ones filtered), or its figure fails, as does the
//! 4-agent figure when it is less than 3x faster than 1 agent.

use std::collections::BTreeSet;
use std::net::SocketAddrV4;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;
use vantage_tests::fleet::{Fleet, FleetSpec};
use vantage_tests::lab::delay::median_connect;
use vantage_tests::lab::{DelayLine, HostKind, Lab, LabSpec, PortRange, Truth, net};
use vantage_tests::proc::run as run_limited;

use crate::checks::Figure;
use crate::parse;

/// Agent counts, in this order, every run.
const AGENTS: [u32; 3] = [1, 2, 4];
/// Live hosts of the lab.
const HOSTS: u32 = 32;
/// Ports scanned on each (HOSTS x PORTS = 64,000 probes).
const PORTS: PortRange = PortRange { first: 1, last: 2000 };
/// Open and filtered ports per live host.
const OPEN: u32 = 8;
const FILTERED: u32 = 2;
/// One-way delay added to everything the targets send.
const DELAY: Duration = Duration::from_millis(50);
/// Sequential TCP connects whose median is the measured round trip.
const RTT_PROBES: usize = 20;
/// Longest one of those connects may take.
const RTT_TIMEOUT: Duration = Duration::from_secs(2);
/// `vantage scan --rate`: probes per second per agent.
const RATE: u32 = 1000;
/// `vantage serve --shard-probes`: 64 shards, 16 for each of 4 agents.
const SHARD_PROBES: u64 = 1000;
/// `vantage scan --timeout`.
const TIMEOUT: &str = "300ms";
/// The region every agent is enrolled for.
const REGION: &str = "lab";
/// The coordinator's port on the control address.
const CONTROL_PORT: u16 = 7431;
/// Longest a scan may take (one agent needs about 64 s).
const SCAN_LIMIT: Duration = Duration::from_secs(600);
/// The speed-up 4 agents must reach over 1.
const TARGET: f64 = 3.0;

/// One scan's figures.
struct Row {
    run: u32,
    agents: u32,
    wall: Duration,
    json_secs: Option<u64>,
    /// Agents that reported an open port: the work was spread.
    reporting: usize,
    problem: Option<String>,
}

/// Builds the lab, adds the delay, and runs the scan `runs` times with each agent count.
pub fn run(prefix: &str, runs: u32, seed: u64) -> anyhow::Result<Vec<Figure>> {
    let spec = LabSpec {
        hosts: HOSTS,
        open: OPEN,
        filtered: FILTERED,
        ports: PORTS,
        scanners: *AGENTS.iter().max().expect("agent counts"),
        control: true,
        seed,
        ..LabSpec::new(&format!("{prefix}-scale"))
    };
    let lab = Lab::up(&spec).context("building the scaling lab")?;
    let truth = lab.truth().clone();
    let probe = rtt_probe(&truth)?;
    let before =
        median_connect(&spec.ns_scanner(), probe, RTT_PROBES, RTT_TIMEOUT).context("round trip without delay")?;
    let latency = add_delay(&spec);
    let after = median_connect(&spec.ns_scanner(), probe, RTT_PROBES, RTT_TIMEOUT).context("round trip with delay")?;
    let mut figures = vec![
        Figure {
            name: "scaling: lab".into(),
            value: format!(
                "{HOSTS} hosts x ports {PORTS} = {} probes ({} open, {} filtered), connect, --rate {RATE} per agent, \
                 --shard-probes {SHARD_PROBES}; added latency: {}",
                truth.probes(),
                truth.expected_open().len(),
                filtered(&truth),
                latency.describe(),
            ),
            failed: matches!(latency, Latency::None(_)),
        },
        Figure {
            name: "scaling: measured round trip".into(),
            value: format!(
                "median TCP connect from {} to {probe} ({RTT_PROBES} connects): {:.2} ms before, {:.2} ms with the \
                 delay{}",
                spec.ns_scanner(),
                ms(before),
                ms(after),
                if after < DELAY { format!("; below the delay ({} ms)", ms(DELAY)) } else { String::new() }
            ),
            failed: after < DELAY,
        },
    ];
    let mut rows = Vec::new();
    for run in 1..=runs {
        for agents in AGENTS {
            let row = scan(&spec, &truth, run, agents);
            let row = row.unwrap_or_else(|e| Row {
                run,
                agents,
                wall: Duration::ZERO,
                json_secs: None,
                reporting: 0,
                problem: Some(format!("{e:#}")),
            });
            eprintln!(
                "scaling, run {run}: {agents} agent(s): {:.2} s{}",
                row.wall.as_secs_f64(),
                row.problem.as_deref().map(|p| format!(" ({p})")).unwrap_or_default()
            );
            rows.push(row);
        }
    }
    figures.extend(rows.iter().map(|r| figure(r, &rows)));
    figures.extend(summary(&rows));
    print_table(&rows);
    if let Latency::Line(line) = latency {
        figures.push(line_figure(line.stop().context("stopping the delay line")?));
    }
    lab.down().context("tearing the scaling lab down")?;
    Ok(figures)
}

/// How the targets' answers were delayed.
enum Latency {
    /// `tc qdisc show` of the targets' interface.
    Netem(String),
    /// The lab's delay line (stopped after the scans, for its counters).
    Line(DelayLine),
    /// Why neither worked.
    None(String),
}

impl Latency {
    fn describe(&self) -> String {
        match self {
            Latency::Netem(qdisc) => format!("netem, targets' qdisc: {qdisc}"),
            Latency::Line(line) => format!(
                "the lab's delay line (TUN device, no netem in this kernel), {} one way on the targets' answers",
                humantime::format_duration(line.delay())
            ),
            Latency::None(why) => format!("NONE ({why})"),
        }
    }
}

/// Delays everything the target namespace sends by [`DELAY`]: netem on its
/// interface where the kernel has it (`CONFIG_NET_SCH_NETEM`), otherwise the
/// lab's delay line.
fn add_delay(spec: &LabSpec) -> Latency {
    let ns = spec.ns_targets();
    let tc = |args: &[&str]| net::run(Command::new("ip").args(["netns", "exec", &ns, "tc"]).args(args));
    let delay = humantime::format_duration(DELAY).to_string();
    let netem = match tc(&["qdisc", "add", "dev", net::TARGET_IF, "root", "netem", "delay", &delay, "limit", "100000"])
    {
        Ok(_) => {
            return Latency::Netem(tc(&["qdisc", "show", "dev", net::TARGET_IF]).unwrap_or_default().trim().into());
        }
        Err(e) => e,
    };
    match DelayLine::start(spec, DELAY) {
        Ok(line) => Latency::Line(line),
        Err(e) => Latency::None(format!("no netem ({netem}), and the delay line failed: {e}")),
    }
}

/// The first open port of the lab: where the round trip is measured.
fn rtt_probe(truth: &Truth) -> anyhow::Result<SocketAddrV4> {
    let host = truth.of_kind(HostKind::Live).find(|h| !h.open.is_empty()).context("the lab has no open port")?;
    Ok(SocketAddrV4::new(host.addr, *host.open.first().expect("not empty")))
}

/// The delay line's counters after all scans: a packet it dropped or could
/// not write back was an answer lost on the delayed path.
fn line_figure(stats: vantage_tests::lab::DelayStats) -> Figure {
    Figure {
        name: "scaling: delay line".into(),
        value: format!(
            "{} packets ({} bytes) forwarded, {} dropped (queue full), {} not written back, at most {} held, \
             latest {:.2} ms after its due time",
            stats.forwarded,
            stats.bytes,
            stats.dropped,
            stats.send_errors,
            stats.max_queued,
            stats.max_late_us as f64 / 1000.0
        ),
        failed: stats.dropped > 0 || stats.send_errors > 0,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn filtered(truth: &Truth) -> usize {
    truth.of_kind(HostKind::Live).map(|h| h.filtered.len()).sum()
}

/// Starts a fleet of `agents` agents and runs the scan once.
fn scan(spec: &LabSpec, truth: &Truth, run: u32, agents: u32) -> anyhow::Result<Row> {
    let fleet = Fleet::start(&FleetSpec::in_lab(
        spec,
        &truth.network,
        CONTROL_PORT,
        agents,
        |_| REGION.into(),
        vec!["--shard-probes".into(), SHARD_PROBES.to_string()],
    ));
    let rate = RATE.to_string();
    let mut cmd = fleet.cli();
    cmd.args(["scan", "--mode", "connect", "--targets", &truth.targets(), "--ports", &truth.ports.to_string()]);
    cmd.args(["--rate", &rate, "--timeout", TIMEOUT, "--no-detect", "--banner-timeout", "0s", "--format", "json"]);
    let started = Instant::now();
    let out = run_limited(&mut cmd, SCAN_LIMIT);
    let wall = started.elapsed();
    fleet.stop();
    anyhow::ensure!(out.status.success(), "vantage scan failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).context("vantage printed no UTF-8")?;
    let doc: Value = serde_json::from_str(&text).context("vantage printed no JSON")?;
    let reported = parse::vantage_json(&text)?;
    let reporting: BTreeSet<&str> = doc["observations"]
        .as_array()
        .map(|o| o.iter().filter(|o| o["state"] == "open").filter_map(|o| o["agent"].as_str()).collect())
        .unwrap_or_default();
    let s = &doc["scan"];
    let time = |key: &str| s[key].as_str().and_then(|t| humantime::parse_rfc3339(t).ok());
    let json_secs = match (time("started_at"), time("finished_at")) {
        (Some(a), Some(b)) => b.duration_since(a).ok().map(|d| d.as_secs()),
        _ => None,
    };
    Ok(Row { run, agents, wall, json_secs, reporting: reporting.len(), problem: check(truth, s, &reported) })
}

/// What is wrong with a scan's results against the truth, if anything.
fn check(truth: &Truth, s: &Value, reported: &parse::OpenSet) -> Option<String> {
    let score = truth.score(reported);
    let mut problems = Vec::new();
    if !score.is_exact() {
        problems.push(format!("{} missed, {} false open", score.missed.len(), score.false_open.len()));
    }
    let want = [
        ("probes_done", truth.probes()),
        ("open", truth.expected_open().len() as u64),
        ("filtered", filtered(truth) as u64),
        ("closed", truth.probes() - truth.expected_open().len() as u64 - filtered(truth) as u64),
    ];
    for (key, n) in want {
        if s[key].as_u64() != Some(n) {
            problems.push(format!("{key} {} (truth {n})", s[key]));
        }
    }
    if s["finished"] != Value::Bool(true) {
        problems.push("not finished".into());
    }
    (!problems.is_empty()).then(|| problems.join(", "))
}

/// The wall of the 1-agent scan of the same run.
fn base(row: &Row, rows: &[Row]) -> Option<Duration> {
    rows.iter().find(|r| r.run == row.run && r.agents == 1 && r.problem.is_none()).map(|r| r.wall)
}

fn speedup(row: &Row, rows: &[Row]) -> Option<f64> {
    (row.problem.is_none()).then_some(())?;
    Some(base(row, rows)?.as_secs_f64() / row.wall.as_secs_f64())
}

fn figure(row: &Row, rows: &[Row]) -> Figure {
    let name = format!("scaling, run {}: {} agent{}", row.run, row.agents, if row.agents == 1 { "" } else { "s" });
    if let Some(problem) = &row.problem {
        return Figure { name, value: format!("FAILED: {problem}"), failed: true };
    }
    let up = speedup(row, rows);
    let short = row.agents == 4 && up.is_none_or(|x| x < TARGET);
    let json = row.json_secs.map(|s| format!(" (JSON started..finished {s} s)")).unwrap_or_default();
    let value = format!(
        "{:.2} s{json}, {} vs 1 agent; exact against the truth; open ports reported by {} agent(s){}",
        row.wall.as_secs_f64(),
        up.map(|x| format!("{x:.2}x")).unwrap_or_else(|| "-".into()),
        row.reporting,
        if short { format!("; under the target ({TARGET}x)") } else { String::new() }
    );
    Figure { name, value, failed: short }
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(xs[n / 2]),
        _ => Some((xs[n / 2 - 1] + xs[n / 2]) / 2.0),
    }
}

fn summary(rows: &[Row]) -> Vec<Figure> {
    AGENTS
        .iter()
        .map(|&agents| {
            let mine: Vec<&Row> = rows.iter().filter(|r| r.agents == agents && r.problem.is_none()).collect();
            let walls = median(mine.iter().map(|r| r.wall.as_secs_f64()).collect());
            let ups = median(mine.iter().filter_map(|r| speedup(r, rows)).collect());
            Figure {
                name: format!("scaling: {agents} agent(s), median of {} run(s)", mine.len()),
                value: match (walls, ups) {
                    (Some(w), Some(u)) => format!("{w:.2} s, {u:.2}x vs 1 agent"),
                    _ => "no good run".into(),
                },
                failed: walls.is_none(),
            }
        })
        .collect()
}

fn print_table(rows: &[Row]) {
    println!("{:<4} {:<7} {:>9} {:>10} {:>9}  results", "run", "agents", "wall s", "JSON s", "speed-up");
    for r in rows {
        println!(
            "{:<4} {:<7} {:>9.2} {:>10} {:>9}  {}",
            r.run,
            r.agents,
            r.wall.as_secs_f64(),
            r.json_secs.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
            speedup(r, rows).map(|x| format!("{x:.2}x")).unwrap_or_else(|| "-".into()),
            r.problem.as_deref().unwrap_or("exact")
        );
    }
}
