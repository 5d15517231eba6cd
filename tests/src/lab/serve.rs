//! The listeners of the target namespace (`vantage-lab serve`): one per
//! open port of the truth, plus the tarpit's, each accepting and closing
//! forever.
//!
//! One process holds them all (2,048 listeners for 256 hosts x 8 ports)
//! on a small tokio runtime; it raises its descriptor limit first. It is
//! stopped with SIGKILL by the lab, so it keeps no state worth flushing.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};

use super::LabError;
use super::truth::{ListenerSpec, Truth, banner};

/// Accept queue of every listener; the kernel caps it at `somaxconn`,
/// which the lab raises in the target namespace.
const BACKLOG: u32 = 65535;

/// Binds every listener of `truth`, writes `ready`, then serves until killed.
pub fn serve(truth: &Truth, ready: &Path) -> Result<(), LabError> {
    raise_nofile();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| LabError::io("starting the runtime", e))?;
    runtime.block_on(async {
        for spec in truth.listeners() {
            let listener = bind(spec)?;
            tokio::spawn(accept_loop(listener, spec));
        }
        std::fs::write(ready, "ready\n").map_err(|e| LabError::io(format!("writing {}", ready.display()), e))?;
        std::future::pending::<()>().await;
        Ok(())
    })
}

fn bind(spec: ListenerSpec) -> Result<TcpListener, LabError> {
    let socket = TcpSocket::new_v4().map_err(|e| LabError::io("creating a socket", e))?;
    socket.set_reuseaddr(true).map_err(|e| LabError::io("setting SO_REUSEADDR", e))?;
    socket.bind(SocketAddr::V4(spec.addr)).map_err(|e| LabError::io(format!("binding {}", spec.addr), e))?;
    socket.listen(BACKLOG).map_err(|e| LabError::io(format!("listening on {}", spec.addr), e))
}

/// Accepts and closes; a greeting listener first writes its banner, which
/// fits the empty send buffer of a fresh connection, so no write ever waits.
async fn accept_loop(listener: TcpListener, spec: ListenerSpec) {
    let greeting = banner(spec.addr);
    loop {
        match listener.accept().await {
            Ok((conn, _)) => {
                if spec.greets {
                    let _ = conn.try_write(greeting.as_bytes());
                }
            }
            // Out of descriptors or a reset before accept: wait and go on.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit.
fn raise_nofile() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
