//! The delay line itself (`vantage-lab delay`): a reader thread takes each
//! packet from the TUN device and queues it with its due time; a writer
//! thread sleeps until that time and writes it back. The delay is the same
//! for every packet, so one FIFO keeps their order. The queue is bounded: a
//! full queue drops the packet and counts it, as a router would.
//!
//! The main thread only waits for SIGTERM or SIGINT (tokio's signal
//! streams, registered before anything is installed, so neither kills the
//! process half-way), writing the counters every [`STATS_EVERY`]; on a
//! signal it removes the path before it exits.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use tokio::signal::unix::{Signal, SignalKind, signal};
use tun_rs::{DeviceBuilder, SyncDevice};

use super::{DELAY_IF, DelayStats, create_device, install, remove};
use crate::lab::spec::LabSpec;
use crate::lab::{LabError, net, state_dir};

/// How often the counters are written to the stats file.
pub const STATS_EVERY: Duration = Duration::from_millis(200);
/// Largest packet read from the device (no offload: at most the MTU).
const MAX_PACKET: usize = 65_535;

/// What `vantage-lab delay` was asked to do.
#[derive(Debug, Clone)]
pub struct LineConfig {
    /// The lab whose target namespace gets the line.
    pub lab: String,
    /// Added to every packet the targets send to a scanner or the control address.
    pub delay: Duration,
    /// Packets held at most.
    pub queue: usize,
    /// Where the counters go (JSON, [`DelayStats`]).
    pub stats: PathBuf,
    /// Written once the path is installed.
    pub ready: Option<PathBuf>,
}

/// The counters, shared by the reader, the writer and the main thread.
#[derive(Default)]
struct Counters {
    forwarded: AtomicU64,
    bytes: AtomicU64,
    dropped: AtomicU64,
    send_errors: AtomicU64,
    /// Packets queued now (the reader adds, the writer subtracts).
    queued: AtomicU64,
    max_queued: AtomicU64,
    max_late_us: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> DelayStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DelayStats {
            forwarded: get(&self.forwarded),
            bytes: get(&self.bytes),
            dropped: get(&self.dropped),
            send_errors: get(&self.send_errors),
            max_queued: get(&self.max_queued),
            max_late_us: get(&self.max_late_us),
        }
    }
}

/// One packet and when it may leave.
struct Held {
    due: Instant,
    packet: Vec<u8>,
}

/// Runs the line until SIGTERM or SIGINT, then removes the path; returns the final counters.
pub fn run(cfg: &LineConfig) -> Result<DelayStats, LabError> {
    if cfg.queue == 0 {
        return Err(LabError::Spec("the delay line's queue must hold at least one packet".into()));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| LabError::io("starting the signal runtime", e))?;
    let mut signals = runtime.block_on(async { Signals::register() })?;
    let spec = LabSpec::new(&cfg.lab);
    let ns = spec.ns_targets();
    // This thread, and the threads it starts, live in the target namespace:
    // the device is looked up by name there.
    net::enter(&ns)?;
    let dir = state_dir(&cfg.lab);
    std::fs::create_dir_all(&dir).map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
    remove(&spec)?;
    create_device(&ns)?;
    let result = serve(cfg, &spec, &dir, &runtime, &mut signals);
    let removed = remove(&spec);
    let stats = result?;
    removed?;
    write_stats(&cfg.stats, &stats)?;
    Ok(stats)
}

/// Opens the device, installs the path, starts the threads and waits for a signal.
fn serve(
    cfg: &LineConfig,
    spec: &LabSpec,
    dir: &Path,
    runtime: &tokio::runtime::Runtime,
    signals: &mut Signals,
) -> Result<DelayStats, LabError> {
    let device = DeviceBuilder::new()
        .name(DELAY_IF)
        .build_sync()
        .map_err(|e| LabError::io(format!("opening the TUN device {DELAY_IF}"), e))?;
    let device = Arc::new(device);
    let counters = Arc::new(Counters::default());
    let (tx, rx) = sync_channel(cfg.queue);
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new().name(name.into()).spawn(f).map_err(|e| LabError::io(format!("starting {name}"), e))
    };
    let (d, c) = (device.clone(), counters.clone());
    let delay = cfg.delay;
    spawn("delay-reader", Box::new(move || read_loop(&d, delay, &tx, &c)))?;
    let (d, c) = (device.clone(), counters.clone());
    spawn("delay-writer", Box::new(move || write_loop(&d, &rx, &c)))?;
    install(spec, dir)?;
    write_stats(&cfg.stats, &counters.snapshot())?;
    if let Some(ready) = &cfg.ready {
        std::fs::write(ready, "ready\n").map_err(|e| LabError::io(format!("writing {}", ready.display()), e))?;
    }
    eprintln!(
        "delay line on {DELAY_IF} in {}: +{} on the targets' answers (SIGTERM or Ctrl-C removes it)",
        spec.ns_targets(),
        humantime::format_duration(cfg.delay)
    );
    runtime.block_on(async {
        loop {
            tokio::select! {
                _ = signals.term.recv() => return Ok(()),
                _ = signals.int.recv() => return Ok(()),
                _ = tokio::time::sleep(STATS_EVERY) => write_stats(&cfg.stats, &counters.snapshot())?,
            }
        }
    })?;
    Ok(counters.snapshot())
}

/// Reads packets and queues them with their due time, until the device goes away.
fn read_loop(device: &SyncDevice, delay: Duration, tx: &SyncSender<Held>, counters: &Counters) {
    let mut buf = vec![0u8; MAX_PACKET];
    while let Ok(n) = device.recv(&mut buf) {
        let held = Held { due: Instant::now() + delay, packet: buf[..n].to_vec() };
        // Count before sending, so the writer never takes the count below zero.
        let queued = counters.queued.fetch_add(1, Ordering::Relaxed) + 1;
        match tx.try_send(held) {
            Ok(()) => {
                counters.max_queued.fetch_max(queued, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) => {
                counters.queued.fetch_sub(1, Ordering::Relaxed);
                counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

/// Writes each packet back once it is due.
fn write_loop(device: &SyncDevice, rx: &Receiver<Held>, counters: &Counters) {
    while let Ok(held) = rx.recv() {
        let now = Instant::now();
        match held.due.checked_duration_since(now) {
            Some(wait) => std::thread::sleep(wait),
            None => {
                let late = u64::try_from(now.duration_since(held.due).as_micros()).unwrap_or(u64::MAX);
                counters.max_late_us.fetch_max(late, Ordering::Relaxed);
            }
        }
        counters.queued.fetch_sub(1, Ordering::Relaxed);
        match device.send(&held.packet) {
            Ok(n) => {
                counters.forwarded.fetch_add(1, Ordering::Relaxed);
                counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(_) => {
                counters.send_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// SIGTERM and SIGINT, taken over from their default (ending the process).
struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Must run inside the runtime that will wait for them.
    fn register() -> Result<Signals, LabError> {
        let take = |kind: SignalKind| signal(kind).map_err(|e| LabError::io("handling SIGTERM and SIGINT", e));
        Ok(Signals { term: take(SignalKind::terminate())?, int: take(SignalKind::interrupt())? })
    }
}

/// Replaces the stats file at once (write, then rename), so readers never see half of it.
fn write_stats(path: &Path, stats: &DelayStats) -> Result<(), LabError> {
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_string(stats).expect("counters serialise");
    std::fs::write(&tmp, text).map_err(|e| LabError::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| LabError::io(format!("renaming {}", tmp.display()), e))
}
