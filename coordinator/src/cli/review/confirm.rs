//! The re-probe behind `vantage diff`: one low-rate verification scan per
//! protocol over the candidates' hosts and ports, through the same
//! coordinator and agents as any scan (embedded: an in-process agent),
//! from every region that has an agent connected, so that a second region
//! confirms what the first saw. Verification scans never become part of a
//! baseline.

use std::collections::BTreeSet;
use std::net::IpAddr;

use vantage_proto::v1;
use vantage_shared::{Observation, ProbeOptions, Proto, ScanMode};

use crate::cli::connect::{Connection, Needs};
use crate::cli::scan::watch;
use crate::cli::{GlobalArgs, status_error};
use crate::review::confirm::Reprobe;
use crate::review::diff::{Change, ChangeKind};

/// Candidates re-probed at most; beyond that, say so and re-probe nothing.
pub const MAX_CANDIDATES: usize = 10_000;

/// The kinds a re-probe can confirm (an answers-all host needs a whole-host scan).
pub fn confirmable(kind: ChangeKind) -> bool {
    kind != ChangeKind::StateChanged
}

/// Re-probes the candidates from every region with a live agent; returns
/// what each region saw open (with facts). `scanned` are the regions the
/// period being confirmed was scanned from.
pub async fn reprobe(
    global: &GlobalArgs,
    candidates: &[&Change],
    host_rate: u32,
    scanned: &[String],
) -> anyhow::Result<Reprobe> {
    let mut conn = Connection::open(global, Needs::Agent).await?;
    let result = reprobe_on(&mut conn, candidates, host_rate, scanned).await;
    conn.close().await;
    result
}

async fn reprobe_on(
    conn: &mut Connection,
    candidates: &[&Change],
    host_rate: u32,
    scanned: &[String],
) -> anyhow::Result<Reprobe> {
    let regions = live_regions(conn).await?;
    if regions.len() > 1 {
        eprintln!("re-probing from {} regions: {}", regions.len(), regions.join(", "));
    }
    let mut reprobe = Reprobe::new(scanned.iter().cloned());
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
            // One region: any agent's (the embedded one, or the only region).
            regions: if regions.len() > 1 { regions.clone() } else { Vec::new() },
            ..Default::default()
        };
        let (ran_in, observations) = scan(conn, request).await?;
        // A region that saw nothing open still looked.
        for region in &ran_in {
            reprobe.region(region);
        }
        reprobe.add(observations);
    }
    Ok(reprobe)
}

/// The regions with an agent connected now, in order.
async fn live_regions(conn: &mut Connection) -> anyhow::Result<Vec<String>> {
    let agents = conn.control.list_agents(v1::ListAgentsRequest {}).await.map_err(status_error)?.into_inner().agents;
    let live: BTreeSet<String> = agents.into_iter().filter(|a| a.state == "connected").map(|a| a.region).collect();
    Ok(live.into_iter().collect())
}

/// Runs a verification scan; the regions whose agents ran it, and what it saw.
async fn scan(
    conn: &mut Connection,
    request: v1::StartScanRequest,
) -> anyhow::Result<(BTreeSet<String>, Vec<Observation>)> {
    let started = conn.control.start_scan(request).await.map_err(status_error)?.into_inner();
    eprintln!("re-probing candidates: verification scan {} ({} probes)", started.scan_id, started.probes);
    let status = watch::follow(conn, started.scan_id).await?;
    let ran_in = status.agents.into_iter().filter(|a| a.shards_done > 0).map(|a| a.region).collect();
    let request = v1::ListResultsRequest { scan_id: started.scan_id, include_closed: false };
    let mut stream = conn.control.list_results(request).await.map_err(status_error)?.into_inner();
    let mut out = Vec::new();
    while let Some(wire) = stream.message().await.map_err(status_error)? {
        out.push(Observation::try_from(&wire)?);
    }
    Ok((ran_in, out))
}
