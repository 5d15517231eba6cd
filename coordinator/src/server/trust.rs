//! Who may talk to the coordinator, and as what.
//!
//! Three kinds of caller, told apart by their client certificate
//! ([`vantage_proto::pki::Role`]): agents (the agent link, certificate
//! renewal), operators (the control API) and callers without a certificate
//! (enrollment only, with a one-time join token). The checks run twice: at
//! every TLS handshake ([`ClientGate`]: an agent must be enrolled and not
//! revoked) and at every call or stream ([`Trust::agent`],
//! [`Trust::operator`]), so a revocation also ends what is already open.
//! Every refusal is logged with its reason.
//!
//! `--insecure` (loopback only) turns all of this off: there are no
//! certificates, so every caller may do everything.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tonic::{Request, Status};
use vantage_proto::pki::{self, Ca, CertFacts, JoinToken, Role};
use vantage_proto::transport::tls::{self, ClientGate};
use vantage_proto::v1;
use vantage_shared::convert::time_to_wire;

use crate::store::{AgentRecord, Revocation, Store, TokenRecord};

/// The longest a join token may live.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// How the coordinator authenticates its callers.
pub enum TrustMode {
    /// Certificates from `ca`; agents get certificates valid for `agent_cert_ttl`.
    Tls { ca: Arc<Ca>, agent_cert_ttl: Duration },
    /// Plaintext on loopback: no identities at all.
    Insecure,
}

/// The registry check, shared by the TLS gate and the services.
#[derive(Clone)]
pub struct Trust {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    mode: TrustMode,
    /// Agents known without enrollment (the embedded mode's own agent): id → region.
    resident: HashMap<String, String>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Trust(..)")
    }
}

/// An agent as the coordinator knows it: id from its certificate, region
/// from its enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    pub id: String,
    pub region: String,
}

impl Trust {
    pub fn new(store: Store, mode: TrustMode, resident: HashMap<String, String>) -> Trust {
        Trust { inner: Arc::new(Inner { store, mode, resident }) }
    }

    pub fn is_insecure(&self) -> bool {
        matches!(self.inner.mode, TrustMode::Insecure)
    }

    fn ca(&self) -> Result<(&Ca, Duration), Status> {
        match &self.inner.mode {
            TrustMode::Tls { ca, agent_cert_ttl } => Ok((ca, *agent_cert_ttl)),
            TrustMode::Insecure => {
                Err(Status::failed_precondition("this coordinator runs --insecure: it has no CA to enroll agents with"))
            }
        }
    }

    /// An agent's standing now: enrolled (or resident) and not revoked.
    fn standing(&self, id: &str) -> Result<AgentIdentity, String> {
        if let Some(region) = self.inner.resident.get(id) {
            return Ok(AgentIdentity { id: id.to_string(), region: region.clone() });
        }
        match self.inner.store.agent(id) {
            Ok(Some(AgentRecord { revoked: Some(r), .. })) => {
                Err(format!("agent {id} was revoked {} ({})", humantime::format_rfc3339_seconds(r.at), r.reason))
            }
            Ok(Some(a)) => Ok(AgentIdentity { id: a.id, region: a.region }),
            Ok(None) => Err(format!("agent {id} is not enrolled here")),
            Err(e) => Err(format!("cannot read the agent registry: {e}")),
        }
    }

    /// The agent a request comes from, still in good standing; `None` when
    /// the coordinator runs without TLS.
    pub fn agent<T>(&self, req: &Request<T>, what: &str) -> Result<Option<AgentIdentity>, Status> {
        if self.is_insecure() {
            return Ok(None);
        }
        let refuse = |reason: String| {
            tracing::warn!(peer = ?tls::remote_addr(req), %reason, "{what} refused");
            Status::permission_denied(reason)
        };
        match tls::peer(req) {
            Some(CertFacts { role: Role::Agent(id), .. }) => self.standing(&id).map(Some).map_err(refuse),
            Some(facts) => Err(refuse(format!("{what} is for agents; this is the certificate of {}", facts.role))),
            None => Err(refuse(format!("{what} needs an agent certificate (enroll with `vantage-agent enroll`)"))),
        }
    }

    /// Checks that a request comes from an operator.
    pub fn operator<T>(&self, req: &Request<T>) -> Result<(), Status> {
        if self.is_insecure() {
            return Ok(());
        }
        let reason = match tls::peer(req) {
            Some(CertFacts { role: Role::Operator(_), .. }) => return Ok(()),
            Some(facts) => format!("the operator API is for operators; this is the certificate of {}", facts.role),
            None => {
                "the operator API needs an operator certificate (from `vantage pki init` or `vantage pki operator`)"
                    .to_string()
            }
        };
        tracing::warn!(peer = ?tls::remote_addr(req), %reason, "operator call refused");
        Err(Status::permission_denied(reason))
    }

    /// A one-time join token for an agent of `region`.
    pub fn create_token(&self, region: &str, ttl: Duration) -> Result<v1::JoinToken, Status> {
        let (ca, _) = self.ca()?;
        if !pki::valid_id(region) {
            return Err(Status::invalid_argument(format!(
                "region `{region}`: use letters, digits, `-`, `_` and `.` (e.g. eu-west)"
            )));
        }
        if ttl.is_zero() || ttl > MAX_TOKEN_TTL {
            return Err(Status::invalid_argument("--ttl must be more than 0 and at most 7 days"));
        }
        let token = JoinToken::generate(ca.fingerprint());
        let now = SystemTime::now();
        let record = TokenRecord { region: region.to_string(), created_at: now, expires_at: now + ttl, used: None };
        self.inner.store.put_token(&token.secret_hash(), &record)?;
        tracing::info!(region, expires = %humantime::format_rfc3339_seconds(record.expires_at), "join token created");
        Ok(v1::JoinToken {
            token: token.to_string(),
            region: region.to_string(),
            expires_at: Some(time_to_wire(record.expires_at)),
        })
    }

    /// Enrolls an agent: redeems its token and signs its key.
    pub async fn enroll(&self, req: &Request<v1::EnrollRequest>) -> Result<v1::Enrolled, Status> {
        let (ca, ttl) = self.ca()?;
        let body = req.get_ref();
        let peer = tls::remote_addr(req);
        let refuse = |reason: String| {
            tracing::warn!(?peer, name = %body.name, %reason, "enrollment refused");
            Status::permission_denied(reason)
        };
        let token = JoinToken::parse(&body.token).map_err(|e| refuse(e.to_string()))?;
        if token.ca_fingerprint != ca.fingerprint() {
            return Err(refuse("the join token belongs to another installation (its CA differs)".into()));
        }
        if !pki::valid_id(&body.name) {
            return Err(Status::invalid_argument(format!(
                "agent name `{}`: use letters, digits, `-`, `_` and `.`",
                body.name
            )));
        }
        let store = &self.inner.store;
        let id = store.next_agent_id()?;
        let record =
            store.redeem_token(&token.secret_hash(), &id, SystemTime::now())?.map_err(|e| refuse(e.to_string()))?;
        let (cert_pem, facts) = sign(ca, &body.csr_pem, &id, &body.name, ttl)?;
        let agent = AgentRecord {
            id: id.clone(),
            name: body.name.clone(),
            region: record.region.clone(),
            enrolled_at: SystemTime::now(),
            cert_serial: facts.serial,
            cert_not_after: facts.not_after,
            revoked: None,
        };
        store.put_agent(&agent)?;
        store.flush().await?;
        tracing::info!(?peer, agent.id = %id, agent.name = %body.name, agent.region = %agent.region, version = %body.version, "agent enrolled");
        Ok(enrolled(ca, &agent, cert_pem))
    }

    /// A new certificate for an enrolled agent, on its own authenticated connection.
    pub async fn renew(&self, req: &Request<v1::RenewRequest>) -> Result<v1::Enrolled, Status> {
        let (ca, ttl) = self.ca()?;
        let Some(who) = self.agent(req, "certificate renewal")? else { unreachable!("TLS mode has identities") };
        let store = &self.inner.store;
        let mut agent = store.agent(&who.id)?.ok_or_else(|| Status::permission_denied("only enrolled agents renew"))?;
        let (cert_pem, facts) = sign(ca, &req.get_ref().csr_pem, &agent.id, &agent.name, ttl)?;
        agent.cert_serial = facts.serial;
        agent.cert_not_after = facts.not_after;
        store.put_agent(&agent)?;
        store.flush().await?;
        tracing::info!(agent.id = %agent.id, until = %humantime::format_rfc3339_seconds(agent.cert_not_after), "agent certificate renewed");
        Ok(enrolled(ca, &agent, cert_pem))
    }

    /// Revokes an agent for good; the caller cuts its open stream.
    pub async fn revoke(&self, id: &str, reason: &str) -> Result<AgentRecord, Status> {
        let store = &self.inner.store;
        let mut agent = store
            .agent(id)?
            .ok_or_else(|| Status::not_found(format!("no enrolled agent `{id}` (see `vantage fleet list`)")))?;
        if agent.revoked.is_none() {
            let reason = if reason.trim().is_empty() { "revoked by an operator" } else { reason.trim() };
            agent.revoked = Some(Revocation { at: SystemTime::now(), reason: reason.to_string() });
            store.put_agent(&agent)?;
            store.flush().await?;
            tracing::warn!(agent.id = %id, agent.region = %agent.region, %reason, "agent revoked");
        }
        Ok(agent)
    }
}

fn sign(ca: &Ca, csr_pem: &str, id: &str, name: &str, ttl: Duration) -> Result<(String, CertFacts), Status> {
    let (pem, _) = ca
        .sign_request(csr_pem, &Role::Agent(id.to_string()), name, ttl)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let der = pki::certs_from_pem(&pem, "issued certificate").map_err(|e| Status::internal(e.to_string()))?;
    let facts = pki::cert_facts(&der[0]).map_err(|e| Status::internal(e.to_string()))?;
    Ok((pem, facts))
}

fn enrolled(ca: &Ca, agent: &AgentRecord, cert_pem: String) -> v1::Enrolled {
    v1::Enrolled {
        agent_id: agent.id.clone(),
        region: agent.region.clone(),
        cert_pem,
        ca_pem: ca.cert_pem().to_string(),
        not_after: Some(time_to_wire(agent.cert_not_after)),
    }
}

impl ClientGate for Trust {
    fn admit(&self, facts: &CertFacts) -> Result<(), String> {
        match &facts.role {
            Role::Agent(id) => self.standing(id).map(|_| ()),
            Role::Operator(_) => Ok(()),
            Role::Coordinator => Err("a coordinator's certificate cannot be used by a client".into()),
        }
    }
}
