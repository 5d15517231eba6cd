//! `--checks report`: the monthly report of a period with 10,000 findings
//! (issue #7: renders in under 2 s, the HTML stays under 5 MB).
//!
//! The findings are synthetic but shaped like a year of reviews: spread over
//! 12 periods, every severity, some remediated, some back again, some
//! acknowledged, with sentences, CPEs, CVEs and TLS facts of a real size.
//! Timed in this process: building the model ([`report::build`]) and
//! rendering the HTML, then Markdown, JSON and CSV for comparison. What the
//! CLI adds (fetching over gRPC) is not in the figure.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

use vantage_coordinator::report::{self, BaselineFacts, DiffChange, Inputs};
use vantage_coordinator::review::diff::{Change, ChangeKind};
use vantage_coordinator::review::findings::{Detail, Event, EventKind, Finding, FindingKey, Kind, Severity, Status};
use vantage_coordinator::review::policy::Costs;
use vantage_shared::service::TlsFacts;
use vantage_shared::{Period, Proto};

use crate::checks::Figure;
use crate::synth::Rng;

const TARGET_WALL: Duration = Duration::from_secs(2);
const TARGET_BYTES: usize = 5_000_000;
const HOUR: Duration = Duration::from_secs(3600);

pub struct ReportConfig {
    pub findings: u64,
    pub seed: u64,
    pub runs: u32,
}

/// The synthetic store: findings, 12 baselines, a diff, TLS facts.
struct World {
    period: Period,
    findings: Vec<Finding>,
    baselines: Vec<BaselineFacts>,
    changes: Vec<DiffChange>,
    tls: BTreeMap<report::TlsKey, TlsFacts>,
    costs: Costs,
}

fn periods(last: Period, n: usize) -> Vec<Period> {
    let mut out = vec![last];
    while out.len() < n {
        out.push(out[out.len() - 1].previous());
    }
    out.reverse();
    out
}

fn start_of(p: Period) -> SystemTime {
    vantage_shared::period::day_start(&format!("{p}-02")).expect("a day")
}

fn synth(config: &ReportConfig) -> World {
    let period: Period = "2026-11".parse().expect("a period");
    let months = periods(period, report::MONTHS);
    let findings: Vec<Finding> = (0..config.findings).map(|i| finding(i, config.seed, &months)).collect();
    let mut baselines = Vec::new();
    for (i, p) in months.iter().enumerate() {
        baselines.push(BaselineFacts { period: *p, open_ports: 12_000 - 150 * i as u64 });
    }
    let mut changes = Vec::new();
    let mut tls = BTreeMap::new();
    for f in findings.iter().filter(|f| f.last_period == period).step_by(5) {
        let k = f.key;
        tls.insert((k.addr, k.proto, k.port), certificate(&k.addr.to_string()));
        let kind = if f.first_seen >= start_of(period) { ChangeKind::New } else { ChangeKind::VersionChanged };
        let change = Change {
            kind,
            addr: k.addr,
            proto: k.proto,
            port: k.port,
            before: "ssh OpenSSH 9.2p1".into(),
            after: "ssh OpenSSH 9.6p1".into(),
            open_in: vec!["eu".into()],
        };
        changes.push(DiffChange { change, confirmed: false });
    }
    let costs = Costs {
        currency: "EUR".into(),
        per_severity: BTreeMap::from([(Severity::Critical, 250_000), (Severity::High, 50_000)]),
    };
    World { period, findings, baselines, changes, tls, costs }
}

fn finding(i: u64, seed: u64, months: &[Period]) -> Finding {
    let mut rng = Rng::new(seed, 7, i);
    let addr = IpAddr::V4(Ipv4Addr::new(198, 18, (i / 250) as u8, (i % 250 + 1) as u8));
    let (severity, kind) = match rng.below(100) {
        0..5 => (Severity::Critical, Kind::ExposedService),
        5..20 => (Severity::High, Kind::VulnerableVersion),
        20..60 => (Severity::Medium, Kind::Undocumented),
        _ => (Severity::Low, Kind::Documented),
    };
    let port = [22u16, 443, 3306, 5432, 8080, 6379, 25, 993][rng.below(8) as usize];
    let start = rng.below(months.len() as u64) as usize;
    let opened = start_of(months[start]) + HOUR * rng.below(200) as u32;
    let found = format!("found ({severity}, due within 24 hours)");
    let mut history = vec![Event::new(EventKind::Found, opened, Some(months[start]), found)];
    let mut status = Status::Open;
    let mut last = months[months.len() - 1];
    let (mut repeats, mut opened_at) = (0, opened);
    if rng.below(100) < 20 {
        history.push(Event::new(EventKind::Acknowledged, opened + HOUR * 5, None, "acknowledged by ops"));
        status = Status::Acknowledged { by: "ops".into(), at: opened + HOUR * 5 };
    }
    if start + 1 < months.len() && rng.below(100) < 40 {
        let end = start + 1 + rng.below((months.len() - start - 1) as u64) as usize;
        let at = start_of(months[end]);
        let what = "port no longer open: remediated after 9 hours";
        history.push(Event::new(EventKind::Remediated, at, Some(months[end]), what));
        status = Status::Remediated { at, period: months[end] };
        last = months[end];
        if end + 1 < months.len() && rng.below(100) < 15 {
            let back = start_of(months[end + 1]);
            let what = format!("seen again after its remediation in {}: repeat 1", months[end]);
            history.push(Event::new(EventKind::Reopened, back, Some(months[end + 1]), what));
            status = Status::Reopened;
            (repeats, opened_at, last) = (1, back, months[months.len() - 1]);
        }
    }
    let product = ["OpenSSH", "nginx", "MariaDB", "PostgreSQL", "Redis"][rng.below(5) as usize];
    let version = format!("{}.{}.{}", 1 + rng.below(12), rng.below(30), rng.below(20));
    let detail = Detail {
        service: Some(["ssh", "http", "mysql", "postgresql", "redis"][rng.below(5) as usize].into()),
        product: Some(product.into()),
        version: Some(version.clone()),
        cpe: vec![format!("cpe:2.3:a:vendor:{}:{version}:*:*:*:*:*:*:*", product.to_lowercase())],
        category: Some(["remote-access", "web", "database", "management"][rng.below(4) as usize].into()),
        cves: if severity >= Severity::High { vec![format!("CVE-2026-{:04}", rng.below(9999))] } else { vec![] },
        regions: vec!["eu-west".into(), "us-east".into()],
        regions_scanned: 2,
        reasons: if kind == Kind::Documented { vec![] } else { vec!["no register entry documents this port".into()] },
        register_entry: (kind == Kind::Documented).then_some(1 + rng.below(400) as usize),
        justification: None,
    };
    Finding {
        id: format!("F-{}", i + 1),
        key: FindingKey { addr, proto: Proto::Tcp, port, kind },
        severity,
        status,
        owner: Some(["ops", "web-team", "dba", "platform"][rng.below(4) as usize].into()),
        contact: None,
        first_seen: opened,
        opened_at,
        last_seen: opened_at,
        last_period: last,
        deadline: opened_at + HOUR * 24,
        repeats,
        sentence: format!(
            "{product} {version} reachable from the internet on {addr}:{port}, which no register entry \
             documents: close it or document why it must be open (due within 24 hours)."
        ),
        detail,
        history,
    }
}

fn certificate(host: &str) -> TlsFacts {
    TlsFacts {
        version: "TLSv1.3".into(),
        cipher: "TLS13_AES_256_GCM_SHA384".into(),
        alpn: None,
        subject: format!("CN={host}"),
        issuer: "CN=Example Issuing CA,O=Example".into(),
        sans: vec![host.into()],
        not_before: 1_767_225_600,
        not_after: 1_798_761_600,
        self_signed: false,
        sha256: "ab".repeat(32),
        error: None,
    }
}

pub fn run(config: &ReportConfig) -> anyhow::Result<Vec<Figure>> {
    let w = synth(config);
    let inputs = Inputs {
        period: w.period,
        as_of: report::period_end(w.period),
        findings: &w.findings,
        baselines: &w.baselines,
        previous: Some(w.period.previous()),
        changes: &w.changes,
        tls: &w.tls,
        costs: Some(&w.costs),
        notes: &Default::default(),
    };
    let mut figures = Vec::new();
    for r in 1..=config.runs {
        let t = Instant::now();
        let model = report::build(&inputs);
        let built = t.elapsed();
        let html = report::html::render(&model)?;
        let total = t.elapsed();
        let t = Instant::now();
        let md = report::markdown::render(&model);
        let md_took = t.elapsed();
        let json = report::machine::json(&model)?;
        let csv = report::machine::csv(&model)?;
        let failed = total > TARGET_WALL || html.len() > TARGET_BYTES;
        figures.push(Figure {
            name: format!("report, run {r}: {} findings, html", config.findings),
            value: format!(
                "{:.3} s (model {:.3} s), {:.2} MB ({} open findings, {} tracked){}; md {:.3} s {:.2} MB, \
                 json {:.2} MB, csv {:.2} MB",
                total.as_secs_f64(),
                built.as_secs_f64(),
                html.len() as f64 / 1e6,
                model.findings.len(),
                model.tracking.len(),
                if failed { " OVER the 2 s / 5 MB target" } else { "" },
                md_took.as_secs_f64(),
                md.len() as f64 / 1e6,
                json.len() as f64 / 1e6,
                csv.len() as f64 / 1e6,
            ),
            failed,
        });
    }
    Ok(figures)
}
