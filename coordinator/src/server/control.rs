//! The operators' side of the coordinator: start, watch and read scans.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use vantage_proto::v1;
use vantage_proto::v1::control_server::Control;
use vantage_shared::{PortState, Scope};

use super::planner;
use super::scheduler::{Scheduler, status_of};
use crate::store::{ShardState, ShardStats, Store, StoreError};

pub struct ControlService {
    pub scheduler: Arc<Scheduler>,
    pub store: Store,
    pub scope: Arc<Scope>,
    pub shard_probes: u64,
}

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Self {
        Status::internal(e.to_string())
    }
}

type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Control for ControlService {
    async fn start_scan(&self, req: Request<v1::StartScanRequest>) -> Result<Response<v1::StartScanResponse>, Status> {
        let req = req.into_inner();
        let mut plan = planner::plan(&req, &self.scope, self.shard_probes).inspect_err(|e| {
            tracing::info!(error = %e, targets = %req.targets, "scan refused");
        })?;
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
        Ok(Response::new(v1::ListAgentsResponse { agents: self.scheduler.agents() }))
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
}

impl ControlService {
    fn stored_status(&self, scan_id: u64) -> Result<v1::ScanStatus, Status> {
        let record = self.store.scan(scan_id)?.ok_or_else(|| Status::not_found(format!("no scan {scan_id}")))?;
        let mut done = ShardStats::default();
        let mut shards_done = 0;
        for shard in self.store.shards(scan_id)? {
            if let ShardState::Done { stats, .. } = shard.state {
                shards_done += 1;
                done.add(&stats);
            }
        }
        Ok(status_of(&record, shards_done, &done))
    }
}
