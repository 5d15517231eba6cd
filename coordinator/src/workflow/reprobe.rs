//! The re-probe behind `vantage diff`, `vantage review`, `vantage verify` and
//! the scheduled re-check: one low-rate verification scan per protocol over
//! the candidates' hosts and ports, through the same coordinator and agents
//! as any scan, from every region that has an agent connected, so that a
//! second region confirms what the first saw. Verification scans never
//! become part of a baseline. [`crate::review::confirm`] judges the result.

use std::collections::BTreeSet;
use std::net::IpAddr;

use vantage_proto::v1;
use vantage_shared::{ProbeOptions, Proto, ScanMode};

use super::{Control, Say, WorkflowError, scan};
use crate::review::confirm::Reprobe;
use crate::review::diff::{Change, ChangeKind};

/// Candidates re-probed at most; beyond that, say so and re-probe nothing.
pub const MAX_CANDIDATES: usize = 10_000;

/// Re-probes per second to any one host, unless told otherwise.
pub const DEFAULT_HOST_RATE: u32 = 20;

/// The kinds a re-probe can confirm (an answers-all host needs a whole-host scan).
pub fn confirmable(kind: ChangeKind) -> bool {
    kind != ChangeKind::StateChanged
}

/// Re-probes the candidates from every region with a live agent; returns
/// what each region saw open (with facts). `scanned` are the regions the
/// period being confirmed was scanned from.
pub async fn reprobe(
    control: &mut Control,
    candidates: &[&Change],
    host_rate: u32,
    scanned: &[String],
    say: Say<'_>,
) -> Result<Reprobe, WorkflowError> {
    let regions = scan::live_regions(control).await?;
    if regions.len() > 1 {
        say(&format!("re-probing from {} regions: {}", regions.len(), regions.join(", ")));
    }
    let mut reprobe = Reprobe::new(scanned.iter().cloned());
    for proto in [Proto::Tcp, Proto::Udp] {
        let these: Vec<&&Change> = candidates.iter().filter(|c| c.proto == proto).collect();
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
            label: "verification".into(),
            verification: true,
            // One region: any agent's (the embedded one, or the only region).
            regions: if regions.len() > 1 { regions.clone() } else { Vec::new() },
            ..Default::default()
        };
        let started = control.start_scan(request).await?.into_inner();
        say(&format!("re-probing: verification scan {} ({} probes)", started.scan_id, started.probes));
        let status = scan::wait(control, started.scan_id).await?;
        // A region that saw nothing open still looked.
        for region in scan::ran_in(&status) {
            reprobe.region(&region);
        }
        reprobe.add(scan::open_ports(control, started.scan_id).await?);
    }
    Ok(reprobe)
}
