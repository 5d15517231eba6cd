//! Loopback targets with a known ground truth: listening ports that answer
//! (some with a banner), and ports known to be closed.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rand::Rng;

/// Open listeners on 127.0.0.1 served by one thread each, and closed ports.
pub struct LoopbackTargets {
    pub open: BTreeSet<u16>,
    pub closed: BTreeSet<u16>,
    /// Ports whose listener greets with `banner(port)`.
    pub greeting: BTreeSet<u16>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// What a greeting listener on `port` says first.
pub fn banner(port: u16) -> String {
    format!("220 vantage-test-{port} ready\r\n")
}

impl LoopbackTargets {
    /// `n_open` listeners at random ports (every other one greets), and
    /// `n_closed` ports that were bound and released, so nothing listens.
    pub fn start(n_open: usize, n_closed: usize) -> LoopbackTargets {
        let stop = Arc::new(AtomicBool::new(false));
        let mut rng = rand::rng();
        let (mut open, mut greeting, mut threads) = (BTreeSet::new(), BTreeSet::new(), Vec::new());
        while open.len() < n_open {
            // Random ports from the whole range, not just the ephemeral ones.
            let port = rng.random_range(1024..=65000u16);
            let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) else { continue };
            let greets = open.len() % 2 == 0;
            open.insert(port);
            if greets {
                greeting.insert(port);
            }
            listener.set_nonblocking(true).expect("nonblocking listener");
            let stop = stop.clone();
            threads.push(std::thread::spawn(move || serve(listener, greets, port, &stop)));
        }
        let mut closed = BTreeSet::new();
        while closed.len() < n_closed {
            let port = rng.random_range(1024..=65000u16);
            if open.contains(&port) {
                continue;
            }
            // Bindable now means nothing listens there.
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                closed.insert(port);
            }
        }
        LoopbackTargets { open, closed, greeting, stop, threads }
    }

    /// All ports of the ground truth, as a port spec.
    pub fn port_spec(&self) -> String {
        self.open.iter().chain(&self.closed).map(u16::to_string).collect::<Vec<_>>().join(",")
    }
}

/// Greeting listeners write their banner and close; silent ones keep the
/// connection open without a word for a while, as client-first services do,
/// so a banner read on them lasts its whole timeout.
fn serve(listener: TcpListener, greets: bool, port: u16, stop: &AtomicBool) {
    const HOLD: Duration = Duration::from_secs(3);
    let mut held: Vec<(std::time::Instant, TcpStream)> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        held.retain(|(since, _)| since.elapsed() < HOLD);
        match listener.accept() {
            Ok((mut conn, _)) if greets => {
                let _ = conn.write_all(banner(port).as_bytes());
            }
            Ok((conn, _)) => held.push((std::time::Instant::now(), conn)),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

impl Drop for LoopbackTargets {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
