//! How the ingest check reaches the coordinator. Every client channel of
//! the check (the operator's and each simulated agent's) is opened by
//! [`channel`], so that the check speaks whatever transport the real agent
//! speaks. It runs `--insecure` (plain HTTP/2 on loopback) for now: the 50
//! simulated agents would each need an enrollment to show a certificate,
//! and the figure is bound by the store, not the transport.

use std::time::Duration;

use tonic::transport::Channel;
use vantage_proto::transport::TransportError;

/// Gives up on one connection attempt after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a channel to the coordinator at `url` (a loopback address).
pub async fn channel(url: &str) -> Result<Channel, TransportError> {
    vantage_proto::transport::connect(url, &vantage_proto::transport::ClientSecurity::Insecure, CONNECT_TIMEOUT).await
}
