//! The review's multi-step work, as calls on the Control API: re-probing
//! ports from every live region, verifying findings, and a whole review
//! (scan, re-probe the closures, judge).
//!
//! Why here and not in the CLI: the operator CLI and the coordinator's own
//! schedule (`crate::schedule`) run the same steps, and the steps are only
//! trustworthy if there is one copy of them. Both talk to a coordinator
//! through [`Control`], a Control client that is either a gRPC channel (the
//! CLI, embedded or remote) or the coordinator's own service called in
//! process (the schedule inside `vantage serve`): the same requests, the same
//! checks, no second path into the store.
//!
//! * [`scan`]: start a scan, wait for its end, read its results.
//! * [`reprobe`]: a low-rate verification scan of some ports from every live region.
//! * [`verify`]: re-probe findings' ports and record the verdict on each.
//! * [`review`]: a period's review: optional scan, re-probe what would be
//!   remediated, judge.

pub mod reprobe;
pub mod review;
pub mod scan;
pub mod verify;

use tonic::body::Body;
use tonic::codegen::http;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;
use vantage_proto::v1::control_client::ControlClient;
use vantage_proto::v1::control_server::ControlServer;

use crate::server::control::ControlService;

/// A failure below the Control API (a lost connection). A concrete type, not
/// a boxed `dyn Error`: futures holding the client stay provably `Send`.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct TransportError(Box<dyn std::error::Error + Send + Sync>);

/// The transport under [`Control`]: a channel or the service itself.
pub type ControlTransport = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, TransportError>;

/// A Control API client, remote or in process.
pub type Control = ControlClient<ControlTransport>;

/// A client over a gRPC channel (TLS or not, as the channel was made).
pub fn over_channel(channel: tonic::transport::Channel) -> Control {
    let channel = ServiceExt::<http::Request<Body>>::map_err(channel, |e| TransportError(Box::new(e)));
    ControlClient::new(BoxCloneSyncService::new(channel))
}

/// A client that calls the coordinator's own service in this process: the
/// schedule's, trusted as the coordinator itself (no certificate to show).
pub fn in_process(service: ControlService) -> Control {
    let server = ControlServer::new(service);
    let server = ServiceExt::<http::Request<Body>>::map_err(server, |never| -> TransportError { match never {} });
    ControlClient::new(BoxCloneSyncService::new(server))
}

/// Where the steps say what they do: stderr for the CLI, the log for the schedule.
pub type Say<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// A [`Say`] into the log, for work nobody watches live.
pub fn log(message: &str) {
    tracing::info!("{message}");
}

/// A [`Say`] onto stderr, for the operator at the terminal.
pub fn stderr(message: &str) {
    eprintln!("{message}");
}

/// A refusal or failure of the coordinator, kept as the status it was.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("{0}")]
    Status(#[from] tonic::Status),
    #[error("{0}")]
    Invalid(String),
    #[error("scan {0} ended before it finished (the coordinator stopped?)")]
    Unfinished(u64),
}
