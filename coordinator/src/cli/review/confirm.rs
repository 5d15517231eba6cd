//! The CLI's side of a re-probe: open a connection with an agent (embedded:
//! an in-process one) and run [`crate::workflow::reprobe`] through it.

use crate::cli::GlobalArgs;
use crate::cli::connect::{Connection, Needs};
use crate::review::confirm::Reprobe;
use crate::review::diff::Change;
use crate::workflow;
pub use crate::workflow::reprobe::{MAX_CANDIDATES, confirmable};

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
    let result = workflow::reprobe::reprobe(&mut conn.control, candidates, host_rate, scanned, &workflow::stderr).await;
    conn.close().await;
    result.map_err(crate::cli::workflow_error)
}
