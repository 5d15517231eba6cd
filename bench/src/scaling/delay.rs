//! A delayed path without netem: nftables hands every packet the target
//! namespace sends out of its interface to an NFQUEUE, and a thread of this
//! process, with a netlink socket opened inside that namespace, lets each one
//! go ([`NF_ACCEPT`]) `delay` after it was queued. Packets leave in the order
//! they came, each exactly one delay late (to within [`TICK`]).
//!
//! The rule has `bypass` and the queue fails open: while nobody listens, or
//! if the queue overflows, packets pass undelayed rather than being dropped,
//! so the count of delayed packets is reported next to the figures.

use std::collections::VecDeque;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use vantage_tests::lab::net;

/// The queue's number (queues are per network namespace).
const QUEUE: u16 = 7;
/// How often the thread wakes to release packets at the latest.
const TICK: Duration = Duration::from_millis(1);
const NETLINK_NETFILTER: i32 = 12;
const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQA_CFG_MASK: u16 = 4;
const NFQA_CFG_FLAGS: u16 = 5;
const NFQA_CFG_F_FAIL_OPEN: u32 = 1;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_META: u8 = 1;
const NF_ACCEPT: u32 = 1;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;

/// The running delay; stopped (rule removed, thread joined) on drop.
pub struct Delay {
    ns: String,
    stop: Arc<AtomicBool>,
    delayed: Arc<AtomicU64>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Delay {
    /// Delays what namespace `ns` sends out of `dev` by `delay`.
    pub fn start(ns: &str, dev: &str, delay: Duration) -> anyhow::Result<Delay> {
        let stop = Arc::new(AtomicBool::new(false));
        let delayed = Arc::new(AtomicU64::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = {
            let (ns, stop, delayed) = (ns.to_string(), stop.clone(), delayed.clone());
            std::thread::spawn(move || {
                let sock = net::enter(&ns).map_err(anyhow::Error::from).and_then(|()| Queue::open());
                let sock = match sock {
                    Ok(s) => {
                        let _ = tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return Ok(());
                    }
                };
                sock.serve(delay, &stop, &delayed)
            })
        };
        let mut me = Delay { ns: ns.to_string(), stop, delayed, thread: Some(thread) };
        rx.recv().context("the delay thread ended")??;
        let rules = format!(
            "table ip vl_delay {{\n  chain out {{\n    type filter hook output priority 0; policy accept;\n    \
             oifname \"{dev}\" queue num {QUEUE} bypass\n  }}\n}}\n"
        );
        let path = std::env::temp_dir().join(format!("{ns}-delay.nft"));
        std::fs::write(&path, rules)?;
        let loaded = net::run(Command::new("ip").args(["netns", "exec", ns, "nft", "-f"]).arg(&path));
        let _ = std::fs::remove_file(&path);
        if let Err(e) = loaded {
            me.stop_now();
            return Err(e.into());
        }
        Ok(me)
    }

    /// Packets delayed so far.
    pub fn delayed(&self) -> u64 {
        self.delayed.load(Ordering::Relaxed)
    }

    fn stop_now(&mut self) {
        let _ =
            net::run(Command::new("ip").args(["netns", "exec", &self.ns, "nft", "delete", "table", "ip", "vl_delay"]));
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok(Err(e)) => eprintln!("scaling: the delay thread failed: {e:#}"),
                Err(_) => eprintln!("scaling: the delay thread panicked"),
                Ok(Ok(())) => {}
            }
        }
    }
}

impl Drop for Delay {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// A netlink socket bound to queue [`QUEUE`].
struct Queue {
    fd: i32,
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: closing the socket this value owns.
        unsafe { libc::close(self.fd) };
    }
}

fn attr(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// A netfilter-queue message: nlmsghdr, nfgenmsg, attributes.
fn message(kind: u16, attrs: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + attrs.len());
    out.extend_from_slice(&((20 + attrs.len()) as u32).to_ne_bytes());
    out.extend_from_slice(&((NFNL_SUBSYS_QUEUE << 8) | kind).to_ne_bytes());
    out.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&[libc::AF_UNSPEC as u8, 0]);
    out.extend_from_slice(&QUEUE.to_be_bytes());
    out.extend_from_slice(attrs);
    out
}

impl Queue {
    fn open() -> anyhow::Result<Queue> {
        // SAFETY: plain socket(2); the descriptor is owned by the Queue.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, NETLINK_NETFILTER) };
        anyhow::ensure!(fd >= 0, "netlink socket: {}", std::io::Error::last_os_error());
        let q = Queue { fd };
        // SAFETY: a zeroed sockaddr_nl is valid; bind(2) with its size.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        let rc = unsafe { libc::bind(fd, (&raw const addr).cast(), std::mem::size_of::<libc::sockaddr_nl>() as u32) };
        anyhow::ensure!(rc == 0, "netlink bind: {}", std::io::Error::last_os_error());
        let tv = libc::timeval { tv_sec: 0, tv_usec: TICK.as_micros() as i64 };
        let big: i32 = 8 << 20;
        // SAFETY: setsockopt(2) with values of the sizes given.
        unsafe {
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, (&raw const tv).cast(), size_of_val(&tv) as u32);
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, (&raw const big).cast(), 4);
        }
        let mut a = Vec::new();
        attr(&mut a, NFQA_CFG_CMD, &[NFQNL_CFG_CMD_BIND, 0, 0, libc::AF_INET as u8]);
        q.send(&message(NFQNL_MSG_CONFIG, &a))?;
        let mut a = Vec::new();
        let mut params = 0u32.to_be_bytes().to_vec();
        params.push(NFQNL_COPY_META);
        attr(&mut a, NFQA_CFG_PARAMS, &params);
        attr(&mut a, NFQA_CFG_QUEUE_MAXLEN, &65536u32.to_be_bytes());
        attr(&mut a, NFQA_CFG_MASK, &NFQA_CFG_F_FAIL_OPEN.to_be_bytes());
        attr(&mut a, NFQA_CFG_FLAGS, &NFQA_CFG_F_FAIL_OPEN.to_be_bytes());
        q.send(&message(NFQNL_MSG_CONFIG, &a))?;
        Ok(q)
    }

    fn send(&self, msg: &[u8]) -> anyhow::Result<()> {
        // SAFETY: send(2) of a buffer we own, to the kernel (the socket's default peer).
        let n = unsafe { libc::send(self.fd, msg.as_ptr().cast(), msg.len(), 0) };
        anyhow::ensure!(n == msg.len() as isize, "netlink send: {}", std::io::Error::last_os_error());
        Ok(())
    }

    fn accept(&self, id: u32) -> anyhow::Result<()> {
        let mut hdr = NF_ACCEPT.to_be_bytes().to_vec();
        hdr.extend_from_slice(&id.to_be_bytes());
        let mut a = Vec::new();
        attr(&mut a, NFQA_VERDICT_HDR, &hdr);
        self.send(&message(NFQNL_MSG_VERDICT, &a))
    }

    /// Receives queued packets and accepts each `delay` after it came, until `stop`.
    fn serve(&self, delay: Duration, stop: &AtomicBool, delayed: &AtomicU64) -> anyhow::Result<()> {
        let mut pending: VecDeque<(Instant, u32)> = VecDeque::new();
        let mut buf = vec![0u8; 1 << 16];
        while !stop.load(Ordering::Relaxed) {
            // SAFETY: recv(2) into a buffer we own, of its length.
            let n = unsafe { libc::recv(self.fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
            let now = Instant::now();
            if n > 0 {
                parse(&buf[..n as usize], |id| pending.push_back((now + delay, id)))?;
            }
            while pending.front().is_some_and(|(at, _)| *at <= now) {
                let (_, id) = pending.pop_front().expect("a front");
                self.accept(id)?;
                delayed.fetch_add(1, Ordering::Relaxed);
            }
        }
        for (_, id) in pending {
            self.accept(id)?;
        }
        Ok(())
    }
}

/// Calls `f` with the id of every queued packet in a netlink datagram.
fn parse(mut data: &[u8], mut f: impl FnMut(u32)) -> anyhow::Result<()> {
    let u16_at = |b: &[u8], i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
    while data.len() >= 16 {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if len < 16 || len > data.len() {
            break;
        }
        let (msg, rest) = data.split_at(len);
        data = &rest[rest.len().min(len.next_multiple_of(4) - len)..];
        let kind = u16_at(msg, 4);
        if kind == NLMSG_ERROR {
            let code = i32::from_ne_bytes([msg[16], msg[17], msg[18], msg[19]]);
            anyhow::ensure!(code == 0, "nfqueue: {}", std::io::Error::from_raw_os_error(-code));
            continue;
        }
        if kind != (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET {
            continue;
        }
        let mut attrs = &msg[20.min(msg.len())..];
        while attrs.len() >= 4 {
            let alen = usize::from(u16_at(attrs, 0));
            if alen < 4 || alen > attrs.len() {
                break;
            }
            if u16_at(attrs, 2) & 0x7fff == NFQA_PACKET_HDR && alen >= 8 {
                f(u32::from_be_bytes([attrs[4], attrs[5], attrs[6], attrs[7]]));
            }
            attrs = &attrs[alen.next_multiple_of(4).min(attrs.len())..];
        }
    }
    Ok(())
}
