//! The ops endpoint both binaries serve on an opt-in address: `/metrics`
//! (OpenMetrics text for Prometheus), `/healthz` and `/readyz`.
//!
//! It is plain HTTP on its own listener, apart from the gRPC port: scrapers
//! and load balancers speak neither mTLS nor gRPC. What "ready" means is the
//! binary's business ([`Status`]); this module only answers for it. It lives
//! in the agent crate because the coordinator already depends on it for its
//! process plumbing, so the code exists once.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The environment variable of the agent's `--metrics-listen`.
pub const ENV_AGENT_METRICS_LISTEN: &str = "VANTAGE_AGENT_METRICS_LISTEN";
/// The environment variable of `vantage serve --metrics-listen`.
pub const ENV_METRICS_LISTEN: &str = "VANTAGE_METRICS_LISTEN";

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the endpoint asks its binary at each request.
pub trait Status: Send + Sync + 'static {
    /// Brings scrape-time values (sizes, counts of live things) up to date.
    fn refresh(&self) {}
    /// `Err(reason)` while the process cannot do its job yet (or any more).
    fn ready(&self) -> Result<(), String>;
}

#[derive(Clone)]
struct Shared {
    registry: Arc<Registry>,
    status: Arc<dyn Status>,
    /// Cancelled when the process is stopping: health turns 503.
    shutdown: CancellationToken,
}

/// Binds the endpoint's listener (so that a busy port fails at start-up) and
/// serves it in a task named `ops-endpoint` until `shutdown` fires.
pub async fn spawn(
    addr: SocketAddr,
    registry: Arc<Registry>,
    status: Arc<dyn Status>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(metrics.listen = %local, "ops endpoint serving /metrics, /healthz, /readyz");
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Shared { registry, status, shutdown: shutdown.clone() });
    let serve = async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await {
            tracing::warn!(error = %e, "ops endpoint failed");
        }
    };
    tokio::spawn(tracing::Instrument::instrument(serve, tracing::info_span!("ops-endpoint")));
    Ok(local)
}

async fn metrics(State(s): State<Shared>) -> Response {
    s.status.refresh();
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &s.registry) {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS)], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode metrics: {e}\n")).into_response(),
    }
}

async fn healthz(State(s): State<Shared>) -> Response {
    if s.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    (StatusCode::OK, "ok\n").into_response()
}

async fn readyz(State(s): State<Shared>) -> Response {
    if s.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match s.status.ready() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}
