//! `--services`: service and version detection, Vantage against `nmap -sV`,
//! on the service lab's real Debian daemons.
//!
//! Port scanning speed says little about detection: what costs time there
//! is the conversation with each open port, and what matters is whether the
//! names and versions are right. So the lab is brought up once (every
//! daemon listening on its standard and odd port, TCP and UDP), and every
//! tool run starts from that same state: Vantage's built-in detection,
//! Vantage with nmap's probe file, and `nmap -sV`, each on all TCP ports of
//! the lab; then Vantage's UDP mode against `nmap -sU -sV` on the UDP ports.
//! Each run is measured like the port scans (`measure`: wall, CPU, peak RSS).
//!
//! The findings of each tool's first good run are then set side by side per
//! port ([`agree`](crate::agree)), next to the Debian package behind the
//! port, so a reader sees not only where the two disagree but who is right.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use clap::ValueEnum;
use serde::Serialize;
use vantage_tests::lab::services::{self, LabService, Proto, ServiceLab, ServicesReport};

use crate::agree::{self, ProductVerdict, Upstream, VersionVerdict};
use crate::bench::failure;
use crate::measure::measure;
use crate::parse::{self, Findings, ServiceFinding};
use crate::report;

/// The nmap probe file of Debian's nmap package.
pub const NMAP_PROBES: &str = "/usr/share/nmap/nmap-service-probes";

/// A detection run, as named on the command line and in the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize)]
pub enum SvcTool {
    /// `vantage scan --mode connect` on the TCP ports: built-in detection.
    #[value(name = "vantage")]
    #[serde(rename = "vantage")]
    Vantage,
    /// The same with `--service-probes <nmap-service-probes>`.
    #[value(name = "vantage+nmap-probes")]
    #[serde(rename = "vantage+nmap-probes")]
    VantageNmapProbes,
    /// `nmap -sV` on the TCP ports.
    #[value(name = "nmap-sV")]
    #[serde(rename = "nmap-sV")]
    NmapSv,
    /// `vantage scan --mode udp` on the UDP ports.
    #[value(name = "vantage-udp")]
    #[serde(rename = "vantage-udp")]
    VantageUdp,
    /// `nmap -sU -sV` on the UDP ports.
    #[value(name = "nmap-sU-sV")]
    #[serde(rename = "nmap-sU-sV")]
    NmapUdpSv,
}

impl SvcTool {
    pub fn name(self) -> &'static str {
        match self {
            SvcTool::Vantage => "vantage",
            SvcTool::VantageNmapProbes => "vantage+nmap-probes",
            SvcTool::NmapSv => "nmap-sV",
            SvcTool::VantageUdp => "vantage-udp",
            SvcTool::NmapUdpSv => "nmap-sU-sV",
        }
    }

    pub fn proto(self) -> Proto {
        match self {
            SvcTool::VantageUdp | SvcTool::NmapUdpSv => Proto::Udp,
            _ => Proto::Tcp,
        }
    }

    fn is_nmap(self) -> bool {
        matches!(self, SvcTool::NmapSv | SvcTool::NmapUdpSv)
    }

    /// The nmap run this one is compared with.
    fn baseline(self) -> SvcTool {
        match self.proto() {
            Proto::Tcp => SvcTool::NmapSv,
            Proto::Udp => SvcTool::NmapUdpSv,
        }
    }
}

/// What `--services` runs, from the command line.
#[derive(Debug, Clone)]
pub struct ServicesConfig {
    pub tools: Vec<SvcTool>,
    pub runs: u32,
    /// The service lab's name (`vl-<lab>-scan`, `vl-<lab>-t`).
    pub lab: String,
    /// Each TCP run is killed after this long.
    pub limit: Duration,
    /// Each UDP run is killed after this long (`nmap -sU -sV` is slow).
    pub udp_limit: Duration,
    /// The probe file of `vantage+nmap-probes`.
    pub nmap_probes: PathBuf,
}

/// One tool run.
#[derive(Debug, Clone, Serialize)]
pub struct TimingRow {
    pub tool: SvcTool,
    pub proto: Proto,
    pub run: u32,
    pub ports: usize,
    pub wall_s: f64,
    pub cpu_s: f64,
    pub max_rss_mib: f64,
    /// Killed at the limit (its wall time is then a lower bound).
    pub killed: bool,
    pub error: Option<String>,
    /// Ports the run reported open, of `ports`.
    pub open: Option<usize>,
}

/// Every run of one tool, summed up.
#[derive(Debug, Clone, Serialize)]
pub struct ToolSummary {
    pub tool: SvcTool,
    pub proto: Proto,
    pub ports: usize,
    /// Ports its first good run reported open.
    pub open: Option<usize>,
    pub runs: usize,
    /// Runs that finished or were killed at the limit (failed runs are left out).
    pub walls_s: Vec<f64>,
    pub wall_median_s: Option<f64>,
    pub cpu_median_s: Option<f64>,
    pub max_rss_mib: f64,
    pub killed: usize,
    pub failed: usize,
    /// The nmap baseline's median wall over this tool's.
    pub speedup: Option<f64>,
    /// The baseline was killed at least once, so the speedup is at least this.
    pub speedup_lower_bound: bool,
}

/// One lab port, as both sides saw it.
#[derive(Debug, Clone, Serialize)]
pub struct AgreementRow {
    pub proto: Proto,
    pub port: u16,
    pub daemon: String,
    pub odd: bool,
    pub package: String,
    /// The package's installed (Debian) version.
    pub dpkg_version: String,
    /// The lab's own name of the service (nmap's vocabulary, `ssl/` when in TLS).
    pub expected_service: String,
    /// `None`: the tool did not report the port.
    pub vantage: Option<ServiceFinding>,
    pub nmap: Option<ServiceFinding>,
    pub service_agrees: bool,
    pub product: ProductVerdict,
    pub version: VersionVerdict,
    pub upstream: Upstream,
}

/// Vantage's runs set against nmap's, port by port.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub name: String,
    pub vantage: Vec<SvcTool>,
    pub nmap: Vec<SvcTool>,
    pub rows: Vec<AgreementRow>,
    pub counts: Counts,
}

/// The verdicts of a comparison, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub ports: usize,
    pub service_agrees: usize,
    pub product_agrees: usize,
    pub product_differs: usize,
    pub product_vantage_only: usize,
    pub product_nmap_only: usize,
    pub version_same: usize,
    pub version_more_specific: usize,
    pub version_less_specific: usize,
    pub version_differs: usize,
    /// Ports where Vantage's version is the package's upstream version.
    pub upstream_vantage: usize,
    pub upstream_nmap: usize,
}

impl Counts {
    fn of(rows: &[AgreementRow]) -> Counts {
        let mut c = Counts { ports: rows.len(), ..Counts::default() };
        for r in rows {
            c.service_agrees += usize::from(r.service_agrees);
            *match r.product {
                ProductVerdict::Agrees => &mut c.product_agrees,
                ProductVerdict::Differs => &mut c.product_differs,
                ProductVerdict::VantageOnly => &mut c.product_vantage_only,
                ProductVerdict::NmapOnly => &mut c.product_nmap_only,
            } += 1;
            *match r.version {
                VersionVerdict::Same => &mut c.version_same,
                VersionVerdict::MoreSpecific => &mut c.version_more_specific,
                VersionVerdict::LessSpecific => &mut c.version_less_specific,
                VersionVerdict::Differs => &mut c.version_differs,
            } += 1;
            c.upstream_vantage += usize::from(matches!(r.upstream, Upstream::Both | Upstream::Vantage));
            c.upstream_nmap += usize::from(matches!(r.upstream, Upstream::Both | Upstream::Nmap));
        }
        c
    }
}

/// A port whose findings changed from one run of a tool to another.
#[derive(Debug, Clone, Serialize)]
pub struct Unstable {
    pub tool: SvcTool,
    pub run: u32,
    pub proto: Proto,
    pub port: u16,
    pub first: Option<ServiceFinding>,
    pub this: Option<ServiceFinding>,
}

/// Everything `--services` measured: what `--json` writes.
#[derive(Debug, Clone, Serialize)]
pub struct ServicesResult {
    pub lab: ServicesReport,
    pub runs: Vec<TimingRow>,
    pub summary: Vec<ToolSummary>,
    /// nmap's TCP and UDP median walls over Vantage's built-in ones.
    pub whole_lab_speedup: Option<f64>,
    pub comparisons: Vec<Comparison>,
    pub unstable: Vec<Unstable>,
    /// Lab ports that no longer answered after the last run.
    pub silent_after: Vec<String>,
}

/// What a tool run needs.
struct Ctx<'a> {
    lab: &'a ServiceLab,
    vantage: &'a Path,
    scope: &'a Path,
    dir: &'a Path,
    config: &'a ServicesConfig,
}

impl Ctx<'_> {
    fn ports(&self, proto: Proto) -> Vec<u16> {
        self.lab.services().iter().filter(|s| s.proto == proto).map(|s| s.port).collect()
    }

    /// The command line of `tool`'s run `run`, and the file nmap writes its XML to.
    fn command(&self, tool: SvcTool, run: u32) -> (Command, Option<PathBuf>) {
        let ports: Vec<String> = self.ports(tool.proto()).iter().map(u16::to_string).collect();
        let ports = ports.join(",");
        let target = self.lab.addr().to_string();
        if tool.is_nmap() {
            let xml = self.dir.join(format!("{}-{run}.xml", tool.name()));
            let mut cmd = self.lab.scanner_command("nmap");
            if tool.proto() == Proto::Udp {
                cmd.arg("-sU");
            }
            cmd.args(["-sV", "-Pn", "-n", "-p", &ports, &target, "-oX"]).arg(&xml);
            return (cmd, Some(xml));
        }
        let mut cmd = self.lab.scanner_command(self.vantage);
        let data = self.dir.join(format!("store-{}-{run}", tool.name()));
        cmd.arg("--data-dir").arg(data).arg("--scope").arg(self.scope);
        if tool == SvcTool::VantageNmapProbes {
            cmd.arg("--service-probes").arg(&self.config.nmap_probes);
        }
        let mode = if tool.proto() == Proto::Udp { "udp" } else { "connect" };
        cmd.args(["scan", "--mode", mode, "--targets", &target, "--ports", &ports, "--format", "json"]);
        (cmd, None)
    }

    fn limit(&self, tool: SvcTool) -> Duration {
        match tool.proto() {
            Proto::Tcp => self.config.limit,
            Proto::Udp => self.config.udp_limit,
        }
    }
}

/// Runs the comparison: lab up, every tool `runs` times, lab down (also on error).
pub fn run(config: &ServicesConfig) -> anyhow::Result<ServicesResult> {
    vantage_tests::lab::check().map_err(|why| anyhow::anyhow!("the service lab cannot run: {why}"))?;
    services::check().map_err(|why| anyhow::anyhow!("the service lab cannot run: {why}"))?;
    let uses = |f: fn(SvcTool) -> bool| config.tools.iter().any(|t| f(*t));
    if uses(|t| t == SvcTool::VantageNmapProbes) {
        anyhow::ensure!(config.nmap_probes.exists(), "{} is missing: install nmap", config.nmap_probes.display());
    }
    // Builds the release binaries if needed (the benchmark is run with --release).
    let vantage = if uses(|t| !t.is_nmap()) { vantage_tests::bins::vantage() } else { PathBuf::from("vantage") };
    eprintln!("== services: bringing up service lab {}", config.lab);
    let started = std::time::Instant::now();
    let lab = ServiceLab::up(&config.lab).with_context(|| format!("bringing up service lab {}", config.lab))?;
    eprintln!("== services: {} ports answering after {:.1} s", lab.services().len(), started.elapsed().as_secs_f64());
    let dir = tempfile::tempdir().context("creating a work directory")?;
    let scope = dir.path().join("scope.txt");
    std::fs::write(&scope, format!("{}\n", lab.addr())).context("writing the scope file")?;
    let ctx = Ctx { lab: &lab, vantage: &vantage, scope: &scope, dir: dir.path(), config };
    let mut timings = Vec::new();
    let mut findings: Vec<(SvcTool, u32, Findings)> = Vec::new();
    for run in 1..=config.runs {
        for tool in &config.tools {
            eprint!("services run {run}: {:<20} ", tool.name());
            let (row, found) = run_tool(&ctx, *tool, run);
            let note = row.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default();
            eprintln!("{:.2} s{note}", row.wall_s);
            timings.push(row);
            if let Some(found) = found {
                findings.push((*tool, run, found));
            }
        }
    }
    let silent_after = silent_ports(&lab)?;
    let summary = summarise(&timings, &config.tools);
    let result = ServicesResult {
        lab: lab.report(),
        whole_lab_speedup: whole_lab_speedup(&summary),
        summary,
        comparisons: comparisons(lab.services(), &findings, &config.tools),
        unstable: unstable(&findings),
        runs: timings,
        silent_after,
    };
    lab.down().context("tearing the service lab down")?;
    Ok(result)
}

fn run_tool(ctx: &Ctx<'_>, tool: SvcTool, run: u32) -> (TimingRow, Option<Findings>) {
    let limit = ctx.limit(tool);
    let (cmd, xml) = ctx.command(tool, run);
    let mut row = TimingRow {
        tool,
        proto: tool.proto(),
        run,
        ports: ctx.ports(tool.proto()).len(),
        wall_s: 0.0,
        cpu_s: 0.0,
        max_rss_mib: 0.0,
        killed: false,
        error: None,
        open: None,
    };
    let measured = match measure(cmd, limit) {
        Ok(m) => m,
        Err(e) => {
            row.error = Some(format!("cannot run: {e}"));
            return (row, None);
        }
    };
    row.wall_s = measured.wall.as_secs_f64();
    row.cpu_s = measured.cpu.as_secs_f64();
    row.max_rss_mib = measured.max_rss_kib as f64 / 1024.0;
    row.killed = measured.timed_out;
    if let Some(e) = failure(&measured, limit) {
        row.error = Some(e);
        return (row, None);
    }
    let parsed = match xml {
        Some(path) => std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))
            .and_then(|text| parse::nmap_services(&text).map_err(|e| e.to_string())),
        None => parse::vantage_services(&String::from_utf8_lossy(&measured.stdout)).map_err(|e| e.to_string()),
    };
    match parsed {
        Ok(found) => {
            row.open = Some(found.values().filter(|f| f.state == "open").count());
            (row, Some(found))
        }
        Err(e) => {
            row.error = Some(e);
            (row, None)
        }
    }
}

/// The lab's ports that do not answer now (a daemon that died during the runs).
fn silent_ports(lab: &ServiceLab) -> anyhow::Result<Vec<String>> {
    let silent = lab.in_scanner(|| {
        std::thread::scope(|scope| {
            let probes: Vec<_> = lab
                .services()
                .iter()
                .map(|s| scope.spawn(move || services::answers(s, Duration::from_secs(2)).err().map(|e| (s, e))))
                .collect();
            probes.into_iter().filter_map(|p| p.join().ok().flatten()).collect::<Vec<_>>()
        })
    })?;
    Ok(silent.into_iter().map(|(s, e)| format!("{}/{} ({}): {e}", s.proto, s.port, s.daemon)).collect())
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

fn summarise(rows: &[TimingRow], tools: &[SvcTool]) -> Vec<ToolSummary> {
    let mut out: Vec<ToolSummary> = tools
        .iter()
        .map(|&tool| {
            let runs: Vec<&TimingRow> = rows.iter().filter(|r| r.tool == tool).collect();
            // Killed runs count with their (lower-bound) wall time; failed ones not at all.
            let counted: Vec<&TimingRow> = runs.iter().copied().filter(|r| r.error.is_none() || r.killed).collect();
            let walls: Vec<f64> = counted.iter().map(|r| r.wall_s).collect();
            let cpus: Vec<f64> = counted.iter().map(|r| r.cpu_s).collect();
            ToolSummary {
                tool,
                proto: tool.proto(),
                ports: runs.first().map_or(0, |r| r.ports),
                open: runs.iter().find_map(|r| r.open),
                runs: runs.len(),
                wall_median_s: median(&walls),
                walls_s: walls,
                cpu_median_s: median(&cpus),
                max_rss_mib: counted.iter().map(|r| r.max_rss_mib).fold(0.0, f64::max),
                killed: runs.iter().filter(|r| r.killed).count(),
                failed: runs.iter().filter(|r| r.error.is_some() && !r.killed).count(),
                speedup: None,
                speedup_lower_bound: false,
            }
        })
        .collect();
    let baselines: Vec<(SvcTool, Option<f64>, bool)> =
        out.iter().filter(|s| s.tool.is_nmap()).map(|s| (s.tool, s.wall_median_s, s.killed > 0)).collect();
    for s in &mut out {
        let own_killed = s.killed > 0;
        if let Some(&(_, Some(base), base_killed)) = baselines.iter().find(|b| b.0 == s.tool.baseline())
            && let Some(own) = s.wall_median_s.filter(|_| !own_killed)
        {
            s.speedup = Some(base / own.max(1e-9));
            s.speedup_lower_bound = base_killed;
        }
    }
    out
}

/// (nmap -sV + nmap -sU -sV) over (vantage + vantage-udp), on median walls.
fn whole_lab_speedup(summary: &[ToolSummary]) -> Option<f64> {
    let wall = |tool: SvcTool| summary.iter().find(|s| s.tool == tool && s.killed == 0)?.wall_median_s;
    let nmap = wall(SvcTool::NmapSv)? + wall(SvcTool::NmapUdpSv)?;
    let vantage = wall(SvcTool::Vantage)? + wall(SvcTool::VantageUdp)?;
    Some(nmap / vantage.max(1e-9))
}

/// The findings of a tool's first run that produced any.
fn first_findings(findings: &[(SvcTool, u32, Findings)], tool: SvcTool) -> Option<&Findings> {
    findings.iter().find(|(t, _, _)| *t == tool).map(|(_, _, f)| f)
}

/// Built-in detection (TCP and UDP) and detection with nmap's probes (TCP),
/// each against nmap's own runs on the same ports.
fn comparisons(lab: &[LabService], findings: &[(SvcTool, u32, Findings)], tools: &[SvcTool]) -> Vec<Comparison> {
    let sets = [
        ("built-in detection vs nmap -sV", vec![SvcTool::Vantage, SvcTool::VantageUdp]),
        ("with nmap's probe file vs nmap -sV", vec![SvcTool::VantageNmapProbes]),
    ];
    let mut out = Vec::new();
    for (name, vantage) in sets {
        let pairs: Vec<(SvcTool, SvcTool)> = vantage
            .iter()
            .map(|v| (*v, v.baseline()))
            .filter(|(v, n)| tools.contains(v) && tools.contains(n))
            .collect();
        if pairs.is_empty() {
            continue;
        }
        let mut rows = Vec::new();
        for &(v, n) in &pairs {
            let (vf, nf) = (first_findings(findings, v), first_findings(findings, n));
            for s in lab.iter().filter(|s| s.proto == v.proto()) {
                let key = (s.proto, s.socket_addr());
                rows.push(agreement(s, vf.and_then(|f| f.get(&key)), nf.and_then(|f| f.get(&key))));
            }
        }
        out.push(Comparison {
            name: name.to_string(),
            vantage: pairs.iter().map(|p| p.0).collect(),
            nmap: pairs.iter().map(|p| p.1).collect(),
            counts: Counts::of(&rows),
            rows,
        });
    }
    out
}

fn agreement(s: &LabService, vantage: Option<&ServiceFinding>, nmap: Option<&ServiceFinding>) -> AgreementRow {
    let none = ServiceFinding::default();
    let (v, n) = (vantage.unwrap_or(&none), nmap.unwrap_or(&none));
    AgreementRow {
        proto: s.proto,
        port: s.port,
        daemon: s.daemon.clone(),
        odd: s.odd,
        package: s.package.clone(),
        dpkg_version: s.version.clone(),
        expected_service: if s.tls { format!("ssl/{}", s.service) } else { s.service.clone() },
        vantage: vantage.cloned(),
        nmap: nmap.cloned(),
        service_agrees: v.display_service() == n.display_service(),
        product: agree::product(v.product.as_deref(), n.product.as_deref()),
        version: agree::version(v, n),
        upstream: Upstream::of(v, n, s.upstream_version()),
    }
}

/// Ports whose findings in a later run differ from the tool's first good run.
fn unstable(findings: &[(SvcTool, u32, Findings)]) -> Vec<Unstable> {
    // The method and CPEs follow from the rest; the state and names are what matter.
    let key = |f: &ServiceFinding| (f.state.clone(), f.display_service(), f.product.clone(), f.version.clone());
    let mut out = Vec::new();
    for (tool, run, found) in findings {
        let Some(first) = first_findings(findings, *tool) else { continue };
        for (proto, addr) in first.keys().chain(found.keys()).collect::<std::collections::BTreeSet<_>>() {
            let (a, b) = (first.get(&(*proto, *addr)), found.get(&(*proto, *addr)));
            if a.map(key) != b.map(key) {
                out.push(Unstable {
                    tool: *tool,
                    run: *run,
                    proto: *proto,
                    port: addr.port(),
                    first: a.cloned(),
                    this: b.cloned(),
                });
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The report

fn secs(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}"))
}

/// The timing table: one row per tool, medians over its runs.
pub fn timing_table(summary: &[ToolSummary], out: &mut impl Write) -> io::Result<()> {
    const HEADER: [&str; 10] = [
        "tool",
        "proto",
        "ports",
        "open",
        "runs",
        "wall s (median)",
        "wall s (each run)",
        "CPU s (median)",
        "max RSS MiB",
        "speedup",
    ];
    let body: Vec<Vec<String>> = summary
        .iter()
        .map(|s| {
            let walls: Vec<String> = s.walls_s.iter().map(|w| format!("{w:.2}")).collect();
            let mut each = walls.join(" ");
            if s.killed > 0 {
                let _ = write!(each, " ({} killed)", s.killed);
            }
            if s.failed > 0 {
                let _ = write!(each, " ({} failed)", s.failed);
            }
            let speedup = match (s.tool.is_nmap(), s.speedup) {
                (true, _) => "(baseline)".to_string(),
                (false, Some(x)) => format!("{}{x:.1}x", if s.speedup_lower_bound { ">=" } else { "" }),
                (false, None) => "-".to_string(),
            };
            vec![
                s.tool.name().to_string(),
                s.proto.to_string(),
                s.ports.to_string(),
                s.open.map_or("-".into(), |o| o.to_string()),
                s.runs.to_string(),
                secs(s.wall_median_s),
                each,
                secs(s.cpu_median_s),
                format!("{:.1}", s.max_rss_mib),
                speedup,
            ]
        })
        .collect();
    report::aligned(&HEADER, &body, out)
}

/// `version (info)`, or `-`.
fn version_cell(f: Option<&ServiceFinding>) -> String {
    let Some(f) = f else { return "-".into() };
    match (f.version.as_deref(), f.info.as_deref()) {
        (Some(v), Some(i)) => format!("{v} ({i})"),
        (Some(v), None) => v.to_string(),
        (None, Some(i)) => format!("- ({i})"),
        (None, None) => "-".into(),
    }
}

/// The service name; the state too when the port is not plainly open.
fn service_cell(f: Option<&ServiceFinding>) -> String {
    let Some(f) = f else { return "(not reported)".into() };
    let name = f.display_service().unwrap_or_else(|| "-".into());
    let guess = if f.method.as_deref().is_some_and(|m| m == "table" || m == "port") { "?" } else { "" };
    if f.state == "open" { format!("{name}{guess}") } else { format!("{name}{guess} [{}]", f.state) }
}

fn product_cell(f: Option<&ServiceFinding>) -> String {
    f.and_then(|f| f.product.clone()).unwrap_or_else(|| "-".into())
}

/// The agreement table of one comparison: a row per lab port.
pub fn agreement_table(rows: &[AgreementRow], out: &mut impl Write) -> io::Result<()> {
    const HEADER: [&str; 13] = [
        "port",
        "daemon",
        "odd",
        "vantage service",
        "vantage product",
        "vantage version (info)",
        "nmap service",
        "nmap product",
        "nmap version (info)",
        "product",
        "version",
        "dpkg version",
        "dpkg matches",
    ];
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                format!("{}/{}", r.proto, r.port),
                r.daemon.clone(),
                if r.odd { "odd".into() } else { String::new() },
                service_cell(r.vantage.as_ref()),
                product_cell(r.vantage.as_ref()),
                version_cell(r.vantage.as_ref()),
                service_cell(r.nmap.as_ref()),
                product_cell(r.nmap.as_ref()),
                version_cell(r.nmap.as_ref()),
                r.product.name().to_string(),
                r.version.name().to_string(),
                r.dpkg_version.clone(),
                r.upstream.name().to_string(),
            ]
        })
        .collect();
    report::aligned(&HEADER, &body, out)
}

/// The counts of a comparison, in a sentence or two.
pub fn counts_text(c: &Counts) -> String {
    format!(
        "{} ports: service names agree on {}; product agrees on {}, differs on {}, only Vantage names one on {}, \
         only nmap on {}; version same on {}, more specific on {}, less specific on {}, differs on {}; \
         the package's upstream version: Vantage on {}, nmap on {}",
        c.ports,
        c.service_agrees,
        c.product_agrees,
        c.product_differs,
        c.product_vantage_only,
        c.product_nmap_only,
        c.version_same,
        c.version_more_specific,
        c.version_less_specific,
        c.version_differs,
        c.upstream_vantage,
        c.upstream_nmap
    )
}

/// One line per port where the two do not say the same thing.
pub fn differences(rows: &[AgreementRow]) -> Vec<String> {
    let side = |f: Option<&ServiceFinding>| format!("{} / {} / {}", service_cell(f), product_cell(f), version_cell(f));
    rows.iter()
        .filter(|r| !r.service_agrees || r.product != ProductVerdict::Agrees || r.version != VersionVerdict::Same)
        .map(|r| {
            let mut what = Vec::new();
            if !r.service_agrees {
                what.push("service differs".to_string());
            }
            if r.product != ProductVerdict::Agrees {
                what.push(format!("product {}", r.product.name()));
            }
            if r.version != VersionVerdict::Same {
                what.push(format!("version {}", r.version.name()));
            }
            format!(
                "{}/{} {}{}: {}. Vantage: {}; nmap: {}; {} {}: {}",
                r.proto,
                r.port,
                r.daemon,
                if r.odd { " (odd port)" } else { "" },
                what.join(", "),
                side(r.vantage.as_ref()),
                side(r.nmap.as_ref()),
                r.package,
                r.dpkg_version,
                r.upstream.describe()
            )
        })
        .collect()
}

/// Prints the whole report.
pub fn print(result: &ServicesResult, out: &mut impl Write) -> io::Result<()> {
    let runs = result.summary.iter().map(|s| s.runs).max().unwrap_or(0);
    writeln!(
        out,
        "== Timing: service lab {} ({} ports), {runs} run(s) per tool",
        result.lab.name,
        result.lab.services.len()
    )?;
    timing_table(&result.summary, out)?;
    if let Some(x) = result.whole_lab_speedup {
        writeln!(out, "whole lab (TCP + UDP, median walls): Vantage {x:.1}x faster than nmap -sV / -sU -sV")?;
    }
    for c in &result.comparisons {
        let tools = |t: &[SvcTool]| t.iter().map(|t| t.name()).collect::<Vec<_>>().join(" + ");
        writeln!(
            out,
            "\n== Agreement: {} ({} against {}, first good run of each)",
            c.name,
            tools(&c.vantage),
            tools(&c.nmap)
        )?;
        agreement_table(&c.rows, out)?;
        writeln!(out, "{}", counts_text(&c.counts))?;
        let diffs = differences(&c.rows);
        writeln!(out, "{} differences:", diffs.len())?;
        for d in diffs {
            writeln!(out, "- {d}")?;
        }
    }
    writeln!(out)?;
    if result.unstable.is_empty() {
        writeln!(out, "every tool named the same services, products and versions in every run")?;
    }
    for u in &result.unstable {
        writeln!(
            out,
            "run {} of {} differs from its first: {}/{}: {} -> {}",
            u.run,
            u.tool.name(),
            u.proto,
            u.port,
            side_short(u.first.as_ref()),
            side_short(u.this.as_ref())
        )?;
    }
    if result.silent_after.is_empty() {
        writeln!(out, "after the last run every lab port still answered")?;
    } else {
        writeln!(out, "not answering after the last run: {}", result.silent_after.join("; "))?;
    }
    Ok(())
}

fn side_short(f: Option<&ServiceFinding>) -> String {
    format!("{} {} {}", service_cell(f), product_cell(f), version_cell(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab_service(proto: Proto, port: u16, daemon: &str, version: &str) -> LabService {
        LabService {
            addr: services::SERVICES_ADDR,
            proto,
            port,
            odd: false,
            listens: port,
            service: "mysql".into(),
            tls: false,
            daemon: daemon.into(),
            product: "MariaDB".into(),
            package: "mariadb-server".into(),
            version: version.into(),
        }
    }

    fn found(service: &str, product: Option<&str>, version: Option<&str>) -> ServiceFinding {
        ServiceFinding {
            state: "open".into(),
            service: Some(service.into()),
            product: product.map(String::from),
            version: version.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn mariadb_row_says_who_matches_the_package() {
        let s = lab_service(Proto::Tcp, 3306, "mariadb", "1:10.11.6-0+deb12u1");
        let v = found("mysql", Some("MariaDB"), Some("10.11.6"));
        let n = found("mysql", Some("MySQL"), Some("5.5.5-10.11.6-MariaDB-0+deb12u1"));
        let row = agreement(&s, Some(&v), Some(&n));
        assert!(row.service_agrees);
        assert_eq!((row.product, row.upstream), (ProductVerdict::Differs, Upstream::Vantage));
        let diffs = differences(std::slice::from_ref(&row));
        assert_eq!(diffs.len(), 1);
        assert!(diffs[0].starts_with("tcp/3306 mariadb: product differs"), "{}", diffs[0]);
        assert!(diffs[0].contains("1:10.11.6-0+deb12u1"), "{}", diffs[0]);
        let c = Counts::of(&[row]);
        assert_eq!((c.ports, c.product_differs, c.upstream_vantage, c.upstream_nmap), (1, 1, 1, 0));
    }

    #[test]
    fn unreported_ports_and_agreeing_rows() {
        let s = lab_service(Proto::Udp, 69, "tftpd", "5.2+20150808-1.4");
        let row =
            agreement(&s, None, Some(&ServiceFinding { state: "open|filtered".into(), ..found("tftp", None, None) }));
        assert!(!row.service_agrees);
        assert_eq!(
            (row.product, row.version, row.upstream),
            (ProductVerdict::Agrees, VersionVerdict::Same, Upstream::NoVersion)
        );
        let mut table = Vec::new();
        agreement_table(&[row], &mut table).unwrap();
        let text = String::from_utf8(table).unwrap();
        assert!(text.contains("(not reported)") && text.contains("tftp [open|filtered]"), "{text}");
        let same = agreement(&s, Some(&found("x", Some("A"), Some("1"))), Some(&found("x", Some("a b"), Some("1"))));
        assert!(differences(&[same]).is_empty());
    }

    fn timing(tool: SvcTool, run: u32, wall: f64, killed: bool) -> TimingRow {
        TimingRow {
            tool,
            proto: tool.proto(),
            run,
            ports: 2,
            wall_s: wall,
            cpu_s: wall / 2.0,
            max_rss_mib: wall,
            killed,
            error: killed.then(|| "killed after 10m".to_string()),
            open: None,
        }
    }

    #[test]
    fn speedups_use_medians_and_flag_killed_baselines() {
        let rows = [
            timing(SvcTool::Vantage, 1, 2.0, false),
            timing(SvcTool::Vantage, 2, 9.0, false),
            timing(SvcTool::Vantage, 3, 4.0, false),
            timing(SvcTool::NmapSv, 1, 40.0, false),
            timing(SvcTool::VantageUdp, 1, 5.0, false),
            timing(SvcTool::NmapUdpSv, 1, 600.0, true),
        ];
        let tools = [SvcTool::Vantage, SvcTool::NmapSv, SvcTool::VantageUdp, SvcTool::NmapUdpSv];
        let s = summarise(&rows, &tools);
        assert_eq!(s[0].wall_median_s, Some(4.0));
        assert_eq!((s[0].speedup, s[0].speedup_lower_bound), (Some(10.0), false));
        assert_eq!((s[2].speedup, s[2].speedup_lower_bound), (Some(120.0), true));
        assert_eq!((s[3].killed, s[3].failed), (1, 0));
        assert_eq!(whole_lab_speedup(&s), None, "no whole-lab figure from a killed run");
        let mut out = Vec::new();
        timing_table(&s, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(">=120.0x") && text.contains("10.0x") && text.contains("(1 killed)"), "{text}");
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn tool_names_match_the_command_line() {
        for tool in SvcTool::value_variants() {
            assert_eq!(SvcTool::from_str(tool.name(), false).ok(), Some(*tool));
            assert_eq!(serde_json::to_value(tool).unwrap(), tool.name());
        }
    }
}
