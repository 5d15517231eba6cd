//! `vantage scan --targets ... --ports ...`: plan, run, wait, print.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use vantage_proto::v1;
use vantage_shared::{Period, PortSpec, ProbeOptions, ScanMode, TargetSpec};

use super::{results, watch};
use crate::cli::connect::{Connection, EMBEDDED_REGION, Needs};
use crate::cli::output::ResultsFormat;
use crate::cli::{GlobalArgs, UsageError, status_error};

#[derive(Debug, Args)]
pub struct StartArgs {
    /// What to scan: addresses, CIDRs, ranges, `!` exclusions, comma- or
    /// space-separated (e.g. "198.18.0.0/24,!198.18.0.1"). Must lie inside --scope.
    #[arg(long, short = 't', required_unless_present = "targets_file", conflicts_with = "targets_file")]
    pub targets: Option<String>,

    /// Read targets from a file, one entry per line, `#` comments.
    #[arg(long, value_name = "FILE")]
    pub targets_file: Option<PathBuf>,

    /// Addresses to leave out of this scan.
    #[arg(long, default_value = "")]
    pub exclude: String,

    /// Ports: "22,80,443", "1-1024", "top-100", "all", or a mix
    /// [default: top-100; with --mode udp, the ports Vantage has UDP probes for: 53,123,161,11211].
    #[arg(long, short = 'p')]
    pub ports: Option<String>,

    /// How to probe: `connect` (full handshakes, no privileges), `syn`
    /// (half-open raw packets, needs CAP_NET_RAW; falls back to connect
    /// without it), `auto` (syn when allowed), or `udp` (a datagram in each
    /// port's own protocol: DNS 53, NTP 123, SNMP 161, memcached 11211;
    /// silence counts as filtered).
    #[arg(long, value_enum, default_value_t = Mode::Connect)]
    pub mode: Mode,

    /// Probes per second at most, per agent (0: no cap).
    #[arg(long, default_value_t = 0)]
    pub rate: u32,

    /// Probes per second to any one host at most (0: no cap).
    #[arg(long, default_value_t = 0)]
    pub host_rate: u32,

    /// Longest wait for an answer before a port counts as silent (e.g. 500ms,
    /// 2s); shorter when measured round trips allow.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub timeout: Duration,

    /// Extra attempts for silent ports before they are reported filtered.
    #[arg(long, default_value_t = 1)]
    pub retries: u32,

    /// Probes in flight per shard at most.
    #[arg(long, default_value_t = ProbeOptions::default().max_in_flight)]
    pub max_in_flight: u32,

    /// How long to wait for an open port to speak first (0s to skip banners).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1500ms")]
    pub banner_timeout: Duration,

    /// Bytes of banner to keep at most.
    #[arg(long, default_value_t = 1024)]
    pub banner_bytes: u32,

    /// Skip service and version detection: report open ports and banners only.
    #[arg(long)]
    pub no_detect: bool,

    /// Longest conversation with one open port while identifying its service.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "6s")]
    pub detect_timeout: Duration,

    /// Bytes read from one open port at most while identifying its service.
    #[arg(long, default_value_t = ProbeOptions::default().detect_max_bytes)]
    pub detect_bytes: u32,

    /// How many probes of an nmap-service-probes file to try: 0 (likeliest
    /// only) to 9 (all). Needs `--service-probes` (embedded) or the agents'
    /// own `--service-probes`.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub version_intensity: u32,

    /// The review period (month) the scan belongs to, e.g. 2026-11
    /// [default: the current month, UTC]. A period's baseline is made of its
    /// newest finished TCP and UDP scans.
    #[arg(long)]
    pub period: Option<String>,

    /// Scan from each of these regions (comma-separated, e.g. eu-west,us-east,ap-south):
    /// every address and port is probed once from every region, by an agent
    /// started with that `--region`, so `vantage reachability` can compare
    /// them. Without it, each is probed once, by whichever agent is free.
    #[arg(long, value_delimiter = ',', value_name = "REGION,...")]
    pub regions: Vec<String>,

    /// A label to recognise the scan by in `vantage scan list`.
    #[arg(long, default_value = "")]
    pub label: String,

    /// Allow scans of more than 16,777,216 addresses (a /8).
    #[arg(long = "i-know-this-is-huge")]
    pub allow_huge: bool,

    /// Print the scan id and return at once instead of waiting.
    #[arg(long)]
    pub detach: bool,

    /// Output format of the results.
    #[arg(long, value_enum, default_value_t = ResultsFormat::Table)]
    pub format: ResultsFormat,
}

/// `--mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Connect,
    Syn,
    Auto,
    Udp,
}

impl From<Mode> for ScanMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Connect => ScanMode::Connect,
            Mode::Syn => ScanMode::Syn,
            Mode::Auto => ScanMode::Auto,
            Mode::Udp => ScanMode::Udp,
        }
    }
}

impl StartArgs {
    /// Checks the request locally, so that typos fail before anything starts.
    fn request(&self) -> Result<v1::StartScanRequest, UsageError> {
        let targets = match (&self.targets, &self.targets_file) {
            (Some(t), _) => {
                TargetSpec::parse(t).map_err(|e| UsageError(format!("targets: {e}")))?;
                t.clone()
            }
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| UsageError(format!("targets file {}: {e}", path.display())))?;
                TargetSpec::parse_lines(&text)
                    .map_err(|e| UsageError(format!("targets file {}: {e}", path.display())))?;
                text
            }
            (None, None) => return Err(UsageError("give --targets or --targets-file".into())),
        };
        TargetSpec::parse(&self.exclude).map_err(|e| UsageError(format!("exclude: {e}")))?;
        let ports = self.ports.clone().unwrap_or_else(|| match self.mode {
            // The UDP ports with a probe of their own (DNS, NTP, SNMP, memcached).
            Mode::Udp => vantage_detect::protocols::udp::PORTS.map(|p| p.to_string()).join(","),
            _ => "top-100".to_string(),
        });
        PortSpec::parse(&ports).map_err(|e| UsageError(e.to_string()))?;
        let options = ProbeOptions {
            connect_timeout: self.timeout,
            max_in_flight: self.max_in_flight,
            banner_timeout: self.banner_timeout,
            banner_max_bytes: self.banner_bytes,
            retries: self.retries,
            mode: self.mode.into(),
            rate: self.rate,
            host_rate: self.host_rate,
            detect: !self.no_detect,
            detect_timeout: self.detect_timeout,
            version_intensity: self.version_intensity,
            detect_max_bytes: self.detect_bytes,
        };
        let period = match &self.period {
            Some(p) => p.parse::<Period>().map_err(|e| UsageError(e.to_string()))?.to_string(),
            None => String::new(),
        };
        Ok(v1::StartScanRequest {
            verification: false,
            period,
            targets,
            exclude: self.exclude.clone(),
            ports,
            options: Some((&options).into()),
            allow_huge: self.allow_huge,
            label: self.label.clone(),
            regions: self.regions.clone(),
        })
    }
}

pub async fn run(global: &GlobalArgs, args: StartArgs) -> anyhow::Result<()> {
    let request = args.request()?;
    if args.detach && global.coordinator.is_none() {
        return Err(UsageError("--detach needs --coordinator: an embedded scan ends with this command".into()).into());
    }
    if global.coordinator.is_none() && request.regions.iter().any(|r| r != EMBEDDED_REGION) {
        return Err(UsageError(format!(
            "--regions needs --coordinator and agents in those regions: the embedded agent scans from region `{EMBEDDED_REGION}` only"
        ))
        .into());
    }
    let mut conn = Connection::open(global, Needs::Agent).await?;
    if !conn.is_embedded()
        && let Err(e) = warn_missing_regions(&mut conn, &request.regions).await
    {
        conn.close().await;
        return Err(e);
    }
    let result = start_and_wait(&mut conn, request, &args).await;
    conn.close().await;
    result
}

/// Says which requested regions have no agent connected: their share of the
/// scan waits until one connects.
async fn warn_missing_regions(conn: &mut Connection, regions: &[String]) -> anyhow::Result<()> {
    if regions.is_empty() {
        return Ok(());
    }
    let agents = conn.control.list_agents(v1::ListAgentsRequest {}).await.map_err(status_error)?.into_inner().agents;
    for region in regions.iter().filter(|r| !agents.iter().any(|a| &a.region == *r)) {
        eprintln!("warning: no agent of region `{region}` is connected; its shards wait until one connects");
    }
    Ok(())
}

async fn start_and_wait(conn: &mut Connection, request: v1::StartScanRequest, args: &StartArgs) -> anyhow::Result<()> {
    if args.detach {
        let started = conn.control.start_scan(request).await.map_err(status_error)?.into_inner();
        println!("{}", started.scan_id);
        eprintln!("scan {} started: follow it with `vantage scan watch {}`", started.scan_id, started.scan_id);
        return Ok(());
    }
    let status = start_and_follow(conn, request).await?;
    results::print(conn, &status, false, args.format).await
}

/// The request `vantage scan --targets T [--ports P] --period PERIOD` makes,
/// with every other flag at its default (what `vantage review --targets` runs).
pub fn default_request(targets: &str, ports: Option<&str>, period: Period) -> Result<v1::StartScanRequest, UsageError> {
    #[derive(clap::Parser)]
    struct Defaults {
        #[command(flatten)]
        args: StartArgs,
    }
    let period = period.to_string();
    let mut argv = vec!["scan", "--targets", targets, "--period", &period];
    argv.extend(ports.iter().flat_map(|p| ["--ports", p]));
    <Defaults as clap::Parser>::try_parse_from(argv).map_err(|e| UsageError(e.to_string()))?.args.request()
}

/// Starts a scan and follows it to its end: progress, then its summary, on stderr.
pub async fn start_and_follow(conn: &mut Connection, request: v1::StartScanRequest) -> anyhow::Result<v1::ScanStatus> {
    let started = conn.control.start_scan(request).await.map_err(status_error)?.into_inner();
    eprintln!("scan {}: {} probes in {} shards", started.scan_id, started.probes, started.shards);
    let status = watch::follow(conn, started.scan_id).await?;
    watch::summary(&status);
    if status.unreachable > 0 && status.unreachable == status.probes_done {
        anyhow::bail!(
            "no route to any target: all {} probes failed with \"network unreachable\"; is this machine on the targets' network?",
            status.probes_done
        );
    }
    if status.unreachable > 0 {
        eprintln!(
            "warning: {} probes found no route to their target; those ports count as filtered",
            status.unreachable
        );
    }
    Ok(status)
}
