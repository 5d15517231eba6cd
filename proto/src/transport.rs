//! Transport set-up for both ends of every Vantage connection, in one place.
//!
//! The services never build channels or listeners themselves: the agent and
//! the CLI call [`connect`], the coordinator calls [`server`] and
//! [`serve`]. TLS (issue: the fleet) plugs in here without touching them.

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Endpoint, Server, server::Router};

/// How often each side pings an idle HTTP/2 connection, and how long it waits
/// for the answer before it declares the peer dead. Agents hold one stream
/// open for days, through NAT boxes that forget quiet flows.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("`{url}` is not a valid coordinator address (expected http://HOST:PORT)")]
    BadUrl { url: String },
    #[error("cannot reach the coordinator at {url}")]
    Connect {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("serving failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Accepts `HOST:PORT` as well as a full URL.
pub fn normalize_url(url: &str) -> String {
    if url.contains("://") { url.to_string() } else { format!("http://{url}") }
}

/// Opens a channel to a coordinator.
pub async fn connect(url: &str, connect_timeout: Duration) -> Result<Channel, TransportError> {
    let url = normalize_url(url);
    let endpoint = Endpoint::from_shared(url.clone()).map_err(|_| TransportError::BadUrl { url: url.clone() })?;
    endpoint
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .connect()
        .await
        .map_err(|source| TransportError::Connect { url, source })
}

/// A server builder with the settings every coordinator listener uses.
pub fn server() -> Server {
    Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
}

/// Serves `router` on an already bound listener until `shutdown` resolves.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), TransportError> {
    router.serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown).await?;
    Ok(())
}
