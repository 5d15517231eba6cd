//! The agent's identity: enrollment, the files it keeps, and renewal.
//!
//! `vantage-agent enroll` generates a key here (it never leaves the
//! machine), sends a certificate signing request with a one-time join
//! token, and keeps what comes back in its directory:
//!
//! * `agent.pem`: its short-lived certificate and its private key, in one
//!   file (0600) so that a renewal replaces both at once;
//! * `ca.pem`: the installation's CA, the only one it trusts;
//! * `enrollment.json`: agent id, region, name and coordinator address.
//!
//! Before the join token is used, the agent checks that the coordinator it
//! reached presents the CA the token names, so a token typed at the wrong
//! address is never handed to a stranger. While running, the agent renews
//! its certificate over its authenticated connection once two thirds of its
//! life are gone, with a new key each time.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use vantage_proto::pki::{self, JoinToken};
use vantage_proto::transport::tls::{self, Identity};
use vantage_proto::transport::{self, ClientSecurity};
use vantage_proto::v1;
use vantage_proto::v1::enrollment_client::EnrollmentClient;

pub const ENV_AGENT_DIR: &str = "VANTAGE_AGENT_DIR";
const FILE_CERT: &str = "agent.pem";
const FILE_CA: &str = "ca.pem";
const FILE_ENROLLMENT: &str = "enrollment.json";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed renewal, try again this soon.
const RENEW_RETRY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "{dir}: no enrollment here ({detail}); enroll first: vantage-agent enroll --token TOKEN --coordinator \
         https://HOST:7420 (or run with --insecure against a loopback coordinator)"
    )]
    NotEnrolled { dir: String, detail: String },
    #[error("{path}: {detail}")]
    Unreadable { path: String, detail: String },
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Transport(#[from] transport::TransportError),
}

/// What enrollment decided, kept next to the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    pub agent_id: String,
    pub region: String,
    pub name: String,
    pub coordinator: String,
}

/// An agent's identity directory.
#[derive(Debug, Clone)]
pub struct IdentityDir {
    pub path: PathBuf,
}

/// An identity read from its directory.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub enrollment: Enrollment,
    pub ca_pem: String,
    pub identity: Identity,
    /// When this agent received its certificate (the file's time; the
    /// certificate's own start is backdated for clock skew).
    pub received: SystemTime,
    pub not_after: SystemTime,
}

impl Loaded {
    pub fn security(&self) -> Result<ClientSecurity, IdentityError> {
        tls::client_config(&self.ca_pem, Some(&self.identity))
            .map(ClientSecurity::Tls)
            .map_err(|e| IdentityError::Refused(format!("the stored certificate cannot be used: {e}")))
    }

    /// When to renew: two thirds into the certificate's life.
    pub fn renew_at(&self) -> SystemTime {
        let life = self.not_after.duration_since(self.received).unwrap_or_default();
        self.received + life.mul_f64(2.0 / 3.0)
    }
}

/// The default directory: `$STATE_DIRECTORY` under systemd, else the user's
/// data directory.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY") {
        return PathBuf::from(dir);
    }
    match std::env::var_os("HOME") {
        Some(home) => Path::new(&home).join(".local/share/vantage-agent"),
        None => PathBuf::from("/var/lib/vantage-agent"),
    }
}

impl IdentityDir {
    pub fn new(path: PathBuf) -> Self {
        IdentityDir { path }
    }

    fn read(&self, name: &str) -> Result<String, IdentityError> {
        let path = self.path.join(name);
        std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                IdentityError::NotEnrolled { dir: self.path.display().to_string(), detail: format!("no {name}") }
            } else {
                IdentityError::Unreadable { path: path.display().to_string(), detail: e.to_string() }
            }
        })
    }

    pub fn load(&self) -> Result<Loaded, IdentityError> {
        let enrollment: Enrollment =
            serde_json::from_str(&self.read(FILE_ENROLLMENT)?).map_err(|e| IdentityError::Unreadable {
                path: self.path.join(FILE_ENROLLMENT).display().to_string(),
                detail: e.to_string(),
            })?;
        let pem = self.read(FILE_CERT)?;
        let received = std::fs::metadata(self.path.join(FILE_CERT)).and_then(|m| m.modified()).ok();
        let identity = Identity { cert_pem: pem.clone(), key_pem: pem };
        let unreadable = |detail: String| IdentityError::Unreadable {
            path: self.path.join(FILE_CERT).display().to_string(),
            detail,
        };
        let der = pki::certs_from_pem(&identity.cert_pem, FILE_CERT).map_err(|e| unreadable(e.to_string()))?;
        let facts = pki::cert_facts(&der[0]).map_err(|e| unreadable(e.to_string()))?;
        Ok(Loaded {
            enrollment,
            ca_pem: self.read(FILE_CA)?,
            identity,
            received: received.unwrap_or(facts.not_before),
            not_after: facts.not_after,
        })
    }

    /// Writes a new certificate and key (and the rest), each file whole;
    /// the certificate and its key share one file, replaced at once.
    fn save(&self, enrollment: &Enrollment, enrolled: &v1::Enrolled, key_pem: &str) -> Result<(), IdentityError> {
        let fail = |e: std::io::Error| IdentityError::Unreadable {
            path: self.path.display().to_string(),
            detail: e.to_string(),
        };
        pki::create_private_dir(&self.path).map_err(fail)?;
        let json = serde_json::to_string_pretty(enrollment).expect("serializes");
        pki::write_file(&self.path.join(FILE_CA), &enrolled.ca_pem).map_err(fail)?;
        pki::write_file(&self.path.join(FILE_ENROLLMENT), &format!("{json}\n")).map_err(fail)?;
        pki::write_file(&self.path.join(FILE_CERT), &format!("{}{key_pem}", enrolled.cert_pem)).map_err(fail)?;
        Ok(())
    }
}

/// Enrolls with a join token; returns what the coordinator decided.
pub async fn enroll(
    dir: &IdentityDir,
    token: &str,
    coordinator: &str,
    name: &str,
) -> Result<Enrollment, IdentityError> {
    if dir.path.join(FILE_CERT).exists() {
        return Err(IdentityError::Refused(format!(
            "{} already holds an enrolled identity; use another --dir, or remove it to enroll again",
            dir.path.display()
        )));
    }
    if !pki::valid_id(name) {
        return Err(IdentityError::Refused(format!("--name `{name}`: use letters, digits, `-`, `_` and `.`")));
    }
    let token = JoinToken::parse(token).map_err(|e| IdentityError::Refused(e.to_string()))?;
    let config = tls::pinned_client_config(token.ca_fingerprint).map_err(|e| IdentityError::Refused(e.to_string()))?;
    let security = ClientSecurity::Tls(config);
    let url = transport::normalize_url(coordinator, &security);
    let channel = transport::connect(&url, &security, CONNECT_TIMEOUT).await?;
    let (key_pem, csr_pem) = pki::key_and_request(name).map_err(|e| IdentityError::Refused(e.to_string()))?;
    let request = v1::EnrollRequest {
        token: token.to_string(),
        csr_pem,
        name: name.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let enrolled = EnrollmentClient::new(channel)
        .enroll(request)
        .await
        .map_err(|s| IdentityError::Refused(format!("the coordinator refused enrollment: {}", s.message())))?
        .into_inner();
    let enrollment = Enrollment {
        agent_id: enrolled.agent_id.clone(),
        region: enrolled.region.clone(),
        name: name.to_string(),
        coordinator: url,
    };
    dir.save(&enrollment, &enrolled, &key_pem)?;
    Ok(enrollment)
}

/// The security every new connection uses; renewal swaps it.
pub type SharedSecurity = Arc<RwLock<ClientSecurity>>;

/// Renews the certificate in `dir` whenever it is due, until `shutdown`.
pub async fn keep_renewed(dir: IdentityDir, security: SharedSecurity, shutdown: CancellationToken) {
    loop {
        let wait = match dir.load() {
            Ok(loaded) => loaded.renew_at().duration_since(SystemTime::now()).unwrap_or_default(),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the agent's identity");
                RENEW_RETRY
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let Ok(loaded) = dir.load() else { continue };
        if SystemTime::now() < loaded.renew_at() {
            continue;
        }
        match renew(&dir, &loaded).await {
            Ok(renewed) => match renewed.security() {
                Ok(new) => {
                    *security.write().unwrap_or_else(|p| p.into_inner()) = new;
                    tracing::info!(
                        until = %humantime::format_rfc3339_seconds(renewed.not_after),
                        "certificate renewed"
                    );
                }
                Err(e) => tracing::error!(error = %e, "renewed certificate unusable"),
            },
            Err(e) => {
                let left = loaded.not_after.duration_since(SystemTime::now()).unwrap_or_default();
                tracing::warn!(error = %e, expires_in = %humantime::format_duration(Duration::from_secs(left.as_secs())), "certificate renewal failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(RENEW_RETRY) => {}
                }
            }
        }
    }
}

/// Asks for a certificate for a new key, on a connection made with the current one.
async fn renew(dir: &IdentityDir, current: &Loaded) -> Result<Loaded, IdentityError> {
    let security = current.security()?;
    let channel = transport::connect(&current.enrollment.coordinator, &security, CONNECT_TIMEOUT).await?;
    let (key_pem, csr_pem) =
        pki::key_and_request(&current.enrollment.name).map_err(|e| IdentityError::Refused(e.to_string()))?;
    let enrolled = EnrollmentClient::new(channel)
        .renew(v1::RenewRequest { csr_pem })
        .await
        .map_err(|s| IdentityError::Refused(format!("the coordinator refused renewal: {}", s.message())))?
        .into_inner();
    dir.save(&current.enrollment, &enrolled, &key_pem)?;
    dir.load()
}
