//! What the HTTP integrations share: a client with the integration's
//! timeout, rustls on ring (no aws-lc; the platform's trust roots), and
//! errors that say what the far side answered without echoing secrets.

use std::time::Duration;

use reqwest::{Client, RequestBuilder, Response};

/// A delivery that did not go through; the item stays in the outbox.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{what}: {source}")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{what}: HTTP {status}: {body}")]
    Status { what: String, status: u16, body: String },
    #[error("{what}: unexpected answer: {detail}")]
    Answer { what: String, detail: String },
    #[error("{0}")]
    Config(String),
    #[error("smtp: {0}")]
    Smtp(String),
}

/// An HTTP client for one integration.
pub fn client(timeout: Duration) -> Result<Client, DeliveryError> {
    // reqwest is built without a default provider (no aws-lc); the process
    // has one at most once, and ring is the tree's provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("vantage/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| DeliveryError::Config(format!("HTTP client: {e}")))
}

/// Sends a request; a non-2xx answer is an error with the start of its body.
pub async fn send(what: &str, req: RequestBuilder) -> Result<Response, DeliveryError> {
    let resp = req.send().await.map_err(|e| DeliveryError::Http { what: what.into(), source: e.without_url() })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    Err(DeliveryError::Status { what: what.into(), status: status.as_u16(), body: body.chars().take(200).collect() })
}

/// Sends a request and reads a JSON answer.
pub async fn send_json(what: &str, req: RequestBuilder) -> Result<serde_json::Value, DeliveryError> {
    let resp = send(what, req).await?;
    resp.json().await.map_err(|e| DeliveryError::Answer { what: what.into(), detail: e.to_string() })
}
