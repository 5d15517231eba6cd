//! Reaching a coordinator: the one given with `--coordinator`, or an embedded
//! one started here.
//!
//! The embedded mode is not a special case of the services: it runs the same
//! coordinator on a loopback port and, for scans, the same agent dialling it
//! over gRPC. The only difference is who started them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vantage_agent::policy::LocalPolicy;
use vantage_agent::{Agent, AgentConfig};
use vantage_proto::pki::{Ca, Role};
use vantage_proto::transport::ClientSecurity;
use vantage_proto::transport::tls::{self, Identity};
use vantage_shared::TargetSet;

use super::{GlobalArgs, UsageError};
use crate::server::{Coordinator, CoordinatorConfig, Security};
use crate::store::StoreError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The region of the embedded agent.
pub const EMBEDDED_REGION: &str = "local";

/// A control client, and the embedded services behind it if any.
pub struct Connection {
    pub control: crate::workflow::Control,
    embedded: Option<Embedded>,
}

/// In-process services, stopped in order: the agent before the coordinator,
/// so the agent never sees its coordinator vanish.
struct Embedded {
    shutdown: CancellationToken,
    coordinator: JoinHandle<()>,
    agent: Option<(CancellationToken, JoinHandle<()>)>,
}

/// The embedded mode's certificates, made in memory for one run: the same
/// TLS as a deployment, and no other process on the machine can talk to the
/// embedded coordinator or pose as its agent.
struct EphemeralPki {
    security: Security,
    operator: ClientSecurity,
    agent: ClientSecurity,
}

impl EphemeralPki {
    const VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);
    const AGENT_ID: &str = "embedded";

    fn new() -> anyhow::Result<EphemeralPki> {
        let ca = Ca::generate("Vantage embedded CA", Self::VALIDITY)?;
        let issue = |role: Role, names: &[String]| -> anyhow::Result<Identity> {
            let cert = ca.issue(&role, &role.to_string(), names, Self::VALIDITY)?;
            Ok(Identity { cert_pem: cert.cert_pem, key_pem: cert.key_pem })
        };
        let client = |id: &Identity| -> anyhow::Result<ClientSecurity> {
            Ok(ClientSecurity::Tls(tls::client_config(ca.cert_pem(), Some(id)).context("embedded TLS")?))
        };
        let server = issue(Role::Coordinator, &["127.0.0.1".to_string()])?;
        let operator = client(&issue(Role::Operator("local".into()), &[])?)?;
        let agent = client(&issue(Role::Agent(Self::AGENT_ID.into()), &[])?)?;
        let resident = HashMap::from([(Self::AGENT_ID.to_string(), "local".to_string())]);
        let security = Security::Tls {
            ca: Arc::new(ca),
            identity: server,
            agent_cert_ttl: Self::VALIDITY,
            resident_agents: resident,
        };
        Ok(EphemeralPki { security, operator, agent })
    }
}

/// Does the command need an agent to do its work?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Agent,
    StoreOnly,
}

impl Connection {
    pub async fn open(global: &GlobalArgs, needs: Needs) -> anyhow::Result<Connection> {
        if let Some(url) = &global.coordinator {
            if global.service_probes.is_some() && needs == Needs::Agent {
                return Err(UsageError(
                    "--service-probes configures the embedded agent; with --coordinator, give it to each agent \
                     (`vantage-agent --service-probes PATH`)"
                        .into(),
                )
                .into());
            }
            let security = global.client_security()?;
            let channel = vantage_proto::transport::connect(url, &security, CONNECT_TIMEOUT).await?;
            return Ok(Connection { control: crate::workflow::over_channel(channel), embedded: None });
        }
        let scope = global.scope()?;
        // Read before anything starts, so that a bad file costs nothing.
        let service_probes = match (&global.service_probes, needs) {
            (Some(path), Needs::Agent) => {
                let (db, report) =
                    vantage_agent::config::load_service_probes(path).map_err(|e| UsageError(e.to_string()))?;
                eprintln!("{}", vantage_agent::config::load_summary(&report));
                Some(db)
            }
            _ => None,
        };
        let data_dir = global.data_dir();
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
        let pki = EphemeralPki::new()?;
        let coordinator = Coordinator::open(CoordinatorConfig::new(data_dir, scope.clone(), pki.security.clone()))
            .await
            .map_err(|e| match e {
                StoreError::Locked(_) | StoreError::NewerSchema { .. } => {
                    anyhow::Error::from(UsageError(e.to_string()))
                }
                e => e.into(),
            })?;
        let listener = TcpListener::bind("127.0.0.1:0").await.context("cannot bind a loopback port")?;
        let url = format!("https://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let coordinator = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                if let Err(e) = coordinator.serve(listener, shutdown).await {
                    tracing::error!(error = %e, "embedded coordinator failed");
                }
            }
        });
        let mut agent = None;
        if needs == Needs::Agent {
            // The local agent may scan exactly what the scope allows.
            let policy = LocalPolicy::new(scope.effective().clone(), TargetSet::default());
            let local = Agent::new(AgentConfig {
                coordinator: url.clone(),
                security: pki.agent.clone(),
                identity_dir: None,
                name: "embedded".into(),
                region: EMBEDDED_REGION.into(),
                // Shards overlap their waits for late answers.
                capacity: 4,
                max_in_flight: 8192,
                policy,
                min_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_secs(1),
                service_probes,
                user_agent: vantage_detect::protocols::http::user_agent(global.contact.as_deref())
                    .ok_or_else(|| UsageError("--contact: printable ASCII only, at most 200 bytes".into()))?
                    .into(),
                metrics_listen: None,
            });
            let agent_shutdown = CancellationToken::new();
            agent = Some((agent_shutdown.clone(), tokio::spawn(local.run(agent_shutdown))));
        }
        let channel = vantage_proto::transport::connect(&url, &pki.operator, CONNECT_TIMEOUT).await?;
        let embedded = Embedded { shutdown, coordinator, agent };
        Ok(Connection { control: crate::workflow::over_channel(channel), embedded: Some(embedded) })
    }

    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// Stops embedded services and waits for them (the store is flushed).
    pub async fn close(self) {
        let Connection { control, embedded } = self;
        // The server drains open connections on shutdown: ours must go first.
        drop(control);
        if let Some(e) = embedded {
            if let Some((agent_shutdown, agent)) = e.agent {
                agent_shutdown.cancel();
                let _ = agent.await;
            }
            e.shutdown.cancel();
            let _ = e.coordinator.await;
        }
    }
}
