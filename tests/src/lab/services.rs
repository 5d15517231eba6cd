//! The service lab: one lab host running real Debian daemons (OpenSSH,
//! nginx, Redis, MariaDB, PostgreSQL, vsftpd, Exim, memcached, dnsmasq,
//! Net-SNMP, Mosquitto, OpenLDAP, telnetd, tftpd-hpa, Dovecot, rsync, git),
//! each on its standard port and on an odd one.
//!
//! Service and version detection (issue #4) can only be judged against the
//! real thing: a hand-written imitation of an SSH or MySQL greeting tells
//! nothing about the banners, quirks and version strings a scanner meets on
//! the internet. The daemons come from Debian's packages (see
//! `tests/lab-services.packages`, installed by `.ci/run`), so the truth of
//! each port is the package and its installed version (`dpkg-query`).
//!
//! The services host is 198.18.1.1 in the target namespace of an ordinary
//! lab network ([`net`]: `vl-<name>-scan` with the scanner at 198.18.0.1,
//! `vl-<name>-t`, a bridge between them, no route out). Every daemon runs
//! inside that namespace, listens on the lab address only, keeps its
//! configuration, data, pid and log files in the lab's state directory (not
//! `/etc` or `/var`), and stays in the foreground, so the harness holds its
//! PID. All of them start at once; [`ServiceLab::up`] returns when every
//! listed port answers from the scanner namespace (a TCP connect, or a valid
//! answer to a minimal UDP request), or fails with the daemons' logs.
//!
//! What an anonymous client meets is part of the truth: Redis, memcached,
//! Mosquitto, vsftpd (anonymous FTP), rsync (module `lab`), git daemon and
//! SNMP (community `public`) serve anyone; PostgreSQL (`postgres`) and
//! MariaDB (`lab`) ask for a password (`vantage-lab`); sshd takes no
//! password and no key; telnetd's login refuses everyone; nginx, Exim's
//! STARTTLS and Dovecot's IMAPS/POP3S use one self-signed certificate.
//!
//! The odd ports are nftables `dnat` rules in the target namespace (2222 to
//! 22, ...): one mechanism for every daemon, including those that can bind
//! one port only (Redis, PostgreSQL, MariaDB, vsftpd, memcached, tftpd), and
//! a scanner sees no difference. Only that redirected traffic is tracked by
//! conntrack, so a full port scan of the host cannot fill the table.
//!
//! Teardown (on drop, [`ServiceLab::down`] or `vantage-lab services down`)
//! stops each daemon by PID with its own signal (so PostgreSQL removes its
//! shared memory), gives them a few seconds, then kills whatever is left in
//! the namespaces, deletes them and removes the state directory.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::spec::{LabSpec, SCANNER_ADDR};
use super::{Lab, LabError, net, nft, state_dir};

/// The address of the services host (in `vl-<name>-t`).
pub const SERVICES_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
/// How long every daemon together may take to prepare its data and answer on every port.
pub const READY_LIMIT: Duration = Duration::from_secs(60);
/// How long one preparation step (initdb, key generation, ...) may take.
const PREP_LIMIT: Duration = Duration::from_secs(45);
/// How long the daemons get to stop on their signal before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// The Debian packages `.ci/run` installs for the service lab.
pub const PACKAGES_FILE: &str = include_str!("../../lab-services.packages");

/// Transport protocol of a service port: the product's own.
pub use vantage_shared::Proto;

/// One port of the services host and the daemon behind it: the ground
/// truth a service scan is judged against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabService {
    pub addr: Ipv4Addr,
    pub proto: Proto,
    pub port: u16,
    /// A non-standard port (redirected by nftables to `listens`).
    pub odd: bool,
    /// The port the daemon itself binds (its standard port).
    pub listens: u16,
    /// The service in nmap's vocabulary (`ssh`, `http`, `mysql`, `domain`, ...);
    /// inside TLS when `tls` is set (nmap's `ssl/http`).
    pub service: String,
    pub tls: bool,
    /// The lab's name for the daemon (`sshd`, `nginx`, ...): its log is `logs/<daemon>.log`.
    pub daemon: String,
    /// The software, as its authors name it (`OpenSSH`, `nginx`, `MariaDB`, ...).
    pub product: String,
    /// The Debian package holding the daemon's binary.
    pub package: String,
    /// The package's installed version (`1:9.2p1-2+deb12u5`); see [`upstream_version`].
    pub version: String,
}

impl LabService {
    pub fn socket_addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.addr, self.port)
    }

    /// The upstream part of [`LabService::version`] (`9.2p1`), what a daemon announces.
    pub fn upstream_version(&self) -> &str {
        upstream_version(&self.version)
    }
}

/// What `vantage-lab services up` prints: where the lab is and what runs on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicesReport {
    pub name: String,
    /// The scanner's address, in `scanner_ns`.
    pub scanner: Ipv4Addr,
    pub scanner_ns: String,
    /// The services host, in `target_ns`.
    pub addr: Ipv4Addr,
    pub target_ns: String,
    /// The lab's state directory: configuration, data and `logs/` of every daemon.
    pub dir: PathBuf,
    pub services: Vec<LabService>,
}

/// A running service lab. Dropping it tears everything down (also when a
/// test fails), unless [`ServiceLab::keep`] handed it over to
/// `vantage-lab services down`.
pub struct ServiceLab {
    spec: LabSpec,
    dir: PathBuf,
    services: Vec<LabService>,
    /// The daemons (`ip netns exec ... <daemon>`), by lab name.
    children: Vec<(String, Child)>,
    armed: bool,
}

impl ServiceLab {
    /// Builds the service lab `name` with every daemon, after tearing down
    /// leftovers of any lab of the same name.
    pub fn up(name: &str) -> Result<ServiceLab, LabError> {
        ServiceLab::up_only(name, &[])
    }

    /// Like [`ServiceLab::up`], with only the named daemons ([`daemon_names`]); all when empty.
    pub fn up_only(name: &str, only: &[&str]) -> Result<ServiceLab, LabError> {
        let spec = LabSpec { hosts: 1, open: 0, filtered: 0, ..LabSpec::new(name) };
        spec.validate()?;
        let daemons = select(only)?;
        missing_packages(&daemons).map_or(Ok(()), |why| Err(LabError::Spec(why)))?;
        ServiceLab::teardown(name)?;
        let dir = state_dir(name);
        for d in [dir.parent().unwrap_or(&dir), &dir, &dir.join("logs"), &dir.join("pids")] {
            mkdir(d)?;
        }
        // From here on, dropping `lab` undoes whatever was built.
        let services = plan(only)?;
        let mut lab = ServiceLab { spec, dir, services, children: Vec::new(), armed: true };
        net::create(&lab.spec, &[SERVICES_ADDR], &lab.dir)?;
        nft::load(&lab.spec.ns_targets(), &ruleset(&lab.services), &lab.dir)?;
        let tls = Tls::generate(&lab.dir)?;
        lab.start(&daemons, &tls)?;
        lab.wait_ready()?;
        Ok(lab)
    }

    /// Prepares and starts every daemon, each on a thread of its own.
    fn start(&mut self, daemons: &[&'static Daemon], tls: &Tls) -> Result<(), LabError> {
        let ns = self.spec.ns_targets();
        let started: Vec<Result<(String, Child), LabError>> = std::thread::scope(|s| {
            let threads: Vec<_> = daemons
                .iter()
                .map(|d| {
                    let ctx = Ctx::new(d, &self.dir, &ns, tls);
                    s.spawn(move || ctx.and_then(|ctx| ctx.launch(d).map(|child| (d.id.to_string(), child))))
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        let mut first_error = None;
        for result in started {
            match result {
                Ok(child) => self.children.push(child),
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Waits until every port answers from the scanner namespace, or a daemon exits.
    fn wait_ready(&mut self) -> Result<(), LabError> {
        let started = Instant::now();
        let deadline = started + READY_LIMIT;
        let mut pending: Vec<LabService> = self.services.clone();
        loop {
            let scanner = self.spec.ns_scanner();
            // All at once: a UDP port that is not served yet costs a whole timeout.
            pending = net::run_in(&scanner, || {
                std::thread::scope(|scope| {
                    let probes: Vec<_> = pending
                        .into_iter()
                        .map(|s| scope.spawn(move || answers(&s, Duration::from_millis(300)).err().map(|_| s)))
                        .collect();
                    probes
                        .into_iter()
                        .filter_map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                        .collect()
                })
            })?;
            if pending.is_empty() {
                return Ok(());
            }
            let exited: Vec<String> = self
                .children
                .iter_mut()
                .filter_map(|(id, child)| match child.try_wait() {
                    Ok(Some(status)) => Some(format!("{id} exited ({status})")),
                    _ => None,
                })
                .collect();
            if !exited.is_empty() || Instant::now() > deadline {
                let daemons: BTreeSet<&str> = pending.iter().map(|s| s.daemon.as_str()).collect();
                let mut log = format!("{}; not answering:", exited.join(", "));
                for s in &pending {
                    let _ = write!(log, " {}/{} ({})", s.proto, s.port, s.daemon);
                }
                for d in daemons {
                    let _ = write!(log, "\n--- {d}: {} ---\n{}", self.log_path(d).display(), tail(&self.log(d), 30));
                }
                return Err(LabError::NotReady { waited: started.elapsed(), log });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn spec(&self) -> &LabSpec {
        &self.spec
    }

    /// The services host's address.
    pub fn addr(&self) -> Ipv4Addr {
        SERVICES_ADDR
    }

    /// Every port of the services host (daemon by daemon, standard ports first), with its package.
    pub fn services(&self) -> &[LabService] {
        &self.services
    }

    /// The lab's state directory (configuration, data, `logs/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log (stdout and stderr) of a daemon, by its lab name (`sshd`, ...).
    pub fn log(&self, daemon: &str) -> String {
        std::fs::read_to_string(self.log_path(daemon)).unwrap_or_default()
    }

    fn log_path(&self, daemon: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{daemon}.log"))
    }

    pub fn report(&self) -> ServicesReport {
        ServicesReport {
            name: self.spec.name.clone(),
            scanner: SCANNER_ADDR,
            scanner_ns: self.spec.ns_scanner(),
            addr: SERVICES_ADDR,
            target_ns: self.spec.ns_targets(),
            dir: self.dir.clone(),
            services: self.services.clone(),
        }
    }

    /// `program` run inside the scanner namespace.
    pub fn scanner_command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.spec.ns_scanner()]).arg(program);
        cmd
    }

    /// Runs `f` on a thread inside the scanner namespace (plain std sockets work).
    pub fn in_scanner<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, LabError> {
        net::run_in(&self.spec.ns_scanner(), f)
    }

    /// Tears the lab down now, reporting what went wrong.
    pub fn down(mut self) -> Result<(), LabError> {
        self.armed = false;
        let result = ServiceLab::teardown(&self.spec.name);
        self.reap();
        result
    }

    /// Leaves the lab running after this value is gone (`vantage-lab services up`);
    /// `vantage-lab services down`, `vantage-lab down` or the next `up` of the same name removes it.
    pub fn keep(mut self) {
        self.armed = false;
        // Dropping a `Child` neither kills nor waits for it.
        self.children.clear();
    }

    fn reap(&mut self) {
        for (_, mut child) in self.children.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Removes everything a lab of this name may have left: stops the
    /// daemons recorded in its state directory by PID, each with its own
    /// signal, then does what [`Lab::teardown`] does (kills what is left in
    /// the namespaces, deletes them, removes the state directory).
    pub fn teardown(name: &str) -> Result<(), LabError> {
        let spec = LabSpec::new(name);
        let ns = spec.ns_targets();
        let pids_dir = state_dir(name).join("pids");
        let mut stopping = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&pids_dir) {
            for entry in entries.flatten() {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let mut words = text.split_whitespace().map(str::parse::<i32>);
                let (Some(Ok(pid)), Some(Ok(signal))) = (words.next(), words.next()) else { continue };
                // Only a process that is still in the lab's namespace: a PID may have been reused.
                if pid > 0 && in_namespace(pid, &ns) {
                    // SAFETY: kill(2) on a PID that lives in our own lab namespace.
                    unsafe { libc::kill(pid, signal) };
                    stopping.push(pid);
                }
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        while stopping.iter().any(|p| net::alive(*p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        Lab::teardown(&spec)
    }
}

impl Drop for ServiceLab {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Err(e) = ServiceLab::teardown(&self.spec.name) {
            eprintln!("service lab {}: {e}", self.spec.name);
        }
        self.reap();
    }
}

/// Whether process `pid` lives in network namespace `ns`.
fn in_namespace(pid: i32, ns: &str) -> bool {
    let (Ok(theirs), Ok(ours)) =
        (std::fs::metadata(format!("/proc/{pid}/ns/net")), std::fs::metadata(format!("/run/netns/{ns}")))
    else {
        return false;
    };
    theirs.dev() == ours.dev() && theirs.ino() == ours.ino()
}

/// The installed version of a Debian package (`dpkg-query -W -f '${Version}'`).
pub fn installed_version(package: &str) -> Result<String, LabError> {
    let out = net::run(Command::new("dpkg-query").args(["-W", "-f", "${Status}\t${Version}", package]))?;
    match out.split_once('\t') {
        Some((status, version)) if status == "install ok installed" && !version.is_empty() => Ok(version.to_string()),
        _ => Err(LabError::Spec(format!("Debian package {package} is not installed"))),
    }
}

/// The upstream version in a Debian version: no epoch, no Debian
/// revision, no repack suffix (`1:9.2p1-2+deb12u5` is `9.2p1`,
/// `5.9.3+dfsg-2` is `5.9.3`).
pub fn upstream_version(debian: &str) -> &str {
    let v = debian.split_once(':').map_or(debian, |(_, v)| v);
    let v = v.rsplit_once('-').map_or(v, |(v, _)| v);
    v.split(['+', '~']).next().unwrap_or(v)
}

/// The packages listed in `tests/lab-services.packages`.
pub fn listed_packages() -> Vec<&'static str> {
    PACKAGES_FILE.lines().filter_map(|l| l.split('#').next()?.split_whitespace().next()).collect()
}

/// Every port [`ServiceLab::up_only`] would serve with `only` (all daemons
/// when empty), with installed versions; fails when a package is missing.
pub fn plan(only: &[&str]) -> Result<Vec<LabService>, LabError> {
    let mut out = Vec::new();
    for d in select(only)? {
        out.extend(d.services()?);
    }
    Ok(out)
}

/// The lab names of the daemons, in start order.
pub fn daemon_names() -> Vec<&'static str> {
    DAEMONS.iter().map(|d| d.id).collect()
}

fn select(only: &[&str]) -> Result<Vec<&'static Daemon>, LabError> {
    if let Some(unknown) = only.iter().find(|o| !DAEMONS.iter().any(|d| d.id == **o)) {
        return Err(LabError::Spec(format!("no daemon `{unknown}` (one of: {})", daemon_names().join(", "))));
    }
    Ok(DAEMONS.iter().filter(|d| only.is_empty() || only.contains(&d.id)).collect())
}

/// Why the service lab cannot run here (daemon packages missing), if it cannot.
pub fn check() -> Result<(), String> {
    let daemons = select(&[]).map_err(|e| e.to_string())?;
    missing_packages(&daemons).map_or(Ok(()), Err)
}

/// For service lab tests: [`super::require`], and the daemons' packages
/// installed. A missing package fails the test in CI (`CI=true`), and
/// skips it with a message elsewhere.
pub fn require() -> bool {
    if !super::require() {
        return false;
    }
    let Err(why) = check() else { return true };
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(!ci, "the service lab cannot run in CI: {why}");
    eprintln!("skipping: {why}");
    false
}

fn missing_packages(daemons: &[&Daemon]) -> Option<String> {
    let missing: Vec<String> = daemons
        .iter()
        .flat_map(|d| d.needs.iter())
        .filter(|bin| !Path::new(bin).exists())
        .map(|bin| bin.to_string())
        .collect();
    (!missing.is_empty()).then(|| {
        format!("missing {} (install the packages of tests/lab-services.packages, as .ci/run does)", missing.join(", "))
    })
}

// ---------------------------------------------------------------------------
// Probing the ports

/// Whether `s` answers now: a TCP connect, or a valid answer to [`udp_request`].
pub fn answers(s: &LabService, timeout: Duration) -> Result<(), String> {
    match s.proto {
        Proto::Tcp => TcpStream::connect_timeout(&SocketAddr::V4(s.socket_addr()), timeout)
            .map(drop)
            .map_err(|e| format!("connect: {e}")),
        Proto::Udp => udp_exchange(s.socket_addr(), &s.service, timeout).map(drop),
    }
}

/// A minimal valid request of a UDP service (by nmap name) that its server answers:
/// `domain` (a query for `www.vantage-lab.invalid`, which dnsmasq is authoritative
/// for), `snmp` (a v2c get of sysDescr.0, community `public`), `memcached`
/// (`stats` in the 8-byte UDP frame), `tftp` (a read request for `hello.txt`).
pub fn udp_request(service: &str) -> Option<Vec<u8>> {
    Some(match service {
        "domain" => dns_query(0x5a17, "www.vantage-lab.invalid"),
        "snmp" => snmp_get(b"public", &[1, 3, 6, 1, 2, 1, 1, 1, 0]),
        "memcached" => [&[0x12, 0x34, 0, 0, 0, 1, 0, 0][..], b"stats\r\n"].concat(),
        "tftp" => [&[0, 1][..], b"hello.txt\0octet\0"].concat(),
        _ => return None,
    })
}

/// Whether `answer` is a valid reply to [`udp_request`] of `service`.
pub fn udp_answer_ok(service: &str, answer: &[u8]) -> bool {
    match service {
        // Same ID, a response, no error, at least one answer record.
        "domain" => {
            answer.len() > 12 && answer[..2] == [0x5a, 0x17] && answer[2] & 0x80 != 0 && answer[3] & 0x0f == 0 && {
                u16::from_be_bytes([answer[6], answer[7]]) > 0
            }
        }
        // A SEQUENCE holding a GetResponse PDU (tag 0xa2).
        "snmp" => answer.first() == Some(&0x30) && answer.contains(&0xa2),
        // Our request ID, then the stats lines.
        "memcached" => answer.len() > 8 && answer[..2] == [0x12, 0x34] && answer[8..].starts_with(b"STAT "),
        // DATA block 1.
        "tftp" => answer.starts_with(&[0, 3, 0, 1]),
        _ => !answer.is_empty(),
    }
}

/// Sends [`udp_request`] of `service` to `addr` (from the calling thread's
/// namespace) and returns the first valid answer from the host of `addr`,
/// whatever its source port (a TFTP server answers from a new one).
pub fn udp_exchange(addr: SocketAddrV4, service: &str, timeout: Duration) -> Result<Vec<u8>, String> {
    let request = udp_request(service).ok_or_else(|| format!("no UDP request for `{service}`"))?;
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(|e| format!("bind: {e}"))?;
    socket.send_to(&request, addr).map_err(|e| format!("send: {e}"))?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no valid answer within {timeout:?}"));
        }
        socket.set_read_timeout(Some(left)).map_err(|e| format!("timeout: {e}"))?;
        match socket.recv_from(&mut buf) {
            Ok((n, SocketAddr::V4(from))) if from.ip() == addr.ip() && udp_answer_ok(service, &buf[..n]) => {
                if service == "tftp" {
                    // Acknowledge the one block, so the server does not send it again.
                    let _ = socket.send_to(&[0, 4, 0, 1], from);
                }
                return Ok(buf[..n].to_vec());
            }
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(format!("receive: {e}")),
        }
    }
}

fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]); // root; type A, class IN
    q
}

/// A BER tag-length-value (short lengths only: our messages are tiny).
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    [&[tag, value.len() as u8][..], value].concat()
}

fn snmp_get(community: &[u8], oid: &[u32]) -> Vec<u8> {
    let mut oid_bytes = vec![(oid[0] * 40 + oid[1]) as u8];
    for &arc in &oid[2..] {
        // Arcs above 127 take base-128 groups; sysDescr has none, but keep it right.
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            groups.push((rest & 0x7f) as u8 | 0x80);
            rest >>= 7;
        }
        oid_bytes.extend(groups.iter().rev());
    }
    let varbind = tlv(0x30, &[tlv(0x06, &oid_bytes), vec![0x05, 0x00]].concat());
    let pdu = tlv(0xa0, &[tlv(0x02, &[0x2a]), tlv(0x02, &[0]), tlv(0x02, &[0]), tlv(0x30, &varbind)].concat());
    tlv(0x30, &[tlv(0x02, &[1]), tlv(0x04, community), pdu].concat())
}

// ---------------------------------------------------------------------------
// The nftables rules

/// Odd ports to standard ones, and conntrack for that traffic only.
fn ruleset(services: &[LabService]) -> String {
    let odd: Vec<&LabService> = services.iter().filter(|s| s.odd).collect();
    let ports = |proto: Proto, f: fn(&LabService) -> u16| -> Vec<String> {
        let set: BTreeSet<u16> = odd.iter().filter(|s| s.proto == proto).map(|s| f(s)).collect();
        set.iter().map(u16::to_string).collect()
    };
    let mut out = format!("table inet {} {{\n", nft::TABLE);
    for (name, proto, f) in [
        ("odd_tcp", Proto::Tcp, (|s: &LabService| s.port) as fn(&LabService) -> u16),
        ("odd_udp", Proto::Udp, |s| s.port),
        ("std_tcp", Proto::Tcp, |s| s.listens),
        ("std_udp", Proto::Udp, |s| s.listens),
    ] {
        let _ = write!(out, "  set {name} {{\n    type inet_service\n");
        let elements = ports(proto, f);
        if !elements.is_empty() {
            let _ = writeln!(out, "    elements = {{ {} }}", elements.join(", "));
        }
        out += "  }\n";
    }
    out += "  chain untracked_in {\n    type filter hook prerouting priority raw; policy accept;\n    \
            tcp dport != @odd_tcp notrack\n    udp dport != @odd_udp notrack\n  }\n";
    out += "  chain untracked_out {\n    type filter hook output priority raw; policy accept;\n    \
            tcp sport != @std_tcp notrack\n    udp sport != @std_udp notrack\n  }\n";
    out += "  chain odd_ports {\n    type nat hook prerouting priority dstnat; policy accept;\n";
    for s in &odd {
        let _ = writeln!(
            out,
            "    ip daddr {a} {p} dport {} dnat ip to {a}:{}",
            s.port,
            s.listens,
            a = s.addr,
            p = s.proto
        );
    }
    out += "  }\n}\n";
    out
}

// ---------------------------------------------------------------------------
// The daemons

/// A port a daemon serves: its standard port and the odd one redirected to it.
struct Port {
    proto: Proto,
    port: u16,
    odd: u16,
    service: &'static str,
    tls: bool,
}

const fn tcp(port: u16, odd: u16, service: &'static str) -> Port {
    Port { proto: Proto::Tcp, port, odd, service, tls: false }
}

const fn tls(port: u16, odd: u16, service: &'static str) -> Port {
    Port { proto: Proto::Tcp, port, odd, service, tls: true }
}

const fn udp(port: u16, odd: u16, service: &'static str) -> Port {
    Port { proto: Proto::Udp, port, odd, service, tls: false }
}

/// How to run one daemon.
struct Daemon {
    /// The lab's name for it: its directory, log and pid file.
    id: &'static str,
    /// The package of its binary; `None` when it depends on the release (PostgreSQL).
    package: Option<&'static str>,
    product: &'static str,
    ports: &'static [Port],
    /// Files that must exist (from the packages of `tests/lab-services.packages`).
    needs: &'static [&'static str],
    /// Writes its configuration and data, and says how to run it.
    setup: fn(&Ctx) -> Result<Launch, LabError>,
}

impl Daemon {
    fn package(&self) -> Result<String, LabError> {
        match self.package {
            Some(p) => Ok(p.to_string()),
            None => Ok(format!("postgresql-{}", postgres_major()?)),
        }
    }

    /// Its ports, standard and odd, with the installed version of its package.
    fn services(&self) -> Result<Vec<LabService>, LabError> {
        let package = self.package()?;
        let version = installed_version(&package)?;
        let entry = |p: &Port, port: u16| LabService {
            addr: SERVICES_ADDR,
            proto: p.proto,
            port,
            odd: port != p.port,
            listens: p.port,
            service: p.service.to_string(),
            tls: p.tls,
            daemon: self.id.to_string(),
            product: self.product.to_string(),
            package: package.clone(),
            version: version.clone(),
        };
        let standard = self.ports.iter().map(|p| entry(p, p.port));
        Ok(standard.chain(self.ports.iter().map(|p| entry(p, p.odd))).collect())
    }
}

/// A daemon's command line, user and stop signal.
struct Launch {
    argv: Vec<OsString>,
    /// Run as this user (with `setpriv`), for daemons that refuse root or do not drop it.
    user: Option<&'static str>,
    env: Vec<(&'static str, OsString)>,
    /// A private IPC namespace: SysV shared memory goes with the daemon, even when it is killed.
    private_ipc: bool,
    stop: i32,
}

impl Launch {
    fn new<S: AsRef<OsStr>>(argv: impl IntoIterator<Item = S>) -> Launch {
        Launch {
            argv: argv.into_iter().map(|a| a.as_ref().to_os_string()).collect(),
            user: None,
            env: Vec::new(),
            private_ipc: false,
            stop: libc::SIGTERM,
        }
    }

    fn user(mut self, user: &'static str) -> Launch {
        self.user = Some(user);
        self
    }
}

/// The self-signed certificate of the TLS services (nginx, Dovecot, Exim).
struct Tls {
    cert: PathBuf,
    key: PathBuf,
}

impl Tls {
    fn generate(dir: &Path) -> Result<Tls, LabError> {
        let tls_dir = dir.join("tls");
        mkdir(&tls_dir)?;
        let (cert, key) = (tls_dir.join("cert.pem"), tls_dir.join("key.pem"));
        let log = dir.join("logs").join("openssl.log");
        let mut cmd = Command::new("openssl");
        cmd.args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .args(["-subj", "/O=Vantage lab/CN=services.vantage-lab.invalid"])
            .args(["-addext", &format!("subjectAltName=DNS:services.vantage-lab.invalid,IP:{SERVICES_ADDR}")]);
        run_logged(&mut cmd, &log, PREP_LIMIT)?;
        // A throwaway key of a lab that has no route out: readable by the daemons' users.
        chmod(&key, 0o644)?;
        Ok(Tls { cert, key })
    }
}

/// What a daemon's setup works with: its own directory and log.
struct Ctx<'a> {
    id: &'static str,
    dir: PathBuf,
    log: PathBuf,
    pid_file: PathBuf,
    ns: &'a str,
    tls: &'a Tls,
}

impl<'a> Ctx<'a> {
    fn new(d: &Daemon, lab_dir: &Path, ns: &'a str, tls: &'a Tls) -> Result<Ctx<'a>, LabError> {
        let dir = lab_dir.join(d.id);
        mkdir(&dir)?;
        Ok(Ctx {
            id: d.id,
            dir,
            log: lab_dir.join("logs").join(format!("{}.log", d.id)),
            pid_file: lab_dir.join("pids").join(d.id),
            ns,
            tls,
        })
    }

    /// A path in the daemon's directory.
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// The path as a string, for configuration files.
    fn p(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }

    fn write(&self, rel: &str, text: &str) -> Result<PathBuf, LabError> {
        let path = self.path(rel);
        std::fs::write(&path, text).map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
        Ok(path)
    }

    /// A directory of the daemon's, owned by `owner` (root when `None`).
    fn mkdir(&self, rel: &str, owner: Option<&str>) -> Result<PathBuf, LabError> {
        let path = self.path(rel);
        mkdir(&path)?;
        if let Some(user) = owner {
            chown(&path, user)?;
        }
        Ok(path)
    }

    /// Runs a preparation step inside the target namespace (as `user`),
    /// its output appended to the daemon's log.
    fn prep<S: AsRef<OsStr>>(&self, user: Option<&str>, argv: impl IntoIterator<Item = S>) -> Result<(), LabError> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns]);
        if let Some(user) = user {
            cmd.args(as_user(user)?);
        }
        cmd.args(argv);
        run_logged(&mut cmd, &self.log, PREP_LIMIT)
    }

    /// Sets the daemon up and starts it in the target namespace; records its PID and stop signal.
    fn launch(&self, d: &Daemon) -> Result<Child, LabError> {
        let launch = (d.setup)(self)?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns]);
        if launch.private_ipc {
            cmd.args(["unshare", "--ipc", "--"]);
        }
        if let Some(user) = launch.user {
            cmd.args(as_user(user)?);
        }
        cmd.args(&launch.argv).envs(launch.env.iter().map(|(k, v)| (k, v)));
        let (out, err) = log_files(&self.log)?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        // Its own process group: a Ctrl-C meant for `vantage-lab` does not reach it.
        cmd.process_group(0);
        let child = cmd.spawn().map_err(|e| LabError::io(format!("starting {}", self.id), e))?;
        // `ip netns exec`, `unshare` and `setpriv` exec: the PID is the daemon's.
        std::fs::write(&self.pid_file, format!("{} {}\n", child.id(), launch.stop))
            .map_err(|e| LabError::io(format!("writing {}", self.pid_file.display()), e))?;
        Ok(child)
    }
}

/// Runs `cmd` to completion within `limit`, its output appended to `log`.
fn run_logged(cmd: &mut Command, log: &Path, limit: Duration) -> Result<(), LabError> {
    let (out, err) = log_files(log)?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| LabError::io(format!("cannot run {:?}", cmd.get_program()), e))?;
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| LabError::io("waiting", e))? {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    match status {
        Some(s) if s.success() => Ok(()),
        _ => Err(LabError::Command {
            command: format!("{cmd:?}"),
            stderr: format!(
                "{} (log {}):\n{}",
                status.map_or(format!("still running after {limit:?}"), |s| s.to_string()),
                log.display(),
                excerpt(&std::fs::read_to_string(log).unwrap_or_default())
            ),
        }),
    }
}

fn log_files(log: &Path) -> Result<(File, File), LabError> {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| LabError::io(format!("opening {}", log.display()), e))?;
    let err = out.try_clone().map_err(|e| LabError::io("duplicating the log", e))?;
    Ok((out, err))
}

/// What a failed step's log says: its error lines (tools like
/// `mariadb-install-db` bury the cause above a page of help), then its end.
fn excerpt(log: &str) -> String {
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("error") || l.contains("fatal") || l.contains("failed")
        })
        .take(15)
        .collect();
    let end = tail(log, 20);
    if errors.is_empty() { end } else { format!("{}\n...\n{end}", errors.join("\n")) }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A directory others may enter (daemons run as their own users), whatever the umask.
fn mkdir(path: &Path) -> Result<(), LabError> {
    std::fs::create_dir_all(path).map_err(|e| LabError::io(format!("creating {}", path.display()), e))?;
    chmod(path, 0o755)
}

fn chmod(path: &Path, mode: u32) -> Result<(), LabError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| LabError::io(format!("chmod {}", path.display()), e))
}

/// The uid and primary gid of a system user of `/etc/passwd`.
fn user_ids(user: &str) -> Result<(u32, u32), LabError> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| LabError::io("reading /etc/passwd", e))?;
    let ids = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == user).then(|| Some((f[2].parse::<u32>().ok()?, f[3].parse::<u32>().ok()?)))?
    });
    ids.ok_or_else(|| LabError::Spec(format!("no user `{user}` in /etc/passwd")))
}

/// `setpriv` arguments that run the rest of a command line as `user`.
fn as_user(user: &str) -> Result<Vec<String>, LabError> {
    let (uid, gid) = user_ids(user)?;
    Ok(["setpriv", "--reuid", &uid.to_string(), "--regid", &gid.to_string(), "--init-groups", "--"]
        .map(String::from)
        .to_vec())
}

/// Gives `path` to a system user and its primary group.
fn chown(path: &Path, user: &str) -> Result<(), LabError> {
    let (uid, gid) = user_ids(user)?;
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|e| LabError::io(format!("chown {user} {}", path.display()), e))
}

/// The newest PostgreSQL of `/usr/lib/postgresql/<major>/bin/postgres`.
fn postgres_major() -> Result<u32, LabError> {
    let dir = Path::new("/usr/lib/postgresql");
    let entries = std::fs::read_dir(dir).map_err(|e| LabError::io(format!("reading {}", dir.display()), e))?;
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|major| dir.join(major.to_string()).join("bin/postgres").exists())
        .max()
        .ok_or_else(|| LabError::Spec("no PostgreSQL server in /usr/lib/postgresql".into()))
}

/// Every daemon of the service lab, in start order (slowest preparation first).
static DAEMONS: &[Daemon] = &[
    Daemon {
        id: "mariadb",
        package: Some("mariadb-server"),
        product: "MariaDB",
        ports: &[tcp(3306, 13306, "mysql")],
        needs: &["/usr/sbin/mariadbd", "/usr/bin/mariadb-install-db"],
        setup: mariadb,
    },
    Daemon {
        id: "postgresql",
        package: None,
        product: "PostgreSQL",
        ports: &[tcp(5432, 15432, "postgresql")],
        needs: &["/usr/lib/postgresql"],
        setup: postgresql,
    },
    Daemon {
        id: "sshd",
        package: Some("openssh-server"),
        product: "OpenSSH",
        ports: &[tcp(22, 2222, "ssh")],
        needs: &["/usr/sbin/sshd", "/usr/bin/ssh-keygen"],
        setup: sshd,
    },
    Daemon {
        id: "nginx",
        package: Some("nginx"),
        product: "nginx",
        ports: &[tcp(80, 8081, "http"), tls(443, 8443, "http")],
        needs: &["/usr/sbin/nginx"],
        setup: nginx,
    },
    Daemon {
        id: "redis",
        package: Some("redis-server"),
        product: "Redis",
        ports: &[tcp(6379, 16379, "redis")],
        needs: &["/usr/bin/redis-server"],
        setup: redis,
    },
    Daemon {
        id: "vsftpd",
        package: Some("vsftpd"),
        product: "vsftpd",
        ports: &[tcp(21, 2121, "ftp")],
        needs: &["/usr/sbin/vsftpd"],
        setup: vsftpd,
    },
    Daemon {
        id: "exim",
        package: Some("exim4-daemon-light"),
        product: "Exim",
        ports: &[tcp(25, 2525, "smtp")],
        needs: &["/usr/sbin/exim4"],
        setup: exim,
    },
    Daemon {
        id: "memcached",
        package: Some("memcached"),
        product: "memcached",
        ports: &[tcp(11211, 21211, "memcached"), udp(11211, 21211, "memcached")],
        needs: &["/usr/bin/memcached"],
        setup: memcached,
    },
    Daemon {
        id: "dnsmasq",
        package: Some("dnsmasq-base"),
        product: "dnsmasq",
        ports: &[udp(53, 5353, "domain"), tcp(53, 5353, "domain")],
        needs: &["/usr/sbin/dnsmasq"],
        setup: dnsmasq,
    },
    Daemon {
        id: "snmpd",
        package: Some("snmpd"),
        product: "Net-SNMP",
        ports: &[udp(161, 1161, "snmp")],
        needs: &["/usr/sbin/snmpd"],
        setup: snmpd,
    },
    Daemon {
        id: "mosquitto",
        package: Some("mosquitto"),
        product: "Mosquitto",
        ports: &[tcp(1883, 11883, "mqtt")],
        needs: &["/usr/sbin/mosquitto"],
        setup: mosquitto,
    },
    Daemon {
        id: "slapd",
        package: Some("slapd"),
        product: "OpenLDAP",
        ports: &[tcp(389, 1389, "ldap")],
        needs: &["/usr/sbin/slapd", "/etc/ldap/schema/core.schema"],
        setup: slapd,
    },
    Daemon {
        id: "telnetd",
        package: Some("inetutils-telnetd"),
        product: "GNU inetutils telnetd",
        ports: &[tcp(23, 2323, "telnet")],
        needs: &["/usr/sbin/telnetd", "/usr/sbin/inetutils-inetd"],
        setup: telnetd,
    },
    Daemon {
        id: "tftpd",
        package: Some("tftpd-hpa"),
        product: "tftpd-hpa",
        ports: &[udp(69, 6969, "tftp")],
        needs: &["/usr/sbin/in.tftpd"],
        setup: tftpd,
    },
    Daemon {
        id: "dovecot",
        package: Some("dovecot-core"),
        product: "Dovecot",
        ports: &[tcp(143, 1143, "imap"), tls(993, 10993, "imap"), tcp(110, 1110, "pop3"), tls(995, 10995, "pop3")],
        needs: &["/usr/sbin/dovecot", "/usr/lib/dovecot/imap", "/usr/lib/dovecot/pop3"],
        setup: dovecot,
    },
    Daemon {
        id: "rsync",
        package: Some("rsync"),
        product: "rsync",
        ports: &[tcp(873, 8873, "rsync")],
        needs: &["/usr/bin/rsync"],
        setup: rsync,
    },
    Daemon {
        id: "git",
        package: Some("git"),
        product: "git",
        ports: &[tcp(9418, 19418, "git")],
        needs: &["/usr/bin/git", "/usr/lib/git-core/git-daemon"],
        setup: git,
    },
];

fn mariadb(c: &Ctx) -> Result<Launch, LabError> {
    let data = c.mkdir("data", Some("mysql"))?;
    let datadir = format!("--datadir={}", data.display());
    let install = [
        "mariadb-install-db",
        "--no-defaults",
        "--user=mysql",
        datadir.as_str(),
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        "--skip-name-resolve",
        "--innodb-log-file-size=4M",
        // Kernel AIO contexts are a machine-wide budget that parallel labs share.
        "--innodb-use-native-aio=0",
    ];
    // The bootstrap once failed in CI for a reason its log did not keep;
    // a second attempt on an empty data directory costs a second.
    if let Err(first) = c.prep(None, install) {
        std::fs::remove_dir_all(&data).map_err(|e| LabError::io(format!("clearing {}", data.display()), e))?;
        c.mkdir("data", Some("mysql"))?;
        c.prep(None, install).map_err(|second| LabError::Command {
            command: "mariadb-install-db (twice)".into(),
            stderr: format!("first: {first}\nsecond: {second}"),
        })?;
    }
    // Without a user that may connect from anywhere, MariaDB answers a
    // remote client with "Host ... is not allowed" instead of its greeting.
    let init = c.write("init.sql", "CREATE USER IF NOT EXISTS 'lab'@'%' IDENTIFIED BY 'vantage-lab';\n")?;
    Ok(Launch::new([
        "/usr/sbin/mariadbd".to_string(),
        "--no-defaults".into(),
        "--user=mysql".into(),
        format!("--datadir={}", data.display()),
        format!("--socket={}", data.join("mysqld.sock").display()),
        format!("--pid-file={}", data.join("mysqld.pid").display()),
        format!("--bind-address={SERVICES_ADDR}"),
        "--port=3306".into(),
        "--skip-name-resolve".into(),
        "--innodb-buffer-pool-size=16M".into(),
        "--innodb-log-file-size=4M".into(),
        "--innodb-use-native-aio=0".into(),
        // A throwaway database: stop at once on SIGTERM.
        "--innodb-fast-shutdown=2".into(),
        "--innodb-buffer-pool-dump-at-shutdown=0".into(),
        format!("--init-file={}", init.display()),
    ]))
}

fn postgresql(c: &Ctx) -> Result<Launch, LabError> {
    let bin = PathBuf::from(format!("/usr/lib/postgresql/{}/bin", postgres_major()?));
    let data = c.mkdir("data", Some("postgres"))?;
    chmod(&data, 0o700)?;
    let pwfile = c.write("password", "vantage-lab\n")?;
    c.prep(
        Some("postgres"),
        [
            bin.join("initdb").into_os_string(),
            "-D".into(),
            data.clone().into_os_string(),
            "--no-sync".into(),
            "--auth=scram-sha-256".into(),
            format!("--pwfile={}", pwfile.display()).into(),
            "--username=postgres".into(),
            "--encoding=UTF8".into(),
            "--locale=C".into(),
        ],
    )?;
    // Clients of the lab get the password prompt a remote client gets,
    // not "no pg_hba.conf entry".
    let hba = data.join("pg_hba.conf");
    let mut f = OpenOptions::new().append(true).open(&hba).map_err(|e| LabError::io("opening pg_hba.conf", e))?;
    writeln!(f, "host all all 198.18.0.0/15 scram-sha-256").map_err(|e| LabError::io("writing pg_hba.conf", e))?;
    let mut launch = Launch::new([
        bin.join("postgres").into_os_string(),
        "-D".into(),
        data.clone().into_os_string(),
        "-c".into(),
        format!("listen_addresses={SERVICES_ADDR}").into(),
        "-c".into(),
        "port=5432".into(),
        "-c".into(),
        format!("unix_socket_directories={}", data.display()).into(),
        "-c".into(),
        "shared_buffers=16MB".into(),
    ])
    .user("postgres");
    launch.private_ipc = true;
    // Fast shutdown: SIGTERM would wait for every client to leave.
    launch.stop = libc::SIGINT;
    Ok(launch)
}

fn sshd(c: &Ctx) -> Result<Launch, LabError> {
    // sshd insists on its privilege separation directory (Debian's unit creates it).
    mkdir(Path::new("/run/sshd"))?;
    let mut conf = format!(
        "ListenAddress {SERVICES_ADDR}:22\nPidFile {}\nUsePAM no\nPermitRootLogin no\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nAuthorizedKeysFile none\n",
        c.p("sshd.pid")
    );
    for (kind, bits) in [("ed25519", None), ("ecdsa", None), ("rsa", Some("2048"))] {
        let key = c.p(&format!("ssh_host_{kind}_key"));
        let mut argv = vec!["ssh-keygen", "-q", "-N", "", "-t", kind, "-f", &key];
        if let Some(bits) = bits {
            argv.extend(["-b", bits]);
        }
        c.prep(None, argv)?;
        let _ = writeln!(conf, "HostKey {key}");
    }
    let conf = c.write("sshd_config", &conf)?;
    Ok(Launch::new(["/usr/sbin/sshd".as_ref(), "-D".as_ref(), "-e".as_ref(), "-f".as_ref(), conf.as_os_str()]))
}

fn nginx(c: &Ctx) -> Result<Launch, LabError> {
    let www = c.mkdir("www", None)?;
    std::fs::write(www.join("index.html"), "<html><body>Vantage service lab</body></html>\n")
        .map_err(|e| LabError::io("writing index.html", e))?;
    let temp = c.mkdir("temp", Some("www-data"))?;
    let conf = format!(
        "user www-data;\nworker_processes 1;\ndaemon off;\npid {pid};\nerror_log stderr notice;\n\
         events {{ worker_connections 512; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {t}/body;\n  proxy_temp_path {t}/proxy;\n  \
         fastcgi_temp_path {t}/fastcgi;\n  uwsgi_temp_path {t}/uwsgi;\n  scgi_temp_path {t}/scgi;\n  \
         server {{ listen {a}:80; root {www}; }}\n  \
         server {{ listen {a}:443 ssl; ssl_certificate {cert}; ssl_certificate_key {key}; root {www}; }}\n}}\n",
        pid = c.p("nginx.pid"),
        t = temp.display(),
        a = SERVICES_ADDR,
        www = www.display(),
        cert = c.tls.cert.display(),
        key = c.tls.key.display(),
    );
    let conf = c.write("nginx.conf", &conf)?;
    Ok(Launch::new([
        "/usr/sbin/nginx".as_ref(),
        "-e".as_ref(),
        "stderr".as_ref(),
        "-p".as_ref(),
        c.dir.as_os_str(),
        "-c".as_ref(),
        conf.as_os_str(),
    ]))
}

fn redis(c: &Ctx) -> Result<Launch, LabError> {
    let data = c.mkdir("data", Some("redis"))?;
    // No password and no protected mode: the exposed Redis a review must find.
    let conf = format!(
        "bind {SERVICES_ADDR}\nport 6379\nprotected-mode no\ndaemonize no\nsupervised no\nlogfile \"\"\n\
         dir {}\nsave \"\"\nappendonly no\n",
        data.display()
    );
    let conf = c.write("redis.conf", &conf)?;
    Ok(Launch::new(["/usr/bin/redis-server".as_ref(), conf.as_os_str()]).user("redis"))
}

fn vsftpd(c: &Ctx) -> Result<Launch, LabError> {
    let empty = c.mkdir("empty", None)?;
    let anon = c.mkdir("anon", None)?;
    let conf = format!(
        "listen=YES\nlisten_ipv6=NO\nlisten_address={SERVICES_ADDR}\nlisten_port=21\nbackground=NO\n\
         anonymous_enable=YES\nanon_root={}\nlocal_enable=NO\nwrite_enable=NO\nsecure_chroot_dir={}\n\
         xferlog_enable=NO\nvsftpd_log_file={}\n",
        anon.display(),
        empty.display(),
        c.p("vsftpd.log")
    );
    let conf = c.write("vsftpd.conf", &conf)?;
    Ok(Launch::new(["/usr/sbin/vsftpd".as_ref(), conf.as_os_str()]))
}

fn exim(c: &Ctx) -> Result<Launch, LabError> {
    let spool = c.mkdir("spool", Some("Debian-exim"))?;
    c.mkdir("spool/log", Some("Debian-exim"))?;
    let conf = format!(
        "primary_hostname = mail.vantage-lab.invalid\ndaemon_smtp_ports = 25\nlocal_interfaces = {SERVICES_ADDR}\n\
         spool_directory = {spool}\nlog_file_path = {spool}/log/%slog\npid_file_path = {pid}\n\
         exim_user = Debian-exim\nexim_group = Debian-exim\nnever_users = root\nkeep_environment =\n\
         tls_certificate = {cert}\ntls_privatekey = {key}\nacl_smtp_rcpt = acl_check_rcpt\n\
         begin acl\nacl_check_rcpt:\n  deny message = relay not permitted\n",
        spool = spool.display(),
        pid = c.p("exim.pid"),
        cert = c.tls.cert.display(),
        key = c.tls.key.display(),
    );
    let conf = c.write("exim.conf", &conf)?;
    Ok(Launch::new(["/usr/sbin/exim4".as_ref(), "-C".as_ref(), conf.as_os_str(), "-bdf".as_ref()]))
}

fn memcached(_: &Ctx) -> Result<Launch, LabError> {
    let addr = SERVICES_ADDR.to_string();
    Ok(Launch::new(["/usr/bin/memcached", "-u", "memcache", "-l", &addr, "-p", "11211", "-U", "11211", "-m", "16"]))
}

fn dnsmasq(c: &Ctx) -> Result<Launch, LabError> {
    // Local names only, no upstream: it answers lab names and, like a stock
    // dnsmasq, `version.bind` (an auth-only server would refuse that).
    let conf = format!(
        "port=53\nlisten-address={a}\nbind-interfaces\nno-resolv\nno-hosts\nno-poll\nuser=nobody\n\
         pid-file={pid}\nlog-facility=-\nlocal=/vantage-lab.invalid/\n\
         host-record=ns.vantage-lab.invalid,{a}\nhost-record=www.vantage-lab.invalid,{a}\n",
        a = SERVICES_ADDR,
        pid = c.p("dnsmasq.pid"),
    );
    let conf = c.write("dnsmasq.conf", &conf)?;
    let mut arg = OsString::from("--conf-file=");
    arg.push(&conf);
    Ok(Launch::new(["/usr/sbin/dnsmasq".as_ref(), "--keep-in-foreground".as_ref(), arg.as_os_str()]))
}

fn snmpd(c: &Ctx) -> Result<Launch, LabError> {
    let persistent = c.mkdir("persistent", None)?;
    let conf = c.write(
        "snmpd.conf",
        "rocommunity public 198.18.0.0/15\nsysLocation Vantage service lab\nsysContact lab@vantage-lab.invalid\n",
    )?;
    let mut launch = Launch::new([
        "/usr/sbin/snmpd".into(),
        "-f".into(),
        "-Lo".into(),
        "-C".into(),
        "-c".into(),
        conf.into_os_string(),
        // No SMUX listener (TCP 199 on every address), no MIB files to parse (Debian ships few).
        "-I".into(),
        "-smux".into(),
        "-m".into(),
        "".into(),
        "-p".into(),
        c.path("snmpd.pid").into_os_string(),
        OsString::from(format!("udp:{SERVICES_ADDR}:161")),
    ]);
    launch.env.push(("SNMP_PERSISTENT_DIR", persistent.into_os_string()));
    Ok(launch)
}

fn mosquitto(c: &Ctx) -> Result<Launch, LabError> {
    let conf = c.write(
        "mosquitto.conf",
        &format!(
            "listener 1883 {SERVICES_ADDR}\nallow_anonymous true\npersistence false\nlog_dest stderr\nuser mosquitto\n"
        ),
    )?;
    Ok(Launch::new(["/usr/sbin/mosquitto".as_ref(), "-c".as_ref(), conf.as_os_str()]))
}

fn slapd(c: &Ctx) -> Result<Launch, LabError> {
    let data = c.mkdir("data", Some("openldap"))?;
    let conf = format!(
        "include /etc/ldap/schema/core.schema\npidfile {d}/slapd.pid\nargsfile {d}/slapd.args\n\
         modulepath /usr/lib/ldap\nmoduleload back_mdb\ndatabase mdb\nmaxsize 10485760\n\
         suffix \"dc=vantage-lab,dc=invalid\"\ndirectory {d}\n",
        d = data.display()
    );
    let conf = c.write("slapd.conf", &conf)?;
    Ok(Launch::new([
        "/usr/sbin/slapd".into(),
        "-d".into(),
        "0".into(),
        "-u".into(),
        "openldap".into(),
        "-g".into(),
        "openldap".into(),
        "-f".into(),
        conf.into_os_string(),
        "-h".into(),
        OsString::from(format!("ldap://{SERVICES_ADDR}:389/")),
    ]))
}

fn telnetd(c: &Ctx) -> Result<Launch, LabError> {
    // telnetd runs this instead of login(1): a prompt, and nobody gets in.
    let login = c.write("login", "#!/bin/sh\nprintf 'vantage-lab login: '\nread -r _user\necho 'Login incorrect'\n")?;
    chmod(&login, 0o755)?;
    let conf = format!("{SERVICES_ADDR}:23 stream tcp nowait root /usr/sbin/telnetd telnetd -E {}\n", login.display());
    let conf = c.write("inetd.conf", &conf)?;
    // Without a high rate limit inetd turns telnet off after 40 connections a minute: a scan is more.
    Ok(Launch::new([
        "/usr/sbin/inetutils-inetd".into(),
        "-d".into(),
        "-R".into(),
        "100000".into(),
        OsString::from(format!("--pidfile={}", c.p("inetd.pid"))),
        conf.into_os_string(),
    ]))
}

fn tftpd(c: &Ctx) -> Result<Launch, LabError> {
    let root = c.mkdir("root", None)?;
    std::fs::write(root.join("hello.txt"), "Vantage service lab\n")
        .map_err(|e| LabError::io("writing hello.txt", e))?;
    Ok(Launch::new([
        "/usr/sbin/in.tftpd".into(),
        "--foreground".into(),
        "--address".into(),
        OsString::from(format!("{SERVICES_ADDR}:69")),
        "--user".into(),
        "tftp".into(),
        "--secure".into(),
        root.into_os_string(),
    ]))
}

fn dovecot(c: &Ctx) -> Result<Launch, LabError> {
    c.mkdir("run", None)?;
    let users = c.write("users", "")?;
    // IMAP and POP3, plain (with STARTTLS) and TLS-wrapped (993, 995), no accounts.
    let conf = format!(
        "base_dir = {run}\nstate_dir = {state}\nprotocols = imap pop3\nlisten = {SERVICES_ADDR}\n\
         ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\nlog_path = /dev/stderr\n\
         mail_location = maildir:{mail}/%u\n\
         passdb {{\n  driver = passwd-file\n  args = {users}\n}}\nuserdb {{\n  driver = passwd-file\n  args = {users}\n}}\n",
        run = c.p("run"),
        state = c.dir.display(),
        cert = c.tls.cert.display(),
        key = c.tls.key.display(),
        mail = c.p("mail"),
        users = users.display(),
    );
    let conf = c.write("dovecot.conf", &conf)?;
    Ok(Launch::new(["/usr/sbin/dovecot".as_ref(), "-F".as_ref(), "-c".as_ref(), conf.as_os_str()]))
}

fn rsync(c: &Ctx) -> Result<Launch, LabError> {
    let module = c.mkdir("lab", None)?;
    std::fs::write(module.join("hello.txt"), "Vantage service lab\n")
        .map_err(|e| LabError::io("writing hello.txt", e))?;
    let conf = format!(
        "pid file = {pid}\nuse chroot = no\nuid = nobody\ngid = nogroup\n\
         [lab]\n  path = {module}\n  comment = Vantage service lab\n  read only = yes\n",
        pid = c.p("rsyncd.pid"),
        module = module.display(),
    );
    let conf = c.write("rsyncd.conf", &conf)?;
    let mut config = OsString::from("--config=");
    config.push(&conf);
    Ok(Launch::new([
        "/usr/bin/rsync".into(),
        "--daemon".into(),
        "--no-detach".into(),
        config,
        OsString::from(format!("--address={SERVICES_ADDR}")),
        "--port=873".into(),
        "--log-file=/dev/stderr".into(),
    ]))
}

fn git(c: &Ctx) -> Result<Launch, LabError> {
    let base = c.mkdir("repos", Some("nobody"))?;
    c.prep(
        Some("nobody"),
        ["/usr/bin/git".into(), "init".into(), "--quiet".into(), "--bare".into(), base.join("lab.git")],
    )?;
    let mut base_path = OsString::from("--base-path=");
    base_path.push(&base);
    Ok(Launch::new([
        "/usr/bin/git".into(),
        "daemon".into(),
        "--reuseaddr".into(),
        "--export-all".into(),
        base_path,
        OsString::from(format!("--listen={SERVICES_ADDR}")),
        "--port=9418".into(),
    ])
    .user("nobody"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_versions() {
        assert_eq!(upstream_version("1:9.2p1-2+deb12u5"), "9.2p1");
        assert_eq!(upstream_version("5.9.3+dfsg-2+deb12u1"), "5.9.3");
        assert_eq!(upstream_version("5:7.0.15-1~deb12u4"), "7.0.15");
        assert_eq!(upstream_version("2.90-4~deb12u1"), "2.90");
        assert_eq!(upstream_version("4.96"), "4.96");
    }

    #[test]
    fn ports_are_unique_and_odd_ones_differ() {
        let mut seen = BTreeSet::new();
        for d in DAEMONS {
            for p in d.ports {
                assert_ne!(p.port, p.odd, "{}", d.id);
                for port in [p.port, p.odd] {
                    assert!(seen.insert((p.proto, port)), "{} {}/{port} twice", d.id, p.proto);
                }
            }
        }
    }

    #[test]
    fn every_udp_service_has_a_request() {
        for p in DAEMONS.iter().flat_map(|d| d.ports).filter(|p| p.proto == Proto::Udp) {
            assert!(udp_request(p.service).is_some(), "{}", p.service);
        }
    }

    #[test]
    fn every_fixed_package_is_listed() {
        let listed = listed_packages();
        for d in DAEMONS {
            if let Some(p) = d.package {
                // dovecot-core comes with dovecot-imapd and -pop3d.
                assert!(listed.contains(&p) || p == "dovecot-core", "{p} is not in tests/lab-services.packages");
            }
        }
        assert!(listed.contains(&"postgresql"));
    }

    #[test]
    fn snmp_get_is_well_formed_ber() {
        let m = snmp_get(b"public", &[1, 3, 6, 1, 2, 1, 1, 1, 0]);
        assert_eq!(m[0], 0x30);
        assert_eq!(usize::from(m[1]), m.len() - 2);
        assert!(m.windows(10).any(|w| w == [0x06, 0x08, 0x2b, 6, 1, 2, 1, 1, 1, 0]));
    }

    #[test]
    fn only_odd_ports_are_tracked_and_redirected() {
        let s = |port: u16, listens: u16, proto: Proto| LabService {
            addr: SERVICES_ADDR,
            proto,
            port,
            odd: port != listens,
            listens,
            service: String::new(),
            tls: false,
            daemon: String::new(),
            product: String::new(),
            package: String::new(),
            version: String::new(),
        };
        let rules = ruleset(&[s(22, 22, Proto::Tcp), s(2222, 22, Proto::Tcp), s(5353, 53, Proto::Udp)]);
        assert!(rules.contains("ip daddr 198.18.1.1 tcp dport 2222 dnat ip to 198.18.1.1:22"), "{rules}");
        assert!(rules.contains("ip daddr 198.18.1.1 udp dport 5353 dnat ip to 198.18.1.1:53"), "{rules}");
        assert!(!rules.contains("dport 22 dnat"), "{rules}");
        assert!(rules.contains("set std_tcp {\n    type inet_service\n    elements = { 22 }"), "{rules}");
    }
}
