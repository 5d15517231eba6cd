//! The re-probe behind `vantage diff`: one low-rate verification scan per
//! protocol over the candidates' hosts and ports, through the same
//! coordinator and agents as any scan (embedded: an in-process agent).
//! Verification scans never become part of a baseline.

use std::collections::BTreeSet;
use std::net::IpAddr;

use vantage_proto::v1;
use vantage_shared::{Observation, ProbeOptions, Proto, ScanMode};

use crate::cli::connect::{Connection, Needs};
use crate::cli::scan::watch;
use crate::cli::{GlobalArgs, status_error};
use crate::review::confirm::{self, Seen};
use crate::review::diff::{Change, ChangeKind};

/// Candidates re-probed at most; beyond that, say so and re-probe nothing.
pub const MAX_CANDIDATES: usize = 10_000;

/// The kinds a re-probe from one place can confirm.
pub fn confirmable(kind: ChangeKind) -> bool {
    !matches!(kind, ChangeKind::ReachabilityChanged | ChangeKind::StateChanged)
}

/// Re-probes the candidates; returns what was open (with facts).
pub async fn reprobe(global: &GlobalArgs, candidates: &[&Change], host_rate: u32) -> anyhow::Result<Seen> {
    let mut conn = Connection::open(global, Needs::Agent).await?;
    let mut seen = Seen::new();
    let mut result = Ok(());
    for proto in [Proto::Tcp, Proto::Udp] {
        let these: Vec<&&Change> = candidates.iter().filter(|c| c.proto == proto).collect();
        if these.is_empty() {
            continue;
        }
        let hosts: BTreeSet<IpAddr> = these.iter().map(|c| c.addr).collect();
        let ports: BTreeSet<u16> = these.iter().map(|c| c.port).filter(|p| *p != 0).collect();
        if ports.is_empty() {
            continue;
        }
        let join = |v: Vec<String>| v.join(",");
        let options = ProbeOptions {
            mode: if proto == Proto::Udp { ScanMode::Udp } else { ScanMode::Connect },
            retries: 2,
            host_rate,
            ..ProbeOptions::default()
        };
        let request = v1::StartScanRequest {
            targets: join(hosts.iter().map(IpAddr::to_string).collect()),
            ports: join(ports.iter().map(u16::to_string).collect()),
            options: Some((&options).into()),
            label: "diff verification".into(),
            verification: true,
            ..Default::default()
        };
        match scan(&mut conn, request).await {
            Ok(observations) => seen.extend(confirm::seen(observations)),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    conn.close().await;
    result.map(|()| seen)
}

async fn scan(conn: &mut Connection, request: v1::StartScanRequest) -> anyhow::Result<Vec<Observation>> {
    let started = conn.control.start_scan(request).await.map_err(status_error)?.into_inner();
    eprintln!("re-probing candidates: verification scan {} ({} probes)", started.scan_id, started.probes);
    watch::follow(conn, started.scan_id).await?;
    let request = v1::ListResultsRequest { scan_id: started.scan_id, include_closed: false };
    let mut stream = conn.control.list_results(request).await.map_err(status_error)?.into_inner();
    let mut out = Vec::new();
    while let Some(wire) = stream.message().await.map_err(status_error)? {
        out.push(Observation::try_from(&wire)?);
    }
    Ok(out)
}
