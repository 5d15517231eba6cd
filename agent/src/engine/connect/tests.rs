use std::collections::BTreeSet;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use super::*;

fn cfg() -> ConnectConfig {
    ConnectConfig {
        timeout: Duration::from_millis(500),
        max_in_flight: 64,
        retries: 1,
        banner_timeout: Duration::from_millis(200),
        banner_max_bytes: 64,
        listen_by_port: false,
    }
}

/// Binds `n` listeners on 127.0.0.1 and returns them with a closed port
/// (bound, then released) next to them.
async fn listeners(n: usize) -> (Vec<TcpListener>, u16) {
    let mut ls = Vec::new();
    for _ in 0..n {
        ls.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    (ls, closed)
}

async fn run_with(
    cfg: &ConnectConfig,
    run: &RunHandles,
    probes: Vec<(IpAddr, u16)>,
) -> (Vec<ProbeResult>, EngineStats) {
    let (tx, mut rx) = mpsc::channel(16);
    let collector = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(r) = rx.recv().await {
            all.push(r);
        }
        all
    });
    let stats = scan(cfg, probes.into_iter(), |_| true, tx, run).await;
    (collector.await.unwrap(), stats)
}

async fn run(cfg: &ConnectConfig, probes: Vec<(IpAddr, u16)>) -> (Vec<ProbeResult>, EngineStats) {
    run_with(cfg, &RunHandles::default(), probes).await
}

#[tokio::test]
async fn open_and_closed_are_told_apart() {
    let (ls, closed) = listeners(3).await;
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    let mut probes: Vec<_> = ls.iter().map(|l| (lo, l.local_addr().unwrap().port())).collect();
    probes.push((lo, closed));
    let (results, stats) = run(&cfg(), probes.clone()).await;
    assert_eq!(results.len(), 4);
    let open: BTreeSet<u16> = results.iter().filter(|r| r.state == PortState::Open).map(|r| r.port).collect();
    let want: BTreeSet<u16> = probes[..3].iter().map(|p| p.1).collect();
    assert_eq!(open, want);
    assert_eq!((stats.open, stats.closed, stats.filtered), (3, 1, 0));
}

#[tokio::test]
async fn banner_is_captured_unless_the_host_is_quiet() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        for _ in 0..2 {
            let (mut s, _) = l.accept().await.unwrap();
            s.write_all(b"220 test ESMTP\r\n").await.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    });
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    let (results, _) = run(&cfg(), vec![(lo, port)]).await;
    assert_eq!(results[0].banner, b"220 test ESMTP\r\n");

    let handles = RunHandles::default();
    handles.quiet.insert(lo);
    let (results, _) = run_with(&cfg(), &handles, vec![(lo, port)]).await;
    assert_eq!(results[0].state, PortState::Open);
    assert!(results[0].banner.is_empty(), "no banner read on a quiet host");
}

#[tokio::test]
async fn refused_addresses_are_never_probed() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, mut rx) = mpsc::channel(4);
    let stats =
        scan(&cfg(), vec![("127.0.0.1".parse().unwrap(), port)].into_iter(), |_| false, tx, &RunHandles::default())
            .await;
    assert_eq!(stats.probes, 0);
    assert!(rx.recv().await.is_none());
}

#[tokio::test]
async fn a_rate_capped_scan_still_finishes_every_probe() {
    let (_ls, closed) = listeners(0).await;
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    let limits = std::sync::Arc::new(super::super::rate::RateLimits::new(2_000, 1_000));
    let handles = RunHandles { limits, ..Default::default() };
    let (results, stats) = run_with(&cfg(), &handles, vec![(lo, closed); 50]).await;
    assert_eq!(results.len(), 50);
    assert_eq!(stats.closed, 50);
}

#[test]
fn resource_errors_are_not_port_states() {
    assert_eq!(classify(&io::Error::from_raw_os_error(libc::EMFILE)), None);
    assert_eq!(classify(&io::Error::from_raw_os_error(libc::EADDRNOTAVAIL)), None);
    assert_eq!(classify(&io::Error::from_raw_os_error(libc::ECONNREFUSED)), Some(PortState::Closed));
    assert_eq!(classify(&io::Error::from_raw_os_error(libc::EHOSTUNREACH)), Some(PortState::Filtered));
}
