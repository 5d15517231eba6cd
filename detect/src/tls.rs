//! The TLS probe: a handshake through rustls that accepts any certificate,
//! so that expired, self-signed and broken certificates are recorded
//! rather than refused, and the facts a review needs (protocol version,
//! cipher, subject, SANs, issuer, validity, self-signed) come out.
//!
//! Accepting every certificate is right here and nowhere else: this
//! connection carries nothing but our own probes. rustls speaks TLS 1.2
//! and 1.3 only; an older server fails the handshake, which is itself
//! reported (`handshake failed: ...`).

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use vantage_shared::TlsFacts;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// A client configuration that records instead of verifying.
pub fn client_config() -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let schemes = provider.signature_verification_algorithms.supported_schemes();
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RecordOnly(schemes)))
        .with_no_client_auth();
    Arc::new(config)
}

/// Accepts every certificate and signature: the scanner records them.
#[derive(Debug)]
struct RecordOnly(Vec<SignatureScheme>);

impl ServerCertVerifier for RecordOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.clone()
    }
}

/// Runs the handshake on a connected stream. No SNI: targets are addresses.
pub async fn handshake(
    config: Arc<ClientConfig>,
    addr: SocketAddr,
    tcp: TcpStream,
) -> std::io::Result<(TlsStream<TcpStream>, TlsFacts)> {
    let name = ServerName::IpAddress(addr.ip().into());
    let stream = TlsConnector::from(config).connect(name, tcp).await?;
    let facts = {
        let (_, conn) = stream.get_ref();
        let mut facts = match conn.peer_certificates().and_then(|c| c.first()) {
            Some(leaf) => certificate_facts(leaf.as_ref()),
            None => TlsFacts { error: Some("no certificate".into()), ..Default::default() },
        };
        facts.version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".into(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".into(),
            Some(other) => format!("{other:?}"),
            None => String::new(),
        };
        facts.cipher = conn.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())).unwrap_or_default();
        facts.alpn = conn.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned());
        facts
    };
    Ok((stream, facts))
}

/// What a leaf certificate says, parsed from DER. A certificate that does
/// not parse still yields its fingerprint and the parse error.
pub fn certificate_facts(der: &[u8]) -> TlsFacts {
    let sha256 = ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let cert = match X509Certificate::from_der(der) {
        Ok((_, cert)) => cert,
        Err(e) => {
            return TlsFacts { sha256, error: Some(format!("unparseable certificate: {e}")), ..Default::default() };
        }
    };
    let sans = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext.value.general_names.iter().take(64).filter_map(general_name).collect(),
        _ => Vec::new(),
    };
    let same_name = cert.subject().as_raw() == cert.issuer().as_raw();
    TlsFacts {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        self_signed: same_name && cert.verify_signature(None).is_ok(),
        sha256,
        ..Default::default()
    }
}

fn general_name(name: &GeneralName) -> Option<String> {
    match name {
        GeneralName::DNSName(d) => Some(d.to_string()),
        GeneralName::RFC822Name(m) => Some(format!("email:{m}")),
        GeneralName::URI(u) => Some(format!("uri:{u}")),
        GeneralName::IPAddress(ip) => match ip.len() {
            4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*ip).ok()?).to_string()),
            16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*ip).ok()?).to_string()),
            _ => None,
        },
        _ => None,
    }
}
