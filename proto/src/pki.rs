//! The internal PKI: one certificate authority per installation, and the
//! certificates it issues to the coordinator, its agents and its operators.
//!
//! Who a peer is comes from its certificate alone: a URI subject alternative
//! name `urn:vantage:<role>[:<id>]` says coordinator, agent (with its agent
//! id) or operator (with a name). The coordinator trusts a certificate when
//! its CA signed it, it is within its validity, and (for agents) the agent is
//! enrolled and not revoked; see [`crate::transport`] for where that is
//! checked. Agent certificates are short-lived and renewed by the agent over
//! its authenticated connection, so a stolen one does not last.
//!
//! Keys are ECDSA P-256, generated where they are used: an agent's private
//! key never leaves the agent (it sends a certificate signing request).

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

const URI_PREFIX: &str = "urn:vantage:";
/// Certificates start this long before they are issued, for clock skew.
const BACKDATE: Duration = Duration::from_secs(300);
/// The prefix of a join token's text, with the token format's version.
const TOKEN_PREFIX: &str = "vjt1";

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{what} is not a PEM {kind}")]
    Pem { what: String, kind: &'static str },
    #[error("certificate is not readable X.509: {0}")]
    Parse(String),
    #[error("the certificate names no Vantage role (urn:vantage:...)")]
    NoRole,
    #[error("{0}")]
    Invalid(String),
}

/// What a certificate lets its holder be.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Role {
    Coordinator,
    Agent(String),
    Operator(String),
}

impl Role {
    pub fn uri(&self) -> String {
        match self {
            Role::Coordinator => format!("{URI_PREFIX}coordinator"),
            Role::Agent(id) => format!("{URI_PREFIX}agent:{id}"),
            Role::Operator(name) => format!("{URI_PREFIX}operator:{name}"),
        }
    }

    pub fn from_uri(uri: &str) -> Option<Role> {
        let rest = uri.strip_prefix(URI_PREFIX)?;
        match rest.split_once(':') {
            None if rest == "coordinator" => Some(Role::Coordinator),
            Some(("agent", id)) if valid_id(id) => Some(Role::Agent(id.to_string())),
            Some(("operator", name)) if valid_id(name) => Some(Role::Operator(name.to_string())),
            _ => None,
        }
    }

    fn eku(&self) -> ExtendedKeyUsagePurpose {
        match self {
            Role::Coordinator => ExtendedKeyUsagePurpose::ServerAuth,
            Role::Agent(_) | Role::Operator(_) => ExtendedKeyUsagePurpose::ClientAuth,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Coordinator => f.write_str("coordinator"),
            Role::Agent(id) => write!(f, "agent {id}"),
            Role::Operator(name) => write!(f, "operator {name}"),
        }
    }
}

/// Names and ids that go into certificates and URIs: letters, digits, `-_.`.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// A certificate and its private key, as PEM.
#[derive(Clone)]
pub struct KeyedCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub not_after: SystemTime,
}

impl fmt::Debug for KeyedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key: Debug output ends up in logs.
        f.debug_struct("KeyedCert").field("not_after", &self.not_after).finish_non_exhaustive()
    }
}

/// The installation's certificate authority.
pub struct Ca {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// A new CA named `name`, valid for `validity`.
    pub fn generate(name: &str, validity: Duration) -> Result<Ca, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        set_validity(&mut params, validity);
        params.serial_number = Some(serial());
        let cert = params.self_signed(&key)?;
        Ok(Ca { cert_pem: cert.pem(), cert_der: cert.der().clone(), issuer: Issuer::new(params, key) })
    }

    /// The CA from its certificate and key files' contents.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        let cert_der = first_cert(cert_pem, "the CA certificate")?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)?;
        Ok(Ca { cert_pem: cert_pem.to_string(), cert_der, issuer })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// SHA-256 of the CA certificate: what a join token pins.
    pub fn fingerprint(&self) -> [u8; 32] {
        fingerprint(&self.cert_der)
    }

    /// A certificate with a fresh key for `role`. A coordinator certificate
    /// carries `server_names` (DNS names or IP addresses) for clients to check.
    pub fn issue(
        &self,
        role: &Role,
        name: &str,
        server_names: &[String],
        validity: Duration,
    ) -> Result<KeyedCert, PkiError> {
        let key = KeyPair::generate()?;
        let (cert_pem, not_after) = self.sign(role, name, server_names, &key, validity)?;
        Ok(KeyedCert { cert_pem, key_pem: key.serialize_pem(), not_after })
    }

    /// Signs an agent's certificate signing request for `role`. Only the
    /// request's public key is used (after its signature is checked): the
    /// names and usages are ours to decide, not the requester's.
    pub fn sign_request(
        &self,
        csr_pem: &str,
        role: &Role,
        name: &str,
        validity: Duration,
    ) -> Result<(String, SystemTime), PkiError> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| PkiError::Invalid(format!("the certificate signing request is not valid: {e}")))?;
        self.sign(role, name, &[], &csr.public_key, validity)
    }

    fn sign(
        &self,
        role: &Role,
        name: &str,
        server_names: &[String],
        key: &impl PublicKeyData,
        validity: Duration,
    ) -> Result<(String, SystemTime), PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(name);
        let uri = role.uri().try_into().map_err(|_| PkiError::Invalid(format!("`{role}` is not a valid name")))?;
        params.subject_alt_names = vec![SanType::URI(uri)];
        for n in server_names {
            params.subject_alt_names.push(match n.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    n.as_str().try_into().map_err(|_| PkiError::Invalid(format!("`{n}` is not a host name")))?,
                ),
            });
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![role.eku()];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(serial());
        let not_after = set_validity(&mut params, validity);
        let cert = params.signed_by(key, &self.issuer)?;
        Ok((cert.pem(), not_after))
    }
}

/// A new private key and a certificate signing request for it, as PEM.
pub fn key_and_request(name: &str) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(name);
    let csr = params.serialize_request(&key)?;
    Ok((key.serialize_pem(), csr.pem()?))
}

/// SHA-256 of a DER certificate.
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// What a certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    pub role: Role,
    pub common_name: String,
    pub serial: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

/// Reads the role, name, serial and expiry of a DER certificate.
pub fn cert_facts(der: &[u8]) -> Result<CertFacts, PkiError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| PkiError::Parse(e.to_string()))?;
    let mut role = None;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        role = san.value.general_names.iter().find_map(|n| match n {
            GeneralName::URI(uri) => Role::from_uri(uri),
            _ => None,
        });
    }
    let common_name =
        cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).unwrap_or_default().to_string();
    let at = |t: x509_parser::time::ASN1Time| SystemTime::UNIX_EPOCH + Duration::from_secs(t.timestamp().max(0) as u64);
    Ok(CertFacts {
        role: role.ok_or(PkiError::NoRole)?,
        common_name,
        serial: cert.raw_serial_as_string(),
        not_before: at(cert.validity().not_before),
        not_after: at(cert.validity().not_after),
    })
}

/// Writes a PEM file whole or not at all (a temporary file renamed over
/// it); keys and certificates are readable by their owner only (0600).
pub fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Creates a directory for keys, readable by its owner only (0700).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// When a DER certificate stops being valid.
pub fn not_after(der: &[u8]) -> Result<SystemTime, PkiError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| PkiError::Parse(e.to_string()))?;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(cert.validity().not_after.timestamp().max(0) as u64))
}

/// The certificates of a PEM text, in order.
pub fn certs_from_pem(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| PkiError::Pem { what: what.to_string(), kind: "certificate" })?;
    if certs.is_empty() {
        return Err(PkiError::Pem { what: what.to_string(), kind: "certificate" });
    }
    Ok(certs)
}

fn first_cert(pem: &str, what: &str) -> Result<CertificateDer<'static>, PkiError> {
    Ok(certs_from_pem(pem, what)?.remove(0))
}

/// A one-time join token as an operator passes it to `vantage-agent enroll`:
/// the secret the coordinator checks, and the fingerprint of the CA the agent
/// must find behind the coordinator's address before it sends anything.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    pub secret: [u8; 32],
    pub ca_fingerprint: [u8; 32],
}

impl JoinToken {
    /// A new token with a secret from the operating system's random source.
    pub fn generate(ca_fingerprint: [u8; 32]) -> JoinToken {
        JoinToken { secret: rand_bytes(), ca_fingerprint }
    }

    /// What the coordinator stores instead of the secret.
    pub fn secret_hash(&self) -> [u8; 32] {
        fingerprint(&self.secret)
    }

    pub fn parse(text: &str) -> Result<JoinToken, PkiError> {
        let bad = || PkiError::Invalid("not a join token (it looks like vjt1.XXXX.YYYY; copy it whole)".into());
        let mut parts = text.trim().split('.');
        let (Some(TOKEN_PREFIX), Some(secret), Some(ca), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let decode = |s: &str| -> Result<[u8; 32], PkiError> {
            URL_SAFE_NO_PAD.decode(s).ok().and_then(|v| v.try_into().ok()).ok_or_else(bad)
        };
        Ok(JoinToken { secret: decode(secret)?, ca_fingerprint: decode(ca)? })
    }
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{TOKEN_PREFIX}.{}.{}",
            URL_SAFE_NO_PAD.encode(self.secret),
            URL_SAFE_NO_PAD.encode(self.ca_fingerprint)
        )
    }
}

impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret stays out of logs.
        f.write_str("JoinToken(..)")
    }
}

fn dn(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Vantage");
    dn.push(DnType::CommonName, name);
    dn
}

fn set_validity(params: &mut CertificateParams, validity: Duration) -> SystemTime {
    let now = SystemTime::now();
    let not_after = now + validity;
    params.not_before = (now - BACKDATE).into();
    params.not_after = not_after.into();
    not_after
}

fn serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand_bytes();
    // A positive INTEGER, without a leading zero byte.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).expect("the system random source works");
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_uri() {
        for role in [Role::Coordinator, Role::Agent("a-1f".into()), Role::Operator("admin".into())] {
            assert_eq!(Role::from_uri(&role.uri()), Some(role));
        }
        assert_eq!(Role::from_uri("urn:vantage:agent:"), None);
        assert_eq!(Role::from_uri("urn:vantage:agent:a/b"), None);
        assert_eq!(Role::from_uri("urn:other:agent:x"), None);
    }

    #[test]
    fn issued_certificates_say_who_they_are_for() {
        let ca = Ca::generate("test CA", Duration::from_secs(3600)).unwrap();
        let op = ca.issue(&Role::Operator("alice".into()), "alice", &[], Duration::from_secs(600)).unwrap();
        let facts = cert_facts(&first_cert(&op.cert_pem, "op").unwrap()).unwrap();
        assert_eq!(facts.role, Role::Operator("alice".into()));
        assert_eq!(facts.common_name, "alice");
        let left = facts.not_after.duration_since(SystemTime::now()).unwrap();
        assert!(left <= Duration::from_secs(600) && left > Duration::from_secs(590), "{left:?}");

        // The request's own names are ignored: the role is the signer's choice.
        let (_key, csr) = key_and_request("edge-1").unwrap();
        let (pem, _) = ca.sign_request(&csr, &Role::Agent("a-7".into()), "edge-1", Duration::from_secs(60)).unwrap();
        assert_eq!(cert_facts(&first_cert(&pem, "agent").unwrap()).unwrap().role, Role::Agent("a-7".into()));

        // A CA read back from its files signs the same way.
        let again = Ca::from_pem(ca.cert_pem(), &ca.key_pem()).unwrap();
        assert_eq!(again.fingerprint(), ca.fingerprint());
        again
            .issue(&Role::Coordinator, "coord", &["localhost".into(), "127.0.0.1".into()], Duration::from_secs(60))
            .unwrap();
    }

    #[test]
    fn a_tampered_request_is_refused() {
        let ca = Ca::generate("test CA", Duration::from_secs(3600)).unwrap();
        let (_key, csr) = key_and_request("edge-1").unwrap();
        // Flip a bit of the signature (the DER's last byte).
        let body: String = csr.lines().filter(|l| !l.starts_with("-----")).collect();
        let mut der = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
        *der.last_mut().unwrap() ^= 1;
        let broken = format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            base64::engine::general_purpose::STANDARD.encode(der)
        );
        assert!(ca.sign_request(&broken, &Role::Agent("a".into()), "x", Duration::from_secs(60)).is_err());
        assert!(ca.sign_request("not pem", &Role::Agent("a".into()), "x", Duration::from_secs(60)).is_err());
    }

    #[test]
    fn join_tokens_round_trip_and_reject_garbage() {
        let token = JoinToken::generate([7; 32]);
        let text = token.to_string();
        assert!(text.starts_with("vjt1."));
        assert!(JoinToken::parse(&text).unwrap() == token);
        assert_ne!(token.secret_hash(), token.secret);
        for bad in ["", "vjt1", "vjt1.abc.def", &text.replace("vjt1", "vjt2"), &format!("{text}.x")] {
            assert!(JoinToken::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(format!("{token:?}"), "JoinToken(..)");
    }
}
