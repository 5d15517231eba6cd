//! One raw receive socket per process, shared by every SYN scan in it.
//!
//! A raw TCP socket sees a copy of every TCP packet the host receives, so
//! one reader per scan would parse the same packets once per scan. Instead
//! one thread reads them all and hands each answer to the scan that owns its
//! destination port (each scan sends from a port of its own).

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::{Arc, OnceLock, RwLock};

use socket2::Socket;

use super::packet;
use super::state::ScanState;
use super::{SynError, raw_socket};

pub struct Receiver {
    /// Scans by the source port their probes use.
    scans: RwLock<HashMap<u16, Arc<ScanState>>>,
}

/// Unregisters its scan when dropped; after that no answer reaches it.
pub struct Registration {
    receiver: Arc<Receiver>,
    sport: u16,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.receiver.scans.write().unwrap_or_else(|p| p.into_inner()).remove(&self.sport);
    }
}

/// The process's receiver, started on first use.
pub fn shared() -> Result<Arc<Receiver>, SynError> {
    static RECEIVER: OnceLock<Arc<Receiver>> = OnceLock::new();
    if let Some(r) = RECEIVER.get() {
        return Ok(r.clone());
    }
    let sock = raw_socket()?;
    force_buffer(&sock, libc::SO_RCVBUFFORCE, 32 << 20);
    let receiver = RECEIVER.get_or_init(|| Arc::new(Receiver { scans: RwLock::new(HashMap::new()) })).clone();
    let reader = receiver.clone();
    std::thread::Builder::new().name("syn-recv".into()).spawn(move || reader.run(&sock)).map_err(SynError::Socket)?;
    Ok(receiver)
}

impl Receiver {
    /// Registers a scan under a free source port, which `make` receives.
    pub fn register(self: &Arc<Self>, make: impl FnOnce(u16) -> ScanState) -> (Arc<ScanState>, Registration) {
        let mut scans = self.scans.write().unwrap_or_else(|p| p.into_inner());
        let sport = loop {
            let port = rand::random_range(32_768..61_000u16);
            if !scans.contains_key(&port) {
                break port;
            }
        };
        let state = Arc::new(make(sport));
        scans.insert(sport, state.clone());
        (state, Registration { receiver: self.clone(), sport })
    }

    fn run(&self, sock: &Socket) {
        let mut buf = vec![0u8; 2048];
        let mut reader: &Socket = sock;
        loop {
            let len = match reader.read(&mut buf) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::error!(error = %e, "raw receive failed; SYN scans will see no answers");
                    return;
                }
            };
            let Some(answer) = packet::answer(&buf[..len]) else { continue };
            // The read lock is held while the answer is delivered, so a scan
            // that unregisters (write lock) gets nothing after that.
            let scans = self.scans.read().unwrap_or_else(|p| p.into_inner());
            if let Some(scan) = scans.get(&answer.dport) {
                scan.accept(&answer);
            }
        }
    }
}

/// Sets a socket buffer past the system maximum (we hold CAP_NET_RAW, and
/// root may), falling back to the plain option.
pub fn force_buffer(sock: &Socket, option: libc::c_int, size: libc::c_int) {
    // SAFETY: setsockopt on a valid fd with an int option value of the right size.
    let forced = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(sock),
            libc::SOL_SOCKET,
            option,
            (&size as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if forced != 0 {
        let _ = match option {
            libc::SO_SNDBUFFORCE => sock.set_send_buffer_size(size as usize),
            _ => sock.set_recv_buffer_size(size as usize),
        };
    }
}
