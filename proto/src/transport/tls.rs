//! rustls configurations for both ends, and the checks they make.
//!
//! * Clients (agents, operators) trust only the installation's CA and show
//!   their own certificate: [`client_config`]. An agent that enrolls has no
//!   CA yet, only the CA's fingerprint from its join token:
//!   [`pinned_client_config`] accepts a coordinator only when that CA is in
//!   the chain it presents and signed the coordinator's certificate.
//! * The coordinator ([`server_config`]) verifies client certificates against
//!   the CA, then asks a [`ClientGate`] (the agent registry) whether this
//!   holder is still welcome, at every handshake; revocation therefore
//!   needs no revocation list. A client without a certificate gets through
//!   the handshake only to reach enrollment: every service checks the peer's
//!   role itself ([`peer`]).
//!
//! TLS 1.3 only: both ends are ours. The ring provider is passed explicitly,
//! so nothing depends on a process-wide default.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError, RootCertStore, ServerConfig,
    SignatureScheme,
};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::pki::{self, CertFacts, PkiError};

/// ALPN id of HTTP/2, which gRPC runs on.
const ALPN_H2: &[u8] = b"h2";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("{what} is not a PEM private key")]
    Key { what: String },
    #[error("TLS set-up: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("TLS set-up: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca_pem: &str) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in pki::certs_from_pem(ca_pem, "the CA certificate")? {
        roots.add(cert)?;
    }
    Ok(Arc::new(roots))
}

fn private_key(pem: &str, what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| TlsError::Key { what: what.to_string() })
}

/// A certificate chain and its key, as PEM: what a peer shows.
#[derive(Clone)]
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Identity(..)")
    }
}

impl Identity {
    fn parts(&self, what: &str) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
        Ok((pki::certs_from_pem(&self.cert_pem, what)?, private_key(&self.key_pem, what)?))
    }
}

/// A client that trusts `ca_pem` and shows `identity` when it has one.
pub fn client_config(ca_pem: &str, identity: Option<&Identity>) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(ca_pem)?);
    let mut config = match identity {
        Some(id) => {
            let (chain, key) = id.parts("the client certificate")?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// A client that trusts a coordinator only if the CA with SHA-256
/// `ca_fingerprint` is in the chain it presents and signed its certificate.
pub fn pinned_client_config(ca_fingerprint: [u8; 32]) -> Result<Arc<ClientConfig>, TlsError> {
    let verifier = Arc::new(PinnedCa { fingerprint: ca_fingerprint, provider: provider() });
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// Decides, at every handshake, whether the holder of a certificate that
/// the CA signed may still connect (the agent registry: enrolled, not revoked).
pub trait ClientGate: Send + Sync + fmt::Debug {
    fn admit(&self, facts: &CertFacts) -> Result<(), String>;
}

/// The coordinator's TLS configuration: `chain` starts with its own
/// certificate and should carry the CA's, so that enrolling agents find it.
pub fn server_config(
    ca_pem: &str,
    identity: &Identity,
    gate: Arc<dyn ClientGate>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let inner =
        WebPkiClientVerifier::builder_with_provider(roots(ca_pem)?, provider()).allow_unauthenticated().build()?;
    let (mut chain, key) = identity.parts("the coordinator certificate")?;
    let ca = pki::certs_from_pem(ca_pem, "the CA certificate")?;
    if !chain.iter().any(|c| ca.contains(c)) {
        chain.extend(ca);
    }
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(GatedClientVerifier { inner, gate }))
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    // No session resumption: a resumed session skips the client-certificate
    // check, and with it the registry (a revoked agent would get back in).
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// Who is calling, from the client certificate of the connection a request
/// came on. `None`: no certificate (only enrollment accepts that).
pub fn peer<T>(request: &tonic::Request<T>) -> Option<CertFacts> {
    let certs = connect_info(request)?.peer_certs()?;
    pki::cert_facts(certs.first()?).ok()
}

/// The client's address, on TLS connections as well as plaintext ones.
pub fn remote_addr<T>(request: &tonic::Request<T>) -> Option<std::net::SocketAddr> {
    request.remote_addr().or_else(|| connect_info(request)?.get_ref().remote_addr())
}

fn connect_info<T>(request: &tonic::Request<T>) -> Option<&TlsConnectInfo<TcpConnectInfo>> {
    request.extensions().get::<TlsConnectInfo<TcpConnectInfo>>()
}

/// One line on why a TLS handshake failed, for the log.
pub fn describe(error: &std::io::Error) -> String {
    let Some(rustls_error) = error.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) else {
        return error.to_string();
    };
    match rustls_error {
        // A CA of another installation with the same name fails on the signature.
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => {
            "the certificate was not issued by this installation's CA".into()
        }
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => inner.to_string(),
        rustls::Error::InvalidCertificate(CertificateError::Revoked) => "the certificate is revoked".into(),
        rustls::Error::NoCertificatesPresented => "no client certificate was presented".into(),
        other => other.to_string(),
    }
}

/// A refusal by the gate, carried through rustls to the accept loop's log.
#[derive(Debug)]
struct Refused(String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

#[derive(Debug)]
struct GatedClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    gate: Arc<dyn ClientGate>,
}

impl ClientCertVerifier for GatedClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        let refuse = |reason: String| {
            rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Refused(reason)))))
        };
        let facts = pki::cert_facts(end_entity).map_err(|e| refuse(e.to_string()))?;
        self.gate.admit(&facts).map_err(refuse)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[derive(Debug)]
struct PinnedCa {
    fingerprint: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates.iter().find(|c| pki::fingerprint(c) == self.fingerprint).ok_or_else(|| {
            rustls::Error::General(
                "the coordinator does not present the CA named in the join token: wrong coordinator address, or \
                 a token from another installation"
                    .into(),
            )
        })?;
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
