//! The coordinator service (`vantage serve`): agents on one side, operators
//! on the other, the store underneath.
//!
//! * [`planner`]: request → scope check → scan and shard records.
//! * [`scheduler`]: leases, epochs, dispatch, progress.
//! * [`agent_link`]: the agents' streams and ingest.
//! * [`control`]: the operators' API.
//! * [`enrollment`]: join tokens in, agent certificates out.
//! * [`trust`]: who may call what (certificates, the agent registry).
//! * [`metrics`]: Prometheus metrics and readiness (`serve --metrics-listen`).
//! * [`reachability`]: a scan's ports from every region, as the `Reachability` RPC streams them.
//!
//! [`Coordinator::open`] opens the store and resumes unfinished scans;
//! [`Coordinator::serve`] runs until the shutdown token fires, with the
//! review schedule ([`crate::schedule`]) when one is configured: it calls
//! the control service in process, as an operator would over gRPC. The embedded
//! mode of the CLI runs exactly this, on a loopback port.

pub mod agent_link;
pub mod control;
pub mod enrollment;
pub mod metrics;
pub mod planner;
pub mod reachability;
pub mod review;
pub mod scheduler;
pub mod trust;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vantage_proto::pki::Ca;
use vantage_proto::transport::ServerSecurity;
use vantage_proto::transport::tls::{self, Identity};
use vantage_proto::v1::agent_link_server::AgentLinkServer;
use vantage_proto::v1::control_server::ControlServer;
use vantage_proto::v1::enrollment_server::EnrollmentServer;
use vantage_shared::Scope;

use crate::store::{Store, StoreError};
use agent_link::AgentLinkService;
use control::ControlService;
use enrollment::EnrollmentService;
use scheduler::Scheduler;
use trust::{Trust, TrustMode};

/// How often leases are checked for expiry.
const LEASE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Everything `vantage serve` needs, validated.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub data_dir: PathBuf,
    pub scope: Scope,
    /// Probes per shard when fixed; `None` sizes each scan's shards to take
    /// about half a minute at the pace its agents showed.
    pub shard_probes: Option<u64>,
    /// A lease without progress for this long goes to another agent.
    pub lease: Duration,
    pub security: Security,
    /// The delivery of tickets and notifications (`crate::notify`).
    pub notify: crate::notify::NotifierConfig,
    /// Scheduled reviews, reminders and re-checks (`crate::schedule`);
    /// `None` for the CLI's embedded coordinator.
    pub schedule: Option<crate::schedule::ScheduleConfig>,
}

/// How the coordinator proves itself and checks its callers.
#[derive(Clone)]
pub enum Security {
    Tls {
        ca: Arc<Ca>,
        /// The coordinator's own certificate and key.
        identity: Identity,
        /// How long agent certificates last (agents renew at two thirds).
        agent_cert_ttl: Duration,
        /// Agents that need no enrollment (the embedded mode's own): id → region.
        resident_agents: HashMap<String, String>,
    },
    /// Plaintext, loopback only.
    Insecure,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys stay out of logs.
        f.write_str(match self {
            Security::Tls { .. } => "Tls(..)",
            Security::Insecure => "Insecure",
        })
    }
}

impl CoordinatorConfig {
    pub fn new(data_dir: PathBuf, scope: Scope, security: Security) -> Self {
        CoordinatorConfig {
            data_dir,
            scope,
            shard_probes: None,
            lease: Duration::from_secs(60),
            security,
            notify: crate::notify::NotifierConfig::default(),
            schedule: None,
        }
    }
}

/// An opened coordinator, ready to serve.
pub struct Coordinator {
    cfg: CoordinatorConfig,
    store: Store,
    scheduler: Arc<Scheduler>,
    /// True while the gRPC listener accepts (readiness).
    serving: Arc<AtomicBool>,
}

impl Coordinator {
    pub async fn open(cfg: CoordinatorConfig) -> Result<Coordinator, StoreError> {
        let store = Store::open(&cfg.data_dir)?;
        let scheduler = Arc::new(Scheduler::new(store.clone(), cfg.lease));
        let resumed = scheduler.restore().await?;
        if resumed > 0 {
            tracing::info!(scans = resumed, "resuming unfinished scans");
        }
        Ok(Coordinator { cfg, store, scheduler, serving: Arc::default() })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves metrics and health over HTTP on `addr` until `shutdown`;
    /// returns the address bound.
    pub async fn serve_metrics(&self, addr: SocketAddr, shutdown: &CancellationToken) -> std::io::Result<SocketAddr> {
        let status = metrics::CoordinatorStatus {
            scheduler: self.scheduler.clone(),
            store: self.store.clone(),
            serving: self.serving.clone(),
        };
        let registry = self.scheduler.metrics().registry();
        vantage_agent::endpoint::spawn(addr, registry, Arc::new(status), shutdown.clone()).await
    }

    /// Serves agents and operators on `listener` until `shutdown` fires.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), vantage_proto::transport::TransportError> {
        let addr = listener.local_addr().ok();
        let (trust, security) = match &self.cfg.security {
            Security::Insecure => {
                (Trust::new(self.store.clone(), TrustMode::Insecure, HashMap::new()), ServerSecurity::Insecure)
            }
            Security::Tls { ca, identity, agent_cert_ttl, resident_agents } => {
                let mode = TrustMode::Tls { ca: ca.clone(), agent_cert_ttl: *agent_cert_ttl };
                let trust = Trust::new(self.store.clone(), mode, resident_agents.clone());
                let config = tls::server_config(ca.cert_pem(), identity, Arc::new(trust.clone()))
                    .map_err(|e| vantage_proto::transport::TransportError::Tls(e.to_string()))?;
                (trust, ServerSecurity::Tls(config))
            }
        };
        let agent_link = AgentLinkService {
            scheduler: self.scheduler.clone(),
            trust: trust.clone(),
            store: self.store.clone(),
            shutdown: shutdown.clone(),
        };
        let control = ControlService {
            scheduler: self.scheduler.clone(),
            store: self.store.clone(),
            scope: Arc::new(self.cfg.scope.clone()),
            shard_probes: self.cfg.shard_probes,
            trust: trust.clone(),
        };
        // The schedule calls the same service in process, as the coordinator itself.
        let schedule = self.cfg.schedule.clone().map(|cfg| {
            let service = crate::schedule::ScheduleService::new(
                cfg,
                self.store.clone(),
                crate::workflow::in_process(control.clone()),
            );
            tokio::spawn(tracing::Instrument::instrument(
                service.run(shutdown.clone()),
                tracing::info_span!("schedule"),
            ))
        });
        let operators = trust.clone();
        let control = ControlServer::with_interceptor(control, move |req: tonic::Request<()>| {
            operators.operator(&req)?;
            Ok(req)
        });
        let expiry = tokio::spawn(expire_leases(self.scheduler.clone(), shutdown.clone()));
        // Drains due deliveries for its grace period after shutdown, before the final flush.
        let notifier = crate::notify::Notifier::new(self.store.clone(), self.cfg.notify);
        let notifier = tokio::spawn(tracing::Instrument::instrument(
            notifier.run(shutdown.clone()),
            tracing::info_span!("notify"),
        ));
        let router = vantage_proto::transport::server()
            .add_service(AgentLinkServer::new(agent_link))
            .add_service(control)
            .add_service(EnrollmentServer::new(EnrollmentService { trust: trust.clone() }));
        tracing::info!(listen = ?addr, tls = !trust.is_insecure(), scope = %self.cfg.scope, data_dir = %self.cfg.data_dir.display(), "coordinator serving");
        self.serving.store(true, Ordering::Release);
        let result = vantage_proto::transport::serve(router, listener, security, shutdown.cancelled_owned()).await;
        self.serving.store(false, Ordering::Release);
        expiry.abort();
        if let Some(schedule) = schedule {
            // It holds the store through its in-process client.
            let _ = schedule.await;
        }
        let _ = notifier.await;
        // Wait for it to be dropped: it holds the store (through the scheduler),
        // and the next process or embedded run cannot open the store until then.
        let _ = expiry.await;
        if let Err(e) = self.store.flush().await {
            tracing::error!(error = %e, "final flush failed");
        }
        result
    }
}

async fn expire_leases(scheduler: Arc<Scheduler>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(LEASE_CHECK_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return scheduler.stop(),
            _ = tick.tick() => scheduler.expire_leases(),
        }
    }
}

#[cfg(test)]
mod tests;
