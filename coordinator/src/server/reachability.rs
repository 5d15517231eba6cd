//! The `Reachability` RPC: a scan's reachability matrix
//! ([`crate::review::reachability`]) streamed as a header, rows in batches,
//! and a summary, read from the store in key order on a blocking thread.

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use vantage_proto::v1;
use vantage_proto::v1::reachability_event::Body;
use vantage_shared::convert::addr_to_bytes;

use crate::review::baseline::{self, Sources};
use crate::review::reachability::{Coverage, RegionState, Row, matrix};
use crate::store::{ScanRecord, Store};

/// Rows per message.
const ROW_BATCH: usize = 512;

/// The events of one scan's matrix; `status` is the scan's current status.
pub(super) fn stream(
    store: &Store,
    record: ScanRecord,
    status: v1::ScanStatus,
    inconsistent_only: bool,
) -> Result<ReceiverStream<Result<v1::ReachabilityEvent, Status>>, Status> {
    let coverage = Coverage::of(&record, &store.shards(record.id)?)
        .map_err(|e| Status::internal(format!("scan {}: stored {e}", record.id)))?;
    let regions = coverage
        .summaries()
        .into_iter()
        .map(|r| v1::RegionCoverage { region: r.region, shards_done: r.shards_done, shards_partial: r.shards_partial })
        .collect();
    let header = v1::ReachabilityHeader { scan: Some(status), regions };
    let (tx, rx) = mpsc::channel(64);
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let send = |body: Body| tx.blocking_send(Ok(v1::ReachabilityEvent { body: Some(body) })).is_ok();
        if !send(Body::Header(header)) {
            return;
        }
        let mut summary = v1::ReachabilitySummary::default();
        let mut batch = Vec::with_capacity(ROW_BATCH);
        for row in matrix(baseline::entries_of(&store, Sources::scan(&record)), &coverage) {
            let row = match row {
                Ok(row) => row,
                Err(e) => {
                    // What was found before the failure goes first, then the error.
                    if send(Body::Rows(v1::ReachabilityRows { rows: batch })) {
                        let _ = tx.blocking_send(Err(e.into()));
                    }
                    return;
                }
            };
            let inconsistent = row.is_inconsistent();
            summary.ports += 1;
            summary.inconsistent += u64::from(inconsistent);
            summary.incomplete += u64::from(row.is_incomplete());
            if inconsistent_only && !inconsistent {
                continue;
            }
            batch.push(row_to_wire(&row));
            if batch.len() == ROW_BATCH && !send(Body::Rows(v1::ReachabilityRows { rows: std::mem::take(&mut batch) }))
            {
                return;
            }
        }
        if !batch.is_empty() && !send(Body::Rows(v1::ReachabilityRows { rows: batch })) {
            return;
        }
        send(Body::Summary(summary));
    });
    Ok(ReceiverStream::new(rx))
}

fn row_to_wire(row: &Row) -> v1::ReachabilityRow {
    v1::ReachabilityRow {
        addr: addr_to_bytes(row.addr),
        proto: v1::Proto::from(row.proto) as i32,
        port: u32::from(row.port),
        states: row.states.iter().map(|s| state_to_wire(*s) as i32).collect(),
        inconsistent: row.is_inconsistent(),
    }
}

pub fn state_to_wire(s: RegionState) -> v1::RegionState {
    match s {
        RegionState::Open => v1::RegionState::Open,
        RegionState::AnswersAll => v1::RegionState::AnswersAll,
        RegionState::NotOpen => v1::RegionState::NotOpen,
        RegionState::NotScanned => v1::RegionState::NotScanned,
    }
}

/// The state a wire value names; `None` for one this build does not know.
pub fn state_from_wire(v: i32) -> Option<RegionState> {
    match v1::RegionState::try_from(v).ok()? {
        v1::RegionState::Open => Some(RegionState::Open),
        v1::RegionState::AnswersAll => Some(RegionState::AnswersAll),
        v1::RegionState::NotOpen => Some(RegionState::NotOpen),
        v1::RegionState::NotScanned => Some(RegionState::NotScanned),
        v1::RegionState::Unspecified => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_the_wire() {
        for s in [RegionState::Open, RegionState::AnswersAll, RegionState::NotOpen, RegionState::NotScanned] {
            assert_eq!(state_from_wire(state_to_wire(s) as i32), Some(s));
        }
        assert_eq!(state_from_wire(0), None);
        assert_eq!(state_from_wire(99), None);
    }
}
