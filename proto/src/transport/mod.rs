//! Transport set-up for both ends of every Vantage connection, in one place.
//!
//! The services never build channels or listeners themselves: the agent and
//! the CLI call [`connect`], the coordinator calls [`server`] and [`serve`].
//! Every connection is TLS 1.3 with certificates from the installation's CA
//! ([`tls`]); plaintext exists only when asked for ([`ClientSecurity::Insecure`],
//! [`ServerSecurity::Insecure`]) and only on loopback addresses.
//!
//! The coordinator accepts connections itself (rather than through tonic's
//! TLS settings) so that each handshake is bounded in time, a refused one is
//! logged with its reason, and the client-certificate check can consult the
//! agent registry at every handshake.

pub mod tls;

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::server::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::{Channel, Endpoint, Server, Uri, server::Router};

/// How often each side pings an idle HTTP/2 connection, and how long it waits
/// for the answer before it declares the peer dead. Agents hold one stream
/// open for days, through NAT boxes that forget quiet flows.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client must finish its TLS handshake this soon after connecting.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; more wait in the listen backlog (a flood
/// of reconnecting agents is served in turn, not all at once).
const MAX_HANDSHAKES: usize = 256;
/// Established connections waiting for the HTTP/2 server to take them.
const ACCEPTED_QUEUE: usize = 64;
/// The first byte of every TLS connection (a handshake record).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("`{url}` is not a valid coordinator address (expected https://HOST:PORT)")]
    BadUrl { url: String },
    #[error(
        "plaintext to {url} refused: --insecure works on loopback addresses only; use https:// with the \
         installation's certificates"
    )]
    InsecureNotLoopback { url: String },
    #[error("{url}: the coordinator speaks TLS (https://); plaintext (http://) needs --insecure, on loopback only")]
    PlaintextWithoutInsecure { url: String },
    #[error("cannot reach the coordinator at {url}: {}", causes(source))]
    Connect {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("refusing to serve plaintext on {addr}: --insecure works on loopback addresses only")]
    InsecureListen { addr: String },
    #[error("TLS set-up failed: {0}")]
    Tls(String),
    #[error("serving failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// An error's causes, innermost last: what a transport error means is in
/// its sources (refused connection, TLS alert, unknown CA).
fn causes(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut next = error.source();
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// How a client reaches the coordinator.
#[derive(Clone)]
pub enum ClientSecurity {
    /// TLS with this configuration (see [`tls::client_config`]).
    Tls(Arc<rustls::ClientConfig>),
    /// Plaintext HTTP/2, to a loopback address only.
    Insecure,
}

/// How the coordinator accepts connections.
#[derive(Clone)]
pub enum ServerSecurity {
    Tls(Arc<rustls::ServerConfig>),
    /// Plaintext, on a loopback listener only.
    Insecure,
}

/// Accepts `HOST:PORT` as well as a full URL; the scheme follows the security.
pub fn normalize_url(url: &str, security: &ClientSecurity) -> String {
    if url.contains("://") {
        return url.to_string();
    }
    match security {
        ClientSecurity::Tls(_) => format!("https://{url}"),
        ClientSecurity::Insecure => format!("http://{url}"),
    }
}

/// Opens a channel to a coordinator. The TLS handshake happens here; a
/// refused client certificate shows at the first call (TLS 1.3 checks it
/// after the client considers the handshake done).
pub async fn connect(
    url: &str,
    security: &ClientSecurity,
    connect_timeout: Duration,
) -> Result<Channel, TransportError> {
    let url = normalize_url(url, security);
    let bad = || TransportError::BadUrl { url: url.clone() };
    let uri: Uri = url.parse().map_err(|_| bad())?;
    let host = uri.host().ok_or_else(bad)?.trim_start_matches('[').trim_end_matches(']').to_string();
    let scheme = uri.scheme_str().unwrap_or_default().to_string();
    // tonic sees plain http either way: with TLS, the connector below does
    // it (tonic's own TLS would insist on its own configuration for https).
    let endpoint = Endpoint::from_shared(url.replacen("https://", "http://", 1))
        .map_err(|_| bad())?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true);
    let connected = match (security, scheme.as_str()) {
        (ClientSecurity::Insecure, "http") if is_loopback_host(&host) => endpoint.connect().await,
        (ClientSecurity::Insecure, _) => return Err(TransportError::InsecureNotLoopback { url }),
        (ClientSecurity::Tls(_), "http") => return Err(TransportError::PlaintextWithoutInsecure { url }),
        (ClientSecurity::Tls(config), "https") => {
            let server_name = ServerName::try_from(host).map_err(|_| bad())?;
            let connector = TlsConnector::from(config.clone());
            endpoint
                .connect_with_connector(tower::service_fn(move |uri: Uri| {
                    let connector = connector.clone();
                    let server_name = server_name.clone();
                    async move {
                        let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
                        let tcp = TcpStream::connect((host, uri.port_u16().unwrap_or(443))).await?;
                        tcp.set_nodelay(true)?;
                        let tls = connector.connect(server_name, tcp).await?;
                        Ok::<_, io::Error>(TokioIo::new(tls))
                    }
                }))
                .await
        }
        (ClientSecurity::Tls(_), _) => return Err(bad()),
    };
    connected.map_err(|source| TransportError::Connect { url, source })
}

/// Checks that plaintext to `url` is allowed: an `http://` URL of a
/// loopback address. Nothing is sent anywhere.
pub fn check_insecure_url(url: &str) -> Result<(), TransportError> {
    let url = normalize_url(url, &ClientSecurity::Insecure);
    let uri: Uri = url.parse().map_err(|_| TransportError::BadUrl { url: url.clone() })?;
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    if uri.scheme_str() == Some("http") && is_loopback_host(host) {
        Ok(())
    } else {
        Err(TransportError::InsecureNotLoopback { url })
    }
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
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
    security: ServerSecurity,
    shutdown: impl Future<Output = ()>,
) -> Result<(), TransportError> {
    let addr = listener.local_addr().map_err(|e| TransportError::InsecureListen { addr: e.to_string() })?;
    match security {
        ServerSecurity::Insecure => {
            if !addr.ip().is_loopback() {
                return Err(TransportError::InsecureListen { addr: addr.to_string() });
            }
            router.serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown).await?;
        }
        ServerSecurity::Tls(config) => {
            let (tx, rx) = mpsc::channel(ACCEPTED_QUEUE);
            let acceptor = tokio::spawn(accept_tls(listener, TlsAcceptor::from(config), tx));
            let result = router.serve_with_incoming_shutdown(ReceiverStream::new(rx), shutdown).await;
            acceptor.abort();
            result?;
        }
    }
    Ok(())
}

type Accepted = Result<TlsStream<TcpStream>, io::Error>;

/// Accepts connections and runs their handshakes, each in its own task with
/// a deadline, until the server stops taking connections.
async fn accept_tls(listener: TcpListener, acceptor: TlsAcceptor, tx: mpsc::Sender<Accepted>) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = handshakes.clone().acquire_owned().await else { return };
        let (tcp, peer) = tokio::select! {
            _ = tx.closed() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, usually: pause instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&acceptor, tcp, peer)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send(Ok(tls)).await;
                }
                Ok(Err(reason)) => tracing::warn!(%peer, %reason, "connection refused"),
                Err(_) => tracing::warn!(%peer, "connection refused: no TLS handshake within {HANDSHAKE_TIMEOUT:?}"),
            }
        });
    }
}

async fn handshake(acceptor: &TlsAcceptor, tcp: TcpStream, peer: SocketAddr) -> Result<TlsStream<TcpStream>, String> {
    let _ = tcp.set_nodelay(true);
    let mut first = [0u8; 1];
    match tcp.peek(&mut first).await {
        Ok(0) => return Err("closed before the TLS handshake".into()),
        Ok(_) if first[0] != TLS_HANDSHAKE_RECORD => {
            return Err("a plaintext (non-TLS) client: this coordinator speaks TLS only (https:// and a certificate \
                        from `vantage pki` or `vantage-agent enroll`)"
                .into());
        }
        Ok(_) => {}
        Err(e) => return Err(e.to_string()),
    }
    let tls = acceptor.accept(tcp).await.map_err(|e| format!("TLS handshake failed: {}", tls::describe(&e)))?;
    if let Some(facts) =
        tls.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(|c| crate::pki::cert_facts(c).ok())
    {
        tracing::debug!(%peer, role = %facts.role, serial = %facts.serial, "TLS client authenticated");
    }
    Ok(tls)
}
