//! Conversations with small services on loopback: well-behaved ones are
//! recognised; hostile ones (endless bytes, slow drip, garbage, a TLS
//! server with a broken certificate) cost no more than the caps.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use vantage_detect::{DetectConfig, Detection, Detector};
use vantage_shared::{Access, Category, Method};

/// What a fake service does with each connection.
#[derive(Clone, Copy)]
enum Behaviour {
    Greet(&'static [u8]),
    /// Waits for a request ending in a blank line, answers, closes.
    Http(&'static [u8]),
    /// Answers any bytes with this.
    Answer(&'static [u8]),
    Endless,
    Drip,
    Silent,
    Close,
}

async fn serve(behaviour: Behaviour) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(handle(s, behaviour));
        }
    });
    addr
}

async fn handle(mut s: TcpStream, behaviour: Behaviour) {
    let mut buf = vec![0u8; 4096];
    match behaviour {
        Behaviour::Greet(g) => {
            let _ = s.write_all(g).await;
            let _ = s.read(&mut buf).await;
        }
        Behaviour::Http(r) => {
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(r).await;
        }
        Behaviour::Answer(a) => {
            if matches!(s.read(&mut buf).await, Ok(n) if n > 0) {
                let _ = s.write_all(a).await;
                let _ = s.read(&mut buf).await;
            }
        }
        Behaviour::Endless => {
            let block = vec![b'A'; 64 * 1024];
            for _ in 0..100_000 {
                if s.write_all(&block).await.is_err() {
                    return;
                }
            }
        }
        Behaviour::Drip => {
            for _ in 0..10_000 {
                if s.write_all(b"x").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }
        Behaviour::Silent => {
            let _ = tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await;
        }
        Behaviour::Close => {}
    }
}

fn detector(total: Duration) -> Detector {
    Detector::new(DetectConfig {
        total,
        listen: Duration::from_millis(300),
        probe_wait: Duration::from_millis(500),
        max_bytes: 8 * 1024,
        keep_bytes: 256,
        ..DetectConfig::default()
    })
}

async fn detect(addr: SocketAddr) -> Detection {
    detector(Duration::from_secs(5)).tcp(addr, Duration::from_micros(100), None).await
}

#[tokio::test]
async fn greeting_services() {
    let d = detect(serve(Behaviour::Greet(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")).await).await;
    assert_eq!(d.facts.service, "ssh");
    assert_eq!(d.facts.version.as_deref(), Some("9.2p1"));
    assert_eq!(d.first_bytes, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
    assert_eq!(d.connections, 1);
}

#[tokio::test]
async fn client_first_services_on_odd_ports() {
    let http = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n\r\n<title>Hi</title>";
    let d = detect(serve(Behaviour::Http(http)).await).await;
    assert_eq!((d.facts.service.as_str(), d.facts.product.as_deref()), ("http", Some("nginx")));
    assert_eq!(d.facts.category, Category::Web);
    // A Redis that does not answer HTTP: the Redis probe follows.
    let d = detect(serve(Behaviour::Answer(b"$40\r\n# Server\r\nredis_version:7.0.15\r\n")).await).await;
    assert_eq!(d.facts.service, "redis");
    assert_eq!(d.facts.access, Access::Open);
}

#[tokio::test]
async fn silent_and_closing_ports() {
    let d = detect(serve(Behaviour::Close).await).await;
    assert_eq!(d.facts.service, "tcpwrapped");
    let d = detector(Duration::from_secs(2)).tcp(serve(Behaviour::Silent).await, Duration::ZERO, None).await;
    assert_eq!((d.facts.service.as_str(), d.facts.method), ("unknown", Method::PortGuess));
}

/// The property the caps promise: a hostile service costs at most the
/// conversation's total time (plus scheduling slack), never a stall.
async fn bounded(behaviour: Behaviour) -> Detection {
    let addr = serve(behaviour).await;
    let total = Duration::from_secs(1);
    let start = Instant::now();
    let d = detector(total).tcp(addr, Duration::from_micros(100), None).await;
    assert!(start.elapsed() < total + Duration::from_secs(2), "took {:?}", start.elapsed());
    assert!(d.first_bytes.len() <= 256);
    d
}

#[tokio::test]
async fn hostile_services_cost_no_more_than_the_cap() {
    let d = bounded(Behaviour::Endless).await;
    assert_eq!(d.first_bytes, vec![b'A'; 256]);
    let d = bounded(Behaviour::Drip).await;
    assert!(d.first_bytes.iter().all(|&b| b == b'x'));
    let d = bounded(Behaviour::Greet(b"\x1b[2J\xff\xfe\x00garbage\x07\r\n")).await;
    assert_eq!(d.facts.service, "unknown");
    assert!(d.facts.summary().is_empty());
}

/// A TLS server with the given certificate, serving `http` inside.
async fn tls_server(cert: CertifiedKey, http: &'static [u8]) -> SocketAddr {
    #[derive(Debug)]
    struct Fixed(Arc<CertifiedKey>);
    impl ResolvesServerCert for Fixed {
        fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            Some(self.0.clone())
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(Arc::new(cert))));
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(s).await else { return };
                let mut buf = vec![0u8; 4096];
                if matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {
                    let _ = tls.write_all(http).await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    addr
}

fn self_signed() -> (CertificateDer<'static>, Arc<dyn rustls::sign::SigningKey>) {
    let ck = rcgen::generate_simple_self_signed(vec!["lab.invalid".to_string()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).unwrap();
    (ck.cert.der().clone(), signer)
}

#[tokio::test]
async fn https_with_a_self_signed_certificate() {
    let (cert, key) = self_signed();
    let addr = tls_server(CertifiedKey::new(vec![cert], key), b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n\r\n").await;
    let d = detect(addr).await;
    assert_eq!(d.facts.display_service(), "ssl/http");
    assert_eq!(d.facts.product.as_deref(), Some("nginx"));
    let tls = d.facts.tls.expect("TLS facts");
    assert_eq!(tls.version, "TLSv1.3");
    assert_eq!(tls.sans, vec!["lab.invalid"]);
    assert!(tls.self_signed, "{tls:?}");
    assert!(tls.not_after > tls.not_before);
    assert_eq!(tls.sha256.len(), 64);
    assert_eq!(tls.error, None);
}

#[tokio::test]
async fn tls_with_a_broken_certificate_is_recorded() {
    let (_, key) = self_signed();
    let garbage = CertificateDer::from(b"\x30\x03not a certificate".to_vec());
    let addr = tls_server(CertifiedKey::new(vec![garbage], key), b"HTTP/1.1 200 OK\r\n\r\n").await;
    let start = Instant::now();
    let d = detect(addr).await;
    assert!(start.elapsed() < Duration::from_secs(7));
    let tls = d.facts.tls.expect("TLS facts even for a broken certificate");
    assert!(tls.error.as_deref().is_some_and(|e| e.contains("unparseable")), "{tls:?}");
    assert_eq!(d.facts.service, "http");
}
