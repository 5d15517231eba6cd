//! Scans as steps of a larger piece of work: start one, wait for its end,
//! read what it saw. (The CLI's `vantage scan` draws progress bars around
//! the same calls.)

use std::collections::BTreeSet;

use vantage_proto::v1;
use vantage_shared::Observation;

use super::{Control, WorkflowError};

/// The regions with an agent connected now, in order.
pub async fn live_regions(control: &mut Control) -> Result<Vec<String>, WorkflowError> {
    let agents = control.list_agents(v1::ListAgentsRequest {}).await?.into_inner().agents;
    let live: BTreeSet<String> = agents.into_iter().filter(|a| a.state == "connected").map(|a| a.region).collect();
    Ok(live.into_iter().collect())
}

/// Waits for a scan to finish; its last status.
pub async fn wait(control: &mut Control, scan_id: u64) -> Result<v1::ScanStatus, WorkflowError> {
    let mut stream = control.watch_scan(v1::WatchScanRequest { scan_id }).await?.into_inner();
    while let Some(status) = stream.message().await? {
        if status.finished {
            return Ok(status);
        }
    }
    Err(WorkflowError::Unfinished(scan_id))
}

/// Starts a scan and waits for its end.
pub async fn run(control: &mut Control, request: v1::StartScanRequest) -> Result<v1::ScanStatus, WorkflowError> {
    let started = control.start_scan(request).await?.into_inner();
    wait(control, started.scan_id).await
}

/// A finished scan's open ports (and answers-all hosts).
pub async fn open_ports(control: &mut Control, scan_id: u64) -> Result<Vec<Observation>, WorkflowError> {
    let request = v1::ListResultsRequest { scan_id, include_closed: false };
    let mut stream = control.list_results(request).await?.into_inner();
    let mut out = Vec::new();
    while let Some(wire) = stream.message().await? {
        out.push(Observation::try_from(&wire).map_err(|e| WorkflowError::Invalid(format!("scan {scan_id}: {e}")))?);
    }
    Ok(out)
}

/// The regions whose agents did some of a scan.
pub fn ran_in(status: &v1::ScanStatus) -> BTreeSet<String> {
    status.agents.iter().filter(|a| a.shards_done > 0).map(|a| a.region.clone()).collect()
}

/// The live regions, waiting up to `max` for a first agent to connect (an
/// embedded agent dials in just after its coordinator starts).
pub async fn wait_for_agents(control: &mut Control, max: std::time::Duration) -> Result<Vec<String>, WorkflowError> {
    let deadline = tokio::time::Instant::now() + max;
    loop {
        let live = live_regions(control).await?;
        if !live.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(live);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
