//! A trickle of traffic into the scanner's interface while tools run.
//!
//! The lab is perfectly quiet otherwise, and masscan 1.3.2 only notices
//! that its `--wait` is over when a packet arrives (its receive thread
//! blocks in pcap): in a silent lab it overstays by 10 s or more. Any real
//! network has background traffic; ten small datagrams a second from the
//! target namespace to the scanner's discard port stand in for it, for
//! every tool alike.

use std::net::{SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vantage_tests::lab::{Lab, LabError, net};

const INTERVAL: Duration = Duration::from_millis(100);
/// The discard port: nothing listens, the datagram is only there to be seen.
const PORT: u16 = 9;
/// A heartbeat never outlives this, whatever happens to its owner.
const MAX_LIFE: Duration = Duration::from_secs(4 * 3600);

/// Sends the heartbeat until dropped.
pub struct Heartbeat {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeat {
    pub fn start(lab: &Lab) -> Result<Heartbeat, LabError> {
        let ns = lab.spec().ns_targets();
        let to = SocketAddrV4::new(lab.truth().scanner, PORT);
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let socket = net::enter(&ns)
                .and_then(|()| UdpSocket::bind("0.0.0.0:0").map_err(|e| LabError::io("binding the heartbeat", e)));
            let socket = match socket {
                Ok(s) => s,
                Err(e) => return drop(ready_tx.send(Err(e))),
            };
            let _ = ready_tx.send(Ok(()));
            beat(&socket, to, &flag);
        });
        ready_rx.recv().unwrap_or_else(|_| Err(LabError::Teardown("heartbeat thread died".into())))?;
        Ok(Heartbeat { stop, thread: Some(thread) })
    }
}

fn beat(socket: &UdpSocket, to: SocketAddrV4, stop: &AtomicBool) {
    let born = Instant::now();
    while !stop.load(Ordering::Relaxed) && born.elapsed() < MAX_LIFE {
        let _ = socket.send_to(b"lab heartbeat", to);
        std::thread::sleep(INTERVAL);
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
