//! UDP scan: one datagram per port in the port's own protocol (DNS, NTP,
//! SNMP, memcached; on other ports each of those and an empty datagram), on a
//! connected socket, so that the kernel reports an ICMP port-unreachable as
//! `ECONNREFUSED` without raw sockets.
//!
//! An answer means open, and is parsed on the spot (the answer is the
//! service's own). Port-unreachable means closed. Silence, after the
//! retries, is what nmap calls open|filtered: reported as filtered, since
//! nothing proved the port open. Linux rate-limits ICMP errors, so closed
//! ports on a busy host can look filtered; open ports never look closed.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use vantage_detect::protocols::udp::UdpProbe;
use vantage_shared::{PortState, Proto, ServiceFacts};

use super::{EngineStats, ProbeResult, RunHandles};

/// Settings of one UDP scan.
#[derive(Debug, Clone)]
pub struct UdpConfig {
    /// How long one datagram waits for an answer.
    pub timeout: Duration,
    /// Extra datagrams for a port that stayed silent.
    pub retries: u32,
    pub max_in_flight: usize,
    /// Bytes of an answer kept as the port's first bytes.
    pub keep_bytes: usize,
}

/// Runs every probe from `probes`; see [`super::connect::scan`] for the contract.
pub async fn scan(
    cfg: &UdpConfig,
    probes: impl Iterator<Item = (IpAddr, u16)>,
    permits: impl Fn(IpAddr) -> bool,
    out: mpsc::Sender<ProbeResult>,
    run: &RunHandles,
) -> EngineStats {
    let mut stats = EngineStats::default();
    let mut probes = probes.filter(|(addr, _)| permits(*addr));
    let mut in_flight = FuturesUnordered::new();
    let window = cfg.max_in_flight.clamp(1, 1024);
    loop {
        while in_flight.len() < window {
            let Some((addr, port)) = probes.next() else { break };
            // Wait out the rate caps: UDP scans are small, a plain wait is enough.
            while let Err(denied) = run.limits.try_acquire(addr) {
                tokio::select! {
                    _ = run.cancel.cancelled() => return stats,
                    _ = tokio::time::sleep(denied.wait()) => {}
                }
            }
            in_flight.push(probe(addr, port, cfg.clone()));
        }
        let result = tokio::select! {
            biased;
            _ = run.cancel.cancelled() => break,
            next = in_flight.next() => match next {
                Some(r) => r,
                None => break,
            },
        };
        let (result, packets) = match result {
            Ok(r) => r,
            Err(err) => {
                stats.resource_waits += 1;
                tracing::warn!(error = %err, "UDP probe could not be sent");
                continue;
            }
        };
        stats.packets += packets;
        stats.count(result.state);
        run.progress.fetch_add(1, Ordering::Relaxed);
        if out.send(result).await.is_err() {
            break;
        }
    }
    stats
}

/// One port: up to `1 + retries` datagrams. Returns the result and the datagrams sent.
async fn probe(addr: IpAddr, port: u16, cfg: UdpConfig) -> io::Result<(ProbeResult, u64)> {
    let local: SocketAddr = match addr {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect((addr, port)).await?;
    let known = UdpProbe::for_port(port);
    // A port without a probe of its own gets every probe (and an empty datagram, as nmap sends).
    let payloads: Vec<Vec<u8>> = match known {
        Some(p) => vec![p.payload()],
        None => UdpProbe::ALL.iter().map(|p| p.payload()).chain([Vec::new()]).collect(),
    };
    let sent_per_attempt = payloads.len() as u64;
    let mut buf = vec![0u8; 2048];
    let started = Instant::now();
    let result = |state| ProbeResult { proto: Proto::Udp, ..ProbeResult::new(addr, port, state, started.elapsed()) };
    let sent = |attempt: u32| (u64::from(attempt) + 1) * sent_per_attempt;
    for attempt in 0..=cfg.retries {
        for payload in &payloads {
            match socket.send(payload).await {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    return Ok((result(PortState::Closed), sent(attempt)));
                }
                Err(e) => return Err(e),
            }
        }
        let wait = cfg.timeout * (1 << attempt.min(3));
        match tokio::time::timeout(wait, socket.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                let answer = &buf[..n];
                let mut r = result(PortState::Open);
                r.service = Some(identify(known, answer));
                r.banner = answer[..n.min(cfg.keep_bytes)].to_vec();
                return Ok((r, sent(attempt)));
            }
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Ok((result(PortState::Closed), sent(attempt)));
            }
            // Host or network unreachable, prohibited: something is in the way.
            Ok(Err(_)) => return Ok((result(PortState::Filtered), sent(attempt))),
            Err(_) => {}
        }
    }
    Ok((result(PortState::Filtered), sent(cfg.retries)))
}

/// The answer, read by the probe that drew it, or by any UDP parser on a
/// port without a probe of its own.
fn identify(known: Option<UdpProbe>, answer: &[u8]) -> ServiceFacts {
    let parsed = match known {
        Some(p) => p.parse(answer),
        None => UdpProbe::ALL.iter().find_map(|p| p.parse(answer)),
    };
    parsed.unwrap_or_else(|| ServiceFacts {
        method: vantage_shared::Method::PortGuess,
        ..ServiceFacts::named(known.map(UdpProbe::name).unwrap_or("unknown"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(port: u16) -> ProbeResult {
        let (tx, mut rx) = mpsc::channel(4);
        let cfg = UdpConfig { timeout: Duration::from_millis(200), retries: 1, max_in_flight: 8, keep_bytes: 64 };
        let handles = RunHandles::default();
        let stats = scan(&cfg, [(IpAddr::from([127, 0, 0, 1]), port)].into_iter(), |_| true, tx, &handles).await;
        assert_eq!(stats.probes, 1);
        rx.recv().await.unwrap()
    }

    #[tokio::test]
    async fn an_answer_is_open_and_parsed() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            if let Ok((_, from)) = server.recv_from(&mut buf) {
                // A memcached answer, whatever was asked: no probe of its own on this port.
                let _ = server.send_to(b"\x56\x41\0\0\0\x01\0\0VERSION 1.6.18\r\n", from);
            }
        });
        let r = run(port).await;
        assert_eq!((r.state, r.proto), (PortState::Open, Proto::Udp));
        let facts = r.service.unwrap();
        assert_eq!((facts.service.as_str(), facts.version.as_deref()), ("memcached", Some("1.6.18")));
    }

    #[tokio::test]
    async fn unreachable_is_closed_and_silence_filtered() {
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        assert_eq!(run(closed).await.state, PortState::Closed);
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let r = run(silent.local_addr().unwrap().port()).await;
        assert_eq!(r.state, PortState::Filtered);
        drop(silent);
    }
}
