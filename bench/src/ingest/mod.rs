//! `--checks ingest`: observations per second a real coordinator stores
//! with many agents streaming at once, and its peak memory (issue #5: at
//! least 200,000 observations/s with 50 agents on this 2-core machine).
//!
//! Each run starts `vantage serve` (this build's binary, a data directory
//! and a scope file of its own, on a free loopback port), connects the
//! simulated agents ([`agent`]), waits until every one of them is
//! registered, and starts one scan of `--ingest-targets` x `--ingest-ports`.
//! The agents report every (address, port) as open; nothing is sent to
//! those addresses. The rate is the observations acknowledged divided by
//! the time from the first batch sent to the last acknowledgement received
//! (an acknowledgement leaves the coordinator only after its batch is on
//! disk). Then the coordinator's own peak RSS (`VmHWM`) is read, and its
//! results are read back: every (address, port) must be stored exactly once.
//!
//! * [`agent`]: one simulated agent.
//! * [`link`]: the one function that opens every client channel.

mod agent;
mod link;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::task::JoinSet;
use vantage_proto::v1;
use vantage_proto::v1::control_client::ControlClient;
use vantage_shared::convert::addr_from_bytes;
use vantage_shared::{PortSpec, ProbeOptions, TargetSet};

use crate::checks::Figure;
use crate::diffcheck::thousands;
use crate::measure::{Running, load_average, load_figure, proc_cpu, proc_rss_kib};
use agent::{SimAgent, Tallies};

/// The target of issue #5.
const TARGET_RATE: f64 = 200_000.0;
/// Synthetic observations name addresses of this benchmarking range only.
const SYNTHETIC_RANGE: &str = "198.18.0.0/15";
/// How long the coordinator may take to start, and to stop on SIGTERM.
const START_WAIT: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(30);
/// How often the check looks at the fleet while it waits for it.
const POLL: Duration = Duration::from_millis(50);

pub struct IngestConfig {
    pub agents: u32,
    /// Shards each agent runs at once.
    pub capacity: u32,
    pub targets: String,
    pub ports: String,
    /// The coordinator's `--shard-probes`.
    pub shard_probes: u64,
    pub runs: u32,
    /// A run is abandoned after this long.
    pub limit: Duration,
}

impl IngestConfig {
    /// The targets, which must lie inside [`SYNTHETIC_RANGE`].
    fn target_set(&self) -> anyhow::Result<TargetSet> {
        let targets = TargetSet::parse(&self.targets).context("--ingest-targets")?;
        let allowed = TargetSet::parse(SYNTHETIC_RANGE).expect("a valid range");
        if let Some(outside) = allowed.first_missing(&targets) {
            anyhow::bail!("--ingest-targets must lie inside {SYNTHETIC_RANGE} ({outside} does not)");
        }
        anyhow::ensure!(self.agents >= 1 && self.capacity >= 1, "--ingest-agents and --ingest-capacity must be >= 1");
        Ok(targets)
    }
}

/// What one run measured.
struct Outcome {
    observations: u64,
    window: Duration,
    batches: u64,
    batch_bytes: u64,
    shards: u64,
    scan_wall: Duration,
    stored: Stored,
    /// Of the coordinator: peak and current RSS (KiB) and CPU when the scan had finished.
    peak_rss_kib: u64,
    rss_kib: u64,
    cpu: Duration,
    /// Of this process (the simulated agents) over the run.
    agents_cpu: Duration,
    cancelled: u64,
}

/// The scan's results as read back from the coordinator.
#[derive(Default)]
struct Stored {
    results: u64,
    /// Results outside the scan, or not after the one before (a key seen twice).
    wrong: u64,
    /// The scan's own counter of open ports (the shards' reports).
    open_counted: u64,
    /// From the request to the last result.
    wall: Duration,
    /// The coordinator's peak RSS (KiB) once the results were read.
    peak_rss_kib: u64,
}

pub fn run(config: &IngestConfig, vantage: &Path) -> anyhow::Result<Vec<Figure>> {
    let targets = config.target_set()?;
    let ports = PortSpec::parse(&config.ports).context("--ingest-ports")?;
    let expected = targets.len() as u64 * u64::from(ports.len());
    let mut figures = vec![Figure {
        name: "ingest: workload".into(),
        value: format!(
            "{} agents (capacity {} each) report {} x ports {} = {} observations, all open; shards of {} probes",
            config.agents,
            config.capacity,
            config.targets,
            config.ports,
            thousands(expected),
            thousands(config.shard_probes)
        ),
        failed: false,
    }];
    let load_before = load_average();
    for r in 1..=config.runs {
        let name = format!("ingest, run {r}: {} agents", config.agents);
        figures.push(match one_run(config, vantage, &targets, &ports) {
            Ok(outcome) => figure(name, &outcome, expected),
            Err(e) => Figure { name, value: format!("FAILED: {e:#}"), failed: true },
        });
    }
    figures.push(load_figure("ingest", &load_before));
    Ok(figures)
}

fn figure(name: String, o: &Outcome, expected: u64) -> Figure {
    let rate = o.observations as f64 / o.window.as_secs_f64().max(1e-9);
    let s = &o.stored;
    let complete = o.observations == expected && s.results == expected && s.wrong == 0 && s.open_counted == expected;
    let check = if complete {
        format!("all {} stored exactly once", thousands(expected))
    } else {
        format!(
            "MISMATCH: {} acknowledged, {} results ({} wrong or repeated), {} counted open, {} expected",
            thousands(o.observations),
            thousands(s.results),
            thousands(s.wrong),
            thousands(s.open_counted),
            thousands(expected)
        )
    };
    Figure {
        name,
        value: format!(
            "{} observations/s: {} in {:.2} s (first batch to last ack; {} batches of {:.1} MB in all, {} shards, \
             scan {:.2} s); \
             {check}; coordinator peak RSS {:.1} MiB ({:.1} MiB at the end), {:.1} s CPU; agents {:.1} s CPU; \
             {} leases taken back; {} the target (>= 200,000/s); read back in {:.2} s, coordinator peak RSS \
             {:.1} MiB after",
            thousands(rate as u64),
            thousands(o.observations),
            o.window.as_secs_f64(),
            thousands(o.batches),
            o.batch_bytes as f64 / 1e6,
            o.shards,
            o.scan_wall.as_secs_f64(),
            o.peak_rss_kib as f64 / 1024.0,
            o.rss_kib as f64 / 1024.0,
            o.cpu.as_secs_f64(),
            o.agents_cpu.as_secs_f64(),
            o.cancelled,
            if rate >= TARGET_RATE { "within" } else { "OUTSIDE" },
            s.wall.as_secs_f64(),
            s.peak_rss_kib as f64 / 1024.0,
        ),
        failed: !complete,
    }
}

fn one_run(config: &IngestConfig, vantage: &Path, targets: &TargetSet, ports: &PortSpec) -> anyhow::Result<Outcome> {
    let dir = tempfile::Builder::new().prefix("vantage-ingest-bench.").tempdir()?;
    let scope = dir.path().join("scope.txt");
    std::fs::write(&scope, format!("{}\n", config.targets))?;
    let listen = format!("127.0.0.1:{}", free_port()?);
    let mut cmd = Command::new(vantage);
    cmd.arg("--data-dir").arg(dir.path().join("data")).arg("--scope").arg(&scope);
    cmd.args(["--insecure", "serve", "--listen", &listen, "--shard-probes", &config.shard_probes.to_string()]);
    // Started before this process grows: a child's ru_maxrss starts from its parent's.
    let coordinator = Running::start(cmd).context("starting vantage serve")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let cpu_before = own_cpu();
    let driven = runtime.block_on(async {
        tokio::time::timeout(config.limit, drive(config, &format!("http://{listen}"), &coordinator, targets, ports))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("not done within {:?}", config.limit)))
    });
    let agents_cpu = own_cpu().saturating_sub(cpu_before);
    drop(runtime);
    let stopped = coordinator.stop(STOP_GRACE)?;
    let mut outcome = driven.with_context(|| {
        format!("coordinator: {}", String::from_utf8_lossy(&stopped.stderr).lines().last().unwrap_or("no output"))
    })?;
    anyhow::ensure!(
        stopped.success(),
        "vantage serve did not stop cleanly on SIGTERM (exit {:?}): {}",
        stopped.code,
        String::from_utf8_lossy(&stopped.stderr).lines().last().unwrap_or("")
    );
    outcome.agents_cpu = agents_cpu;
    Ok(outcome)
}

/// Connects the agents, runs the scan to its end, reads the results back.
async fn drive(
    config: &IngestConfig,
    url: &str,
    coordinator: &Running,
    targets: &TargetSet,
    ports: &PortSpec,
) -> anyhow::Result<Outcome> {
    let mut control = ControlClient::new(wait_until_up(url, coordinator).await?);
    let tallies = Arc::new(Tallies::default());
    let mut agents = JoinSet::new();
    for i in 0..config.agents {
        let agent = SimAgent {
            url: url.to_string(),
            name: format!("sim-{i:03}"),
            region: "bench".into(),
            capacity: config.capacity,
        };
        agents.spawn(agent.run(tallies.clone()));
    }
    while (control.list_agents(v1::ListAgentsRequest {}).await?.into_inner().agents.len() as u32) < config.agents {
        if let Some(ended) = agents.try_join_next() {
            anyhow::bail!("a simulated agent ended before the scan: {:?}", ended?);
        }
        tokio::time::sleep(POLL).await;
    }
    let started = Instant::now();
    let scan = control.start_scan(scan_request(config)).await?.into_inner();
    let mut watch = control.watch_scan(v1::WatchScanRequest { scan_id: scan.scan_id }).await?.into_inner();
    let status = loop {
        tokio::select! {
            status = watch.message() => match status? {
                Some(s) if s.finished => break s,
                Some(_) => {}
                None => anyhow::bail!("the scan's status stream ended before the scan"),
            },
            Some(ended) = agents.join_next() => {
                let why = tallies.refused.get().cloned().unwrap_or_default();
                anyhow::bail!("a simulated agent ended during the scan: {:?} {why}", ended?);
            }
        }
    };
    let scan_wall = started.elapsed();
    let pid = coordinator.pid();
    let (peak_rss_kib, rss_kib) = proc_rss_kib(pid).context("reading the coordinator's memory")?;
    let cpu = proc_cpu(pid).unwrap_or_default();
    agents.abort_all();
    let read_started = Instant::now();
    let mut stored = read_back(&mut control, scan.scan_id, targets, ports).await?;
    stored.wall = read_started.elapsed();
    stored.peak_rss_kib = proc_rss_kib(pid).context("reading the coordinator's memory")?.0;
    stored.open_counted = status.open;
    Ok(Outcome {
        observations: tallies.acked.load(Ordering::Relaxed),
        window: tallies.window().context("no batch was acknowledged")?,
        batches: tallies.batches.load(Ordering::Relaxed),
        batch_bytes: tallies.batch_bytes.load(Ordering::Relaxed),
        shards: tallies.shards_done.load(Ordering::Relaxed),
        scan_wall,
        stored,
        peak_rss_kib,
        rss_kib,
        cpu,
        agents_cpu: Duration::ZERO,
        cancelled: tallies.cancelled.load(Ordering::Relaxed),
    })
}

fn scan_request(config: &IngestConfig) -> v1::StartScanRequest {
    let options = ProbeOptions { detect: false, ..ProbeOptions::default() };
    v1::StartScanRequest {
        targets: config.targets.clone(),
        ports: config.ports.clone(),
        options: Some((&options).into()),
        label: "ingest benchmark (synthetic)".into(),
        ..Default::default()
    }
}

/// A channel to the coordinator once it answers, while it is still running.
async fn wait_until_up(url: &str, coordinator: &Running) -> anyhow::Result<tonic::transport::Channel> {
    let deadline = Instant::now() + START_WAIT;
    loop {
        match link::channel(url).await {
            Ok(channel) => return Ok(channel),
            Err(e) if Instant::now() > deadline => return Err(e).context("the coordinator never answered"),
            Err(_) if coordinator.exited() => anyhow::bail!("vantage serve exited at start"),
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// Reads the scan's results: each must be inside the scan, and come after
/// the one before in (address, port) order (the store's order), so none
/// is there twice.
async fn read_back(
    control: &mut ControlClient<tonic::transport::Channel>,
    scan_id: u64,
    targets: &TargetSet,
    ports: &PortSpec,
) -> anyhow::Result<Stored> {
    let req = v1::ListResultsRequest { scan_id, include_closed: true };
    let mut results = control.list_results(req).await?.into_inner();
    let mut stored = Stored::default();
    let mut last = None;
    while let Some(o) = results.message().await? {
        stored.results += 1;
        let addr = addr_from_bytes(&o.addr).ok();
        let port = u16::try_from(o.port).ok();
        let key = addr.zip(port);
        let inside = addr.is_some_and(|a| targets.contains(a)) && port.is_some_and(|p| ports.contains(p));
        let open = o.state == v1::PortState::Open as i32 && !o.agent.is_empty();
        if !inside || !open || key <= last {
            stored.wrong += 1;
        }
        last = key;
    }
    Ok(stored)
}

/// A loopback port that was free a moment ago.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// User plus system CPU of this process so far.
fn own_cpu() -> Duration {
    proc_cpu(std::process::id()).unwrap_or_default()
}
