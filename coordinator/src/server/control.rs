//! The operators' side of the coordinator: start, watch and read scans;
//! list baselines and diff them.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use std::collections::{BTreeMap, BTreeSet};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use vantage_proto::v1;
use vantage_proto::v1::control_server::Control;

use vantage_shared::convert::{addr_to_bytes, duration_from_wire, time_to_wire};
use vantage_shared::period::PeriodError;
use vantage_shared::{BaselineEntry, Period, PortState, Scope};

use super::planner::ShardSizing;
use super::scheduler::{self, Scheduler, status_of};
use super::trust::{MAX_TOKEN_TTL, Trust};
use super::{planner, reachability, review};
use crate::review::baseline::{self, Sources};
use crate::review::diff::{self, Change, ChangeKind};
use crate::review::vulns::VulnData;
use crate::store::{AgentRecord, BaselineRecord, ScanRecord, ShardState, ShardStats, Store, StoreError};

#[derive(Clone)]
pub struct ControlService {
    pub scheduler: Arc<Scheduler>,
    pub store: Store,
    pub scope: Arc<Scope>,
    /// Probes per shard when fixed (`vantage serve --shard-probes`); else sized.
    pub shard_probes: Option<u64>,
    pub trust: Trust,
}

impl ControlService {
    /// Shards of a fixed size when configured; else sized to take about
    /// [`vantage_shared::shard::SHARD_TIME`] at the pace the scan's agents
    /// showed (or its rate cap, when lower or nothing was measured yet).
    fn sizing(&self, req: &v1::StartScanRequest) -> ShardSizing {
        if let Some(n) = self.shard_probes {
            return ShardSizing::Fixed(n);
        }
        let cap = req.options.as_ref().map(|o| o.rate).filter(|r| *r > 0).map(f64::from);
        match (self.scheduler.shard_rate(&req.regions), cap) {
            (Some(measured), Some(cap)) => ShardSizing::Rate(measured.min(cap)),
            (Some(rate), None) | (None, Some(rate)) => ShardSizing::Rate(rate),
            (None, None) => ShardSizing::guess(),
        }
    }
}

/// How `vantage fleet list` shows an enrolled agent that is not connected.
fn agent_info(record: &AgentRecord) -> v1::AgentInfo {
    v1::AgentInfo {
        agent_id: record.id.clone(),
        name: record.name.clone(),
        region: record.region.clone(),
        state: if record.revoked.is_some() { "revoked" } else { "offline" }.into(),
        cert_expires_at: Some(time_to_wire(record.cert_not_after)),
        revoked_at: record.revoked.as_ref().map(|r| time_to_wire(r.at)),
        revoked_reason: record.revoked.as_ref().map(|r| r.reason.clone()).unwrap_or_default(),
        ..Default::default()
    }
}

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unordered { .. } => Status::invalid_argument(e.to_string()),
            e => Status::internal(e.to_string()),
        }
    }
}

/// The most vulnerability data one import may send (NVD's whole history,
/// compacted, is well below it).
const MAX_VULN_DATA: usize = 1 << 30;

/// Changes per message of a diff stream.
const DIFF_BATCH: usize = 512;

type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Control for ControlService {
    async fn start_scan(&self, req: Request<v1::StartScanRequest>) -> Result<Response<v1::StartScanResponse>, Status> {
        let req = req.into_inner();
        let sizing = self.sizing(&req);
        let mut plan = planner::plan(&req, &self.scope, sizing).inspect_err(|e| {
            tracing::info!(error = %e, targets = %req.targets, "scan refused");
        })?;
        tracing::info!(?sizing, shards = plan.shards.len(), "scan planned");
        let id = self.store.next_scan_id()?;
        plan.assign_id(id);
        self.store.put_shards(&plan.shards)?;
        self.store.put_scan(&plan.record)?;
        self.store.flush().await?;
        tracing::info!(scan.id = id, targets = %plan.record.targets, ports = %plan.record.ports, shards = plan.shards.len(), "scan planned");
        let resp =
            v1::StartScanResponse { scan_id: id, shards: plan.record.shards_total, probes: plan.record.probes_total };
        self.scheduler.add_scan(plan.record, &plan.shards);
        Ok(Response::new(resp))
    }

    type WatchScanStream = Boxed<v1::ScanStatus>;

    async fn watch_scan(&self, req: Request<v1::WatchScanRequest>) -> Result<Response<Self::WatchScanStream>, Status> {
        let scan_id = req.into_inner().scan_id;
        let (tx, rx) = mpsc::channel(4);
        match self.scheduler.watch(scan_id) {
            Some(mut watch) => {
                tokio::spawn(async move {
                    loop {
                        let status = watch.borrow_and_update().clone();
                        let finished = status.finished;
                        if tx.send(Ok(status)).await.is_err() || finished || watch.changed().await.is_err() {
                            break;
                        }
                    }
                });
            }
            None => {
                // Finished (or unknown): one status from the store.
                let status = self.stored_status(scan_id)?;
                tx.send(Ok(status)).await.ok();
            }
        }
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn list_scans(&self, _: Request<v1::ListScansRequest>) -> Result<Response<v1::ListScansResponse>, Status> {
        let mut scans = Vec::new();
        for record in self.store.scans()? {
            let status = match self.scheduler.watch(record.id) {
                Some(w) => w.borrow().clone(),
                None => self.stored_status(record.id)?,
            };
            scans.push(status);
        }
        Ok(Response::new(v1::ListScansResponse { scans }))
    }

    async fn list_agents(&self, _: Request<v1::ListAgentsRequest>) -> Result<Response<v1::ListAgentsResponse>, Status> {
        let mut agents = self.scheduler.agents();
        // Enrolled agents that are not connected are listed too, and every
        // enrolled one carries its certificate's expiry.
        for record in self.store.enrolled_agents()? {
            match agents.iter_mut().find(|a| a.agent_id == record.id) {
                Some(info) => info.cert_expires_at = Some(time_to_wire(record.cert_not_after)),
                None => agents.push(agent_info(&record)),
            }
        }
        agents.sort_by(|a, b| (&a.region, &a.agent_id).cmp(&(&b.region, &b.agent_id)));
        Ok(Response::new(v1::ListAgentsResponse { agents }))
    }

    async fn create_join_token(
        &self,
        req: Request<v1::CreateJoinTokenRequest>,
    ) -> Result<Response<v1::JoinToken>, Status> {
        let req = req.into_inner();
        let ttl = duration_from_wire(req.ttl.as_ref()).unwrap_or(MAX_TOKEN_TTL);
        Ok(Response::new(self.trust.create_token(&req.region, ttl)?))
    }

    async fn revoke_agent(&self, req: Request<v1::RevokeAgentRequest>) -> Result<Response<v1::AgentInfo>, Status> {
        let req = req.into_inner();
        let record = self.trust.revoke(&req.agent_id, &req.reason).await?;
        // After the registry says so: a reconnect now fails its handshake.
        self.scheduler.disconnect(&record.id);
        Ok(Response::new(agent_info(&record)))
    }

    type ListResultsStream = Boxed<v1::Observation>;

    async fn list_results(
        &self,
        req: Request<v1::ListResultsRequest>,
    ) -> Result<Response<Self::ListResultsStream>, Status> {
        let req = req.into_inner();
        let scan_id = match req.scan_id {
            0 => self.store.latest_scan_id()?.ok_or_else(|| Status::not_found("no scan has been run yet"))?,
            id => id,
        };
        if self.store.scan(scan_id)?.is_none() {
            return Err(Status::not_found(format!("no scan {scan_id}")));
        }
        let (tx, rx) = mpsc::channel(256);
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            for o in store.observations(scan_id) {
                let item = match o {
                    Ok(o) if matches!(o.state, PortState::Closed | PortState::Filtered) && !req.include_closed => {
                        continue;
                    }
                    Ok(o) => Ok(v1::Observation::from(&o)),
                    Err(e) => Err(Status::from(e)),
                };
                if tx.blocking_send(item).is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn list_baselines(
        &self,
        _: Request<v1::ListBaselinesRequest>,
    ) -> Result<Response<v1::ListBaselinesResponse>, Status> {
        // Bring every period with finished scans up to date first.
        let periods: BTreeSet<Period> = self.store.scans()?.iter().map(|s| s.period()).collect();
        for period in periods {
            baseline::current(&self.store, period).await?;
        }
        let all = self.store.baselines()?;
        let baselines = all
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let current = all.get(i + 1).is_none_or(|next| next.period != b.period);
                baseline_info(b, current)
            })
            .collect();
        Ok(Response::new(v1::ListBaselinesResponse { baselines }))
    }

    type DiffStream = Boxed<v1::DiffEvent>;

    async fn diff(&self, req: Request<v1::DiffRequest>) -> Result<Response<Self::DiffStream>, Status> {
        let req = req.into_inner();
        let from = self.side(&req.from_period, req.from_scan).await?;
        let to = self.side(&req.to_period, req.to_scan).await?;
        if let Side::Baseline(None) = &to {
            return Err(Status::not_found(format!("nothing to compare: no finished scan in {}", req.to_period)));
        };
        let header = v1::DiffHeader { from: from.info(), to: to.info() };
        let (tx, rx) = mpsc::channel(256);
        let store = self.store.clone();
        tx.send(Ok(v1::DiffEvent { body: Some(v1::diff_event::Body::Header(header)) })).await.ok();
        tokio::task::spawn_blocking(move || {
            let mut changes = diff::diff(from.entries(&store), to.entries(&store));
            if let (Some(f), Some(t)) = (from.regions(), to.regions()) {
                changes = changes.regions(f.intersection(&t).cloned().collect());
            }
            let send = |batch: Vec<v1::Change>| {
                let event = v1::DiffEvent { body: Some(v1::diff_event::Body::Changes(v1::Changes { changes: batch })) };
                tx.blocking_send(Ok(event)).is_ok()
            };
            let mut batch = Vec::with_capacity(DIFF_BATCH);
            for change in changes {
                match change {
                    Ok(c) => batch.push(change_to_wire(&c)),
                    Err(e) => {
                        // What was found before the failure goes first, then the error.
                        if send(std::mem::take(&mut batch)) {
                            let _ = tx.blocking_send(Err(e.into()));
                        }
                        return;
                    }
                }
                if batch.len() == DIFF_BATCH && !send(std::mem::replace(&mut batch, Vec::with_capacity(DIFF_BATCH))) {
                    return;
                }
            }
            if !batch.is_empty() {
                send(batch);
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn put_document(&self, req: Request<v1::PutDocumentRequest>) -> Result<Response<v1::DocumentInfo>, Status> {
        review::put_document(&self.store, req.into_inner()).map(Response::new)
    }

    async fn import_vulns(&self, req: Request<Streaming<v1::VulnChunk>>) -> Result<Response<v1::VulnInfo>, Status> {
        let mut stream = req.into_inner();
        let mut json = Vec::new();
        while let Some(chunk) = stream.message().await? {
            if json.len() + chunk.data.len() > MAX_VULN_DATA {
                return Err(Status::invalid_argument(format!(
                    "vulnerability data over {} MiB: import fewer feed files",
                    MAX_VULN_DATA >> 20
                )));
            }
            json.extend_from_slice(&chunk.data);
        }
        let data: VulnData =
            serde_json::from_slice(&json).map_err(|e| Status::invalid_argument(format!("vulnerability data: {e}")))?;
        self.store.put_vulns(&data)?;
        self.store.flush().await?;
        tracing::info!(cves = data.cves.len(), kev = data.kev.len(), "vulnerability data imported");
        Ok(Response::new(v1::VulnInfo {
            cves: data.cves.len() as u64,
            kev_entries: data.kev.len() as u64,
            sources: data.sources.iter().map(|s| s.name.clone()).collect(),
        }))
    }

    async fn review(&self, req: Request<v1::ReviewRequest>) -> Result<Response<v1::ReviewSummary>, Status> {
        review::review(&self.store, req.into_inner()).await.map(Response::new)
    }

    type ListFindingsStream = Boxed<v1::FindingRecord>;

    async fn list_findings(
        &self,
        _req: Request<v1::ListFindingsRequest>,
    ) -> Result<Response<Self::ListFindingsStream>, Status> {
        let records: Vec<Result<v1::FindingRecord, Status>> =
            self.store.findings()?.iter().map(|f| Ok(review::record_with_notes(&self.store, f)?)).collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(records))))
    }

    async fn update_finding(
        &self,
        req: Request<v1::UpdateFindingRequest>,
    ) -> Result<Response<v1::FindingRecord>, Status> {
        review::update(&self.store, req.into_inner()).await.map(Response::new)
    }

    type ReachabilityStream = Boxed<v1::ReachabilityEvent>;

    async fn reachability(
        &self,
        req: Request<v1::ReachabilityRequest>,
    ) -> Result<Response<Self::ReachabilityStream>, Status> {
        let req = req.into_inner();
        let scan_id = match req.scan_id {
            0 => self.store.latest_scan_id()?.ok_or_else(|| Status::not_found("no scan has been run yet"))?,
            id => id,
        };
        let record = self.store.scan(scan_id)?.ok_or_else(|| Status::not_found(format!("no scan {scan_id}")))?;
        let status = match self.scheduler.watch(scan_id) {
            Some(w) => w.borrow().clone(),
            None => self.stored_status(scan_id)?,
        };
        let events = reachability::stream(&self.store, record, status, req.inconsistent_only)?;
        Ok(Response::new(Box::pin(events)))
    }

    type BackupStream = Boxed<v1::BackupChunk>;

    async fn backup(&self, _req: Request<v1::BackupRequest>) -> Result<Response<Self::BackupStream>, Status> {
        let (tx, rx) = mpsc::channel(16);
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let sink = ChunkSink { tx: tx.clone(), buf: Vec::with_capacity(ChunkSink::SIZE) };
            match store.backup(std::io::BufWriter::with_capacity(ChunkSink::SIZE, sink)) {
                Ok(summary) => tracing::info!(
                    entries = summary.entries(),
                    took = %humantime::format_duration(started.elapsed()),
                    "backup sent"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "backup failed");
                    let _ = tx.blocking_send(Err(Status::internal(format!("backup failed: {e}"))));
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn import_baseline(
        &self,
        req: Request<Streaming<v1::ImportMessage>>,
    ) -> Result<Response<v1::BaselineInfo>, Status> {
        let mut stream = req.into_inner();
        let Some(v1::ImportMessage { body: Some(v1::import_message::Body::Header(header)) }) = stream.message().await?
        else {
            return Err(Status::invalid_argument("an import starts with its header"));
        };
        let period: Period = header.period.parse().map_err(|e: PeriodError| Status::invalid_argument(e.to_string()))?;
        let revision = self.store.current_baseline(period)?.map_or(1, |b| b.revision + 1);
        let mut writer = self.store.baseline_writer(period, revision);
        while let Some(msg) = stream.message().await? {
            let Some(v1::import_message::Body::Entries(chunk)) = msg.body else {
                return Err(Status::invalid_argument("one header per import"));
            };
            for e in chunk.entries {
                let e = BaselineEntry::try_from(e)
                    .map_err(|err| Status::invalid_argument(format!("imported entry: {err}")))?;
                writer.push(&e)?;
            }
        }
        let entries = writer.finish()?;
        let record = BaselineRecord {
            period,
            revision,
            scans: Vec::new(),
            regions: vec![header.source],
            entries,
            built_at: std::time::SystemTime::now(),
        };
        self.store.commit_baseline(&record).await?;
        tracing::info!(%period, revision, entries, "baseline imported");
        Ok(Response::new(baseline_info(&record, true)))
    }
}

/// One side of a diff: a period's baseline (none yet: a first review), or one scan.
enum Side {
    Baseline(Option<BaselineRecord>),
    Scan(ScanRecord),
}

impl Side {
    fn info(&self) -> Option<v1::BaselineInfo> {
        match self {
            Side::Baseline(b) => b.as_ref().map(|b| baseline_info(b, true)),
            Side::Scan(s) => Some(v1::BaselineInfo {
                period: s.period().to_string(),
                scans: vec![s.id],
                built_at: s.finished_at.map(time_to_wire),
                current: true,
                ..Default::default()
            }),
        }
    }

    /// The regions this side was scanned from, where known.
    fn regions(&self) -> Option<BTreeSet<String>> {
        match self {
            Side::Baseline(Some(b)) => Some(b.regions.iter().cloned().collect()),
            _ => None,
        }
    }

    fn entries(&self, store: &Store) -> Box<dyn Iterator<Item = Result<BaselineEntry, StoreError>> + Send> {
        match self {
            Side::Baseline(None) => Box::new(std::iter::empty()),
            Side::Baseline(Some(b)) => Box::new(store.baseline_entries(b.period, b.revision)),
            Side::Scan(s) => Box::new(baseline::entries_of(store, Sources::scan(s))),
        }
    }
}

impl ControlService {
    async fn side(&self, period: &str, scan: u64) -> Result<Side, Status> {
        if scan != 0 {
            let record = self.store.scan(scan)?.ok_or_else(|| Status::not_found(format!("no scan {scan}")))?;
            if record.finished_at.is_none() {
                return Err(Status::failed_precondition(format!("scan {scan} has not finished")));
            }
            return Ok(Side::Scan(record));
        }
        let period: Period = period.parse().map_err(|e: PeriodError| Status::invalid_argument(e.to_string()))?;
        Ok(Side::Baseline(baseline::current(&self.store, period).await?))
    }
}

pub(super) fn baseline_info(b: &BaselineRecord, current: bool) -> v1::BaselineInfo {
    v1::BaselineInfo {
        period: b.period.to_string(),
        revision: b.revision,
        scans: b.scans.clone(),
        regions: b.regions.clone(),
        entries: b.entries,
        built_at: Some(time_to_wire(b.built_at)),
        current,
    }
}

fn change_to_wire(c: &Change) -> v1::Change {
    v1::Change {
        kind: match c.kind {
            ChangeKind::New => v1::ChangeKind::New,
            ChangeKind::Closed => v1::ChangeKind::Closed,
            ChangeKind::ServiceChanged => v1::ChangeKind::ServiceChanged,
            ChangeKind::VersionChanged => v1::ChangeKind::VersionChanged,
            ChangeKind::TlsChanged => v1::ChangeKind::TlsChanged,
            ChangeKind::ReachabilityChanged => v1::ChangeKind::ReachabilityChanged,
            ChangeKind::StateChanged => v1::ChangeKind::StateChanged,
        } as i32,
        addr: addr_to_bytes(c.addr),
        proto: v1::Proto::from(c.proto) as i32,
        port: u32::from(c.port),
        before: c.before.clone(),
        after: c.after.clone(),
        confirmed: false,
        open_in: c.open_in.clone(),
    }
}

impl ControlService {
    fn stored_status(&self, scan_id: u64) -> Result<v1::ScanStatus, Status> {
        let record = self.store.scan(scan_id)?.ok_or_else(|| Status::not_found(format!("no scan {scan_id}")))?;
        let mut done = ShardStats::default();
        let mut shards_done = 0;
        let mut by_agent = BTreeMap::new();
        for shard in self.store.shards(scan_id)? {
            if let (ShardState::Done { stats, agent, .. }, Some(region)) = (&shard.state, shard.done_region()) {
                shards_done += 1;
                done.add(stats);
                scheduler::credit(&mut by_agent, agent, region, stats.probes);
            }
        }
        let mut status = status_of(&record, shards_done, &done);
        status.agents = by_agent.into_values().collect();
        Ok(status)
    }
}

/// The backup's bytes as stream messages of [`ChunkSink::SIZE`]; a client
/// that went away ends the backup with an error.
struct ChunkSink {
    tx: mpsc::Sender<Result<v1::BackupChunk, Status>>,
    buf: Vec<u8>,
}

impl ChunkSink {
    const SIZE: usize = 1 << 20;

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(Self::SIZE));
        self.tx
            .blocking_send(Ok(v1::BackupChunk { data }))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl std::io::Write for ChunkSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= Self::SIZE {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}
