//! `vantage results [SCAN]`: a scan's observations, from the store.

use clap::Args;
use vantage_proto::v1;
use vantage_shared::Observation;

use crate::cli::connect::{Connection, Needs};
use crate::cli::output::{ResultsFormat, print_results};
use crate::cli::{GlobalArgs, status_error};

#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// Scan id (see `vantage scan list`); the newest scan by default.
    pub scan: Option<u64>,

    /// Include closed and filtered ports that were recorded.
    #[arg(long)]
    pub all: bool,

    /// Output format of the results.
    #[arg(long, value_enum, default_value_t = ResultsFormat::Table)]
    pub format: ResultsFormat,
}

pub async fn run(global: &GlobalArgs, args: ResultsArgs) -> anyhow::Result<()> {
    let mut conn = Connection::open(global, Needs::StoreOnly).await?;
    let result = async {
        let scan_id = match args.scan {
            Some(id) => id,
            None => {
                let scans = conn.control.list_scans(v1::ListScansRequest {}).await.map_err(status_error)?.into_inner();
                let Some(last) = scans.scans.last() else {
                    return Err(crate::cli::UsageError("no scan has been run yet".into()).into());
                };
                last.scan_id
            }
        };
        let mut watch =
            conn.control.watch_scan(v1::WatchScanRequest { scan_id }).await.map_err(status_error)?.into_inner();
        let status = watch.message().await.map_err(status_error)?.unwrap_or_default();
        print(&mut conn, &status, args.all, args.format).await
    }
    .await;
    conn.close().await;
    result
}

/// Fetches and prints the observations of a scan.
pub async fn print(
    conn: &mut Connection,
    status: &v1::ScanStatus,
    all: bool,
    format: ResultsFormat,
) -> anyhow::Result<()> {
    let request = v1::ListResultsRequest { scan_id: status.scan_id, include_closed: all };
    let mut stream = conn.control.list_results(request).await.map_err(status_error)?.into_inner();
    let mut observations = Vec::new();
    while let Some(wire) = stream.message().await.map_err(status_error)? {
        observations.push(Observation::try_from(&wire)?);
    }
    print_results(format, status, &observations)
}
