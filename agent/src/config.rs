//! Agent configuration: command-line flags with environment fallbacks (and a
//! configuration file, [`crate::config_file`]), validated once into an
//! [`AgentConfig`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use clap::builder::{ArgAction, BoolishValueParser};
use vantage_detect::nmap::{LoadReport, ProbeDb};
use vantage_shared::{TargetSet, TargetSpec};

use vantage_proto::transport::ClientSecurity;

use crate::identity::{self, ENV_AGENT_DIR, IdentityDir, IdentityError};
use crate::policy::LocalPolicy;

pub const ENV_COORDINATOR: &str = "VANTAGE_COORDINATOR";
pub const ENV_REGION: &str = "VANTAGE_REGION";
pub const ENV_AGENT_NAME: &str = "VANTAGE_AGENT_NAME";
pub const ENV_ALLOW: &str = "VANTAGE_AGENT_ALLOW";
pub const ENV_DENY: &str = "VANTAGE_AGENT_DENY";
pub const ENV_SERVICE_PROBES: &str = "VANTAGE_SERVICE_PROBES";
pub const ENV_CONTACT: &str = "VANTAGE_CONTACT";
pub const ENV_INSECURE: &str = "VANTAGE_AGENT_INSECURE";
pub const ENV_CAPACITY: &str = "VANTAGE_AGENT_CAPACITY";
pub const ENV_MAX_IN_FLIGHT: &str = "VANTAGE_AGENT_MAX_IN_FLIGHT";

/// Flags of `vantage-agent`.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// Coordinator to dial out to [default: the one it enrolled with].
    #[arg(long, env = ENV_COORDINATOR, value_name = "URL")]
    pub coordinator: Option<String>,

    /// Where enrollment left this agent's certificate, key and CA.
    #[arg(long, env = ENV_AGENT_DIR, value_name = "DIR", default_value_os_t = identity::default_dir())]
    pub dir: PathBuf,

    /// Plaintext, without certificates: only to a coordinator on a loopback
    /// address that runs `vantage serve --insecure` (tests, a laptop).
    #[arg(long, env = ENV_INSECURE, action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub insecure: bool,

    /// Region this agent scans from, with --insecure only: an enrolled
    /// agent's region is the one its join token was made for.
    #[arg(long, env = ENV_REGION, value_name = "REGION")]
    pub region: Option<String>,

    /// Agent name; defaults to the host name.
    #[arg(long, env = ENV_AGENT_NAME, value_name = "NAME")]
    pub name: Option<String>,

    /// Addresses this agent may ever scan, whatever the coordinator says
    /// (targets syntax: 198.18.0.0/15, 127.0.0.1, ...). Default: loopback only.
    #[arg(long, env = ENV_ALLOW, value_name = "TARGETS", default_value = "127.0.0.0/8,::1")]
    pub allow: String,

    /// Addresses this agent never scans, even inside --allow.
    #[arg(long, env = ENV_DENY, value_name = "TARGETS", default_value = "")]
    pub deny: String,

    /// Whom to contact about this scanner (an address or URL), sent where the
    /// protocol has a place for it: `User-Agent: Vantage/VERSION (+CONTACT)`
    /// in HTTP probes, as responsible scanners do.
    #[arg(long, env = ENV_CONTACT, value_name = "CONTACT")]
    pub contact: Option<String>,

    /// Shards to run at once.
    #[arg(long, env = ENV_CAPACITY, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), default_value_t = 2)]
    pub capacity: u32,

    /// Upper bound on probes in flight per shard (the assignment may ask for fewer).
    #[arg(long, env = ENV_MAX_IN_FLIGHT, value_name = "N", default_value_t = 8192)]
    pub max_in_flight: u32,

    /// An nmap-service-probes file (Debian's nmap installs
    /// /usr/share/nmap/nmap-service-probes): its probes and match lines are
    /// used next to Vantage's own detection. Vantage does not ship one.
    #[arg(long, env = ENV_SERVICE_PROBES, value_name = "PATH")]
    pub service_probes: Option<PathBuf>,

    /// Serve Prometheus metrics (`/metrics`), `/healthz` and `/readyz` (ready while
    /// connected to the coordinator) over plain HTTP on this address. Off by default;
    /// keep it on a private or loopback address.
    #[arg(long, env = crate::endpoint::ENV_AGENT_METRICS_LISTEN, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<SocketAddr>,
}

/// A validated agent configuration.
#[derive(Clone)]
pub struct AgentConfig {
    pub coordinator: String,
    /// TLS with the agent's certificate, or plaintext (loopback only).
    pub security: ClientSecurity,
    /// Where the certificate lives, to renew it (enrolled agents only).
    pub identity_dir: Option<IdentityDir>,
    pub name: String,
    pub region: String,
    pub capacity: u32,
    pub max_in_flight: u32,
    pub policy: LocalPolicy,
    /// Pause after a failed connection, doubled up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// nmap's probes and match lines, when a file was given.
    pub service_probes: Option<Arc<ProbeDb>>,
    /// The User-Agent of HTTP probes.
    pub user_agent: Arc<str>,
    /// Where to serve metrics and health (`--metrics-listen`), if anywhere.
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--allow: {0}")]
    Allow(vantage_shared::target::TargetError),
    #[error("--deny: {0}")]
    Deny(vantage_shared::target::TargetError),
    #[error("--allow must name at least one address")]
    EmptyAllow,
    #[error("--contact: printable ASCII only, at most 200 bytes (it goes into protocol headers)")]
    Contact,
    #[error("--region must not be empty")]
    Region,
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("{0}")]
    Insecure(String),
    #[error("--coordinator is needed with --insecure")]
    NoCoordinator,
    #[error("this agent is enrolled for region {enrolled}; --region is for --insecure agents only")]
    RegionOfEnrolled { enrolled: String },
    #[error("--service-probes {path}: {source}")]
    ServiceProbes { path: String, source: std::io::Error },
}

impl AgentArgs {
    pub fn validate(self) -> Result<AgentConfig, ConfigError> {
        let allow = TargetSpec::parse(&self.allow).map_err(ConfigError::Allow)?.resolve();
        let deny = TargetSet::parse(&self.deny).map_err(ConfigError::Deny)?;
        if allow.is_empty() {
            return Err(ConfigError::EmptyAllow);
        }
        let (coordinator, security, identity_dir, region, name) = if self.insecure {
            let coordinator = self.coordinator.ok_or(ConfigError::NoCoordinator)?;
            vantage_proto::transport::check_insecure_url(&coordinator)
                .map_err(|e| ConfigError::Insecure(e.to_string()))?;
            let region = self.region.unwrap_or_else(|| "local".into());
            (coordinator, ClientSecurity::Insecure, None, region, self.name.unwrap_or_else(default_name))
        } else {
            let dir = IdentityDir::new(self.dir);
            let loaded = dir.load()?;
            let e = &loaded.enrollment;
            if self.region.is_some_and(|r| r != e.region) {
                return Err(ConfigError::RegionOfEnrolled { enrolled: e.region.clone() });
            }
            let coordinator = self.coordinator.unwrap_or_else(|| e.coordinator.clone());
            (coordinator, loaded.security()?, Some(dir), e.region.clone(), self.name.unwrap_or_else(|| e.name.clone()))
        };
        if region.trim().is_empty() {
            return Err(ConfigError::Region);
        }
        let user_agent =
            vantage_detect::protocols::http::user_agent(self.contact.as_deref()).ok_or(ConfigError::Contact)?;
        Ok(AgentConfig {
            coordinator,
            security,
            identity_dir,
            name,
            region,
            capacity: self.capacity,
            max_in_flight: self.max_in_flight.max(1),
            policy: LocalPolicy::new(allow, deny),
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            service_probes: self.service_probes.as_deref().map(load_service_probes).transpose()?.map(|(db, _)| db),
            user_agent: user_agent.into(),
            metrics_listen: self.metrics_listen,
        })
    }
}

/// Checks of the configuration file's values ([`crate::cli::schema`]),
/// with the same parsers as [`AgentArgs::validate`].
pub fn check_allow(text: &str) -> Result<(), String> {
    let allow = TargetSpec::parse(text).map_err(|e| e.to_string())?.resolve();
    if allow.is_empty() { Err(ConfigError::EmptyAllow.to_string()) } else { Ok(()) }
}

pub fn check_deny(text: &str) -> Result<(), String> {
    TargetSet::parse(text).map(drop).map_err(|e| e.to_string())
}

pub fn check_contact(text: &str) -> Result<(), String> {
    vantage_detect::protocols::http::user_agent(Some(text)).map(drop).ok_or_else(|| ConfigError::Contact.to_string())
}

/// A coordinator's address: a URL with a host (`https://HOST:PORT`) or `HOST:PORT`.
pub fn check_coordinator(text: &str) -> Result<(), String> {
    let url = vantage_proto::transport::normalize_url(text, &ClientSecurity::Insecure);
    let uri: tonic::codegen::http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("https" | "http"), Some(_)) => Ok(()),
        _ => Err("expected https://HOST:PORT".into()),
    }
}

/// A file that exists (it is read at start-up).
pub fn check_file(text: &str) -> Result<(), String> {
    match std::fs::metadata(text) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(format!("{text} is not a file")),
        Err(e) => Err(format!("{text}: {e}")),
    }
}

/// Loads an nmap-service-probes file and logs what loaded. Lines that
/// cannot be used are listed (a few at most) and left out; the rest is used.
pub fn load_service_probes(path: &Path) -> Result<(Arc<ProbeDb>, LoadReport), ConfigError> {
    let started = std::time::Instant::now();
    let (db, report) = ProbeDb::load(path)
        .map_err(|source| ConfigError::ServiceProbes { path: path.display().to_string(), source })?;
    tracing::info!(path = %path.display(), elapsed = ?started.elapsed(), "{}", load_summary(&report));
    for problem in report.patterns_failed.iter().chain(&report.errors).take(5) {
        tracing::warn!(path = %path.display(), "{problem}");
    }
    Ok((Arc::new(db), report))
}

/// One line on what an nmap-service-probes file gave.
pub fn load_summary(report: &LoadReport) -> String {
    let patterns = report.match_lines + report.softmatch_lines;
    format!(
        "nmap service probes: {} probes, {} of {} match patterns compiled, {} lines left out",
        report.probes,
        report.patterns_compiled,
        patterns,
        report.patterns_failed.len() + report.errors.len()
    )
}

pub fn default_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "agent".to_string())
}
