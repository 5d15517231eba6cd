//! One bounded conversation with one open TCP port.
//!
//! Listen first (many protocols greet), then follow the [`plan`]: each
//! probe on a fresh connection, TLS when the port or an answer asks for
//! it, until a parser recognises the service or the budget runs out. The
//! budget is total time and bytes per response; a service that drips,
//! floods or stalls costs at most that.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use vantage_shared::{Category, Method, Proto, ServiceFacts, TlsFacts};

use crate::nmap::{NmapMatch, ProbeDb, cpe22_to_23};
use crate::plan::{self, Probe, Step};
use crate::protocols::{self, Verdict};
use crate::tls;

/// Bytes one response may fill at most.
pub const RESPONSE_MAX: usize = 16 * 1024;

/// Limits of one conversation.
#[derive(Debug, Clone)]
pub struct DetectConfig {
    /// The whole conversation, every connection included.
    pub total: Duration,
    /// How long to wait for a greeting on a port whose usual service speaks first.
    pub listen: Duration,
    /// How long the first probe may wait for its answer; later probes wait
    /// less, in step with the measured round-trip time.
    pub probe_wait: Duration,
    /// Bytes read in the whole conversation at most (one response reads
    /// at most [`RESPONSE_MAX`] of them).
    pub max_bytes: usize,
    /// Bytes of the first response kept for the record.
    pub keep_bytes: usize,
    /// What HTTP probes say they are (see `protocols::http::user_agent`).
    pub user_agent: String,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            total: Duration::from_secs(6),
            listen: Duration::from_millis(1500),
            probe_wait: Duration::from_secs(2),
            max_bytes: 64 * 1024,
            keep_bytes: 1024,
            user_agent: crate::protocols::http::user_agent(None).expect("no contact is valid"),
        }
    }
}

/// What a conversation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    pub facts: ServiceFacts,
    /// The first bytes the service sent (greeting or first answer), bounded.
    pub first_bytes: Vec<u8>,
    /// Connections opened.
    pub connections: u32,
}

/// Holds what every conversation shares: limits, the TLS client, and the
/// nmap probes when the user gave a file.
#[derive(Clone)]
pub struct Detector {
    cfg: DetectConfig,
    tls: Arc<ClientConfig>,
    nmap: Option<(Arc<ProbeDb>, u8)>,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl Detector {
    pub fn new(cfg: DetectConfig) -> Detector {
        Detector { cfg, tls: tls::client_config(), nmap: None }
    }

    /// Also uses the probes and match lines of an nmap-service-probes file,
    /// those of rarity at most `intensity` (0-9).
    pub fn with_nmap(mut self, db: Arc<ProbeDb>, intensity: u8) -> Detector {
        self.nmap = Some((db, intensity.min(9)));
        self
    }

    pub fn config(&self) -> &DetectConfig {
        &self.cfg
    }

    /// Identifies the service at `addr`. `greeting` is what the port said
    /// when the scan engine connected (`None` if it did not listen); `rtt`
    /// the engine's measured round trip.
    pub async fn tcp(&self, addr: SocketAddr, rtt: Duration, greeting: Option<Vec<u8>>) -> Detection {
        let mut c = Conversation {
            det: self,
            addr,
            rtt,
            deadline: Instant::now() + self.cfg.total,
            first: Vec::new(),
            tls: None,
            connections: 0,
            closed_unasked: false,
            soft: None,
            bytes_left: self.cfg.max_bytes,
        };
        let mut facts = c.run(greeting).await;
        if facts.tls.is_none() {
            facts.tls = c.tls.clone();
        }
        Detection { facts, first_bytes: c.first, connections: c.connections }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Stream = Box<dyn Io>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    Plain,
    Tls,
}

/// What one exchange came to.
enum Outcome {
    Facts(Box<ServiceFacts>),
    /// The answer was TLS (or asked for it).
    Tls,
    /// Silence or an answer nobody recognised.
    Nothing,
    /// The port no longer takes connections, or time is up.
    Stop,
}

/// A response and how it ended.
struct Response {
    bytes: Vec<u8>,
    /// The peer closed (EOF or reset).
    closed: bool,
}

struct Conversation<'a> {
    det: &'a Detector,
    addr: SocketAddr,
    rtt: Duration,
    deadline: Instant,
    first: Vec<u8>,
    tls: Option<TlsFacts>,
    connections: u32,
    /// The peer closed before we said anything, without a byte.
    closed_unasked: bool,
    /// The service an nmap soft match named, while a hard match is sought.
    soft: Option<String>,
    /// What is left of the conversation's byte budget.
    bytes_left: usize,
}

impl Conversation<'_> {
    fn cfg(&self) -> &DetectConfig {
        &self.det.cfg
    }

    async fn run(&mut self, greeting: Option<Vec<u8>>) -> ServiceFacts {
        let port = self.addr.port();
        let greeting = match greeting {
            Some(g) => g,
            None => {
                let Some(mut s) = self.open(Layer::Plain).await else { return self.fallback() };
                let until = self.until(plan::listen_time(port, self.cfg().listen));
                let r = self.read(&mut s, until).await;
                self.closed_unasked = r.closed && r.bytes.is_empty();
                r.bytes
            }
        };
        if !greeting.is_empty() {
            self.keep(&greeting);
            match protocols::parse(None, &greeting) {
                Verdict::Match(f) => return self.enrich(f, "NULL", &greeting),
                Verdict::FollowUp { facts, send, refine } => return self.follow_up_fresh(facts, &send, refine).await,
                Verdict::Tls => {}
                Verdict::No => {
                    if let Some(f) = self.nmap_match("NULL", &greeting) {
                        return f;
                    }
                }
            }
        }
        let mut steps: VecDeque<Step> = plan::tcp_plan(port).into();
        let (mut tls_tried, mut first_probe) = (false, true);
        while let Some(step) = steps.pop_front() {
            if self.spent() {
                break;
            }
            let outcome = match step {
                Step::Tls if tls_tried => continue,
                Step::Tls => {
                    tls_tried = true;
                    self.inside_tls().await
                }
                Step::Probe(p) => {
                    let wait = self.probe_wait(first_probe);
                    first_probe = false;
                    self.ask(Layer::Plain, None, p, wait).await
                }
            };
            match outcome {
                Outcome::Facts(f) => return *f,
                Outcome::Tls if !tls_tried => steps.push_front(Step::Tls),
                Outcome::Tls | Outcome::Nothing => {}
                Outcome::Stop => return self.fallback(),
            }
        }
        if let Some(f) = self.nmap_probes(Layer::Plain).await {
            return f;
        }
        self.fallback()
    }

    /// The first probe waits the configured time; the others in step with
    /// the round trip (an answer that has not come in 8 RTTs plus a
    /// quarter second is not coming).
    fn probe_wait(&self, first: bool) -> Duration {
        let full = self.cfg().probe_wait;
        if first { full } else { (self.rtt * 8 + Duration::from_millis(250)).min(full) }
    }

    /// Out of time or out of bytes: the conversation is over.
    fn spent(&self) -> bool {
        Instant::now() >= self.deadline || self.bytes_left == 0
    }

    fn until(&self, d: Duration) -> Instant {
        self.deadline.min(Instant::now() + d)
    }

    fn keep(&mut self, bytes: &[u8]) {
        if self.first.is_empty() {
            self.first = bytes[..bytes.len().min(self.cfg().keep_bytes)].to_vec();
        }
    }

    /// A new connection, TLS-wrapped for [`Layer::Tls`]; `None` when the
    /// port refuses or time is up.
    async fn open(&mut self, layer: Layer) -> Option<Stream> {
        let tcp = timeout_at(self.deadline, TcpStream::connect(self.addr)).await.ok()?.ok()?;
        self.connections += 1;
        // Close with a reset: no TIME_WAIT left behind, however many ports.
        let _ = socket2::SockRef::from(&tcp).set_linger(Some(Duration::ZERO));
        let _ = tcp.set_nodelay(true);
        match layer {
            Layer::Plain => Some(Box::new(tcp)),
            Layer::Tls => {
                let (stream, facts) =
                    timeout_at(self.deadline, tls::handshake(self.det.tls.clone(), self.addr, tcp)).await.ok()?.ok()?;
                self.tls.get_or_insert(facts);
                Some(Box::new(stream))
            }
        }
    }

    /// Reads one response: until `until` for the first byte, then until the
    /// peer pauses, closes, or the byte cap is reached.
    async fn read(&mut self, s: &mut Stream, until: Instant) -> Response {
        let max = RESPONSE_MAX.min(self.bytes_left);
        let idle = (self.rtt * 4).clamp(Duration::from_millis(80), Duration::from_millis(500));
        let mut bytes = Vec::new();
        let mut chunk = vec![0u8; 4096];
        let mut wait_until = until;
        let mut closed = false;
        while bytes.len() < max {
            let room = (max - bytes.len()).min(chunk.len());
            match timeout_at(wait_until, s.read(&mut chunk[..room])).await {
                Err(_) => break,
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed = true;
                    break;
                }
                Ok(Ok(n)) => {
                    self.bytes_left -= n;
                    bytes.extend_from_slice(&chunk[..n]);
                    wait_until = until.min(Instant::now() + idle);
                }
            }
        }
        Response { bytes, closed }
    }

    /// Sends one probe (on `stream`, or a new connection) and judges the answer.
    async fn ask(&mut self, layer: Layer, stream: Option<Stream>, probe: Probe, wait: Duration) -> Outcome {
        let mut s = match stream {
            Some(s) => s,
            None => match self.open(layer).await {
                Some(s) => s,
                None => return Outcome::Stop,
            },
        };
        let host = self.addr.ip().to_string();
        if timeout_at(self.deadline, s.write_all(&probe.payload(&host, &self.cfg().user_agent)))
            .await
            .map_or(true, |r| r.is_err())
        {
            return Outcome::Nothing;
        }
        let until = self.until(wait);
        let answer = self.read(&mut s, until).await;
        if answer.bytes.is_empty() {
            return Outcome::Nothing;
        }
        self.keep(&answer.bytes);
        // The nmap probe that sends what this one does, for its match lines.
        let nmap_twin = if probe == Probe::Http { "GetRequest" } else { "NULL" };
        match protocols::parse(Some(probe.name()), &answer.bytes) {
            Verdict::Match(f) => Outcome::Facts(Box::new(self.enrich(f, nmap_twin, &answer.bytes))),
            Verdict::Tls => Outcome::Tls,
            Verdict::FollowUp { facts, send, refine } => {
                if answer.closed || timeout_at(self.deadline, s.write_all(&send)).await.map_or(true, |r| r.is_err()) {
                    return Outcome::Facts(Box::new(facts));
                }
                let until = self.until(self.probe_wait(true));
                let more = self.read(&mut s, until).await;
                Outcome::Facts(Box::new(refine(facts, &more.bytes)))
            }
            Verdict::No => match self.nmap_match(nmap_twin, &answer.bytes) {
                Some(f) => Outcome::Facts(Box::new(f)),
                None => Outcome::Nothing,
            },
        }
    }

    /// A built-in match without a product, improved by an nmap hard match
    /// on the same bytes when there is one (same service family).
    fn enrich(&mut self, builtin: ServiceFacts, nmap_probe: &str, bytes: &[u8]) -> ServiceFacts {
        if builtin.product.is_some() || self.det.nmap.is_none() {
            return builtin;
        }
        match self.nmap_match(nmap_probe, bytes) {
            Some(n) if n.product.is_some() => ServiceFacts {
                access: builtin.access,
                tls: builtin.tls,
                category: if builtin.category == Category::Other { n.category } else { builtin.category },
                ..n
            },
            _ => builtin,
        }
    }

    /// The nmap file's verdict on a response to its probe `name`: a hard
    /// match, or `None` (a soft match is remembered for later probes).
    fn nmap_match(&mut self, name: &str, bytes: &[u8]) -> Option<ServiceFacts> {
        let (db, _) = self.det.nmap.as_ref()?;
        let probe = db.find(Proto::Tcp, name)?;
        let m = db.match_response_with(probe, bytes, self.soft.as_deref())?;
        if m.soft {
            self.soft = Some(m.service);
            return None;
        }
        Some(nmap_facts(m))
    }

    /// The nmap file's own probes, in nmap's order, each on a new
    /// connection, until a hard match or the deadline. The NULL probe and
    /// `GetRequest` are skipped: the greeting and the HTTP probe were those.
    async fn nmap_probes(&mut self, layer: Layer) -> Option<ServiceFacts> {
        let (db, intensity) = self.det.nmap.clone()?;
        let probes = db.probes_for_tunnel(Proto::Tcp, self.addr.port(), intensity, layer == Layer::Tls);
        for probe in probes.into_iter().filter(|p| !p.is_null() && p.name() != "GetRequest") {
            if self.spent() {
                break;
            }
            let mut s = self.open(layer).await?;
            if timeout_at(self.deadline, s.write_all(probe.payload())).await.map_or(true, |r| r.is_err()) {
                continue;
            }
            let until = self.until(self.probe_wait(false).min(probe.total_wait()));
            let answer = self.read(&mut s, until).await;
            if answer.bytes.is_empty() {
                continue;
            }
            self.keep(&answer.bytes);
            if let Some(m) = db.match_response_with(probe, &answer.bytes, self.soft.as_deref()) {
                if !m.soft {
                    return Some(nmap_facts(m));
                }
                self.soft = Some(m.service);
            }
        }
        // Only a soft match: the service is known, its product is not.
        self.soft.as_deref().map(|s| ServiceFacts { method: Method::Nmap, ..ServiceFacts::named(s) })
    }

    /// A follow-up to a greeting the scan engine read: a new connection,
    /// the greeting again, then the question.
    async fn follow_up_fresh(&mut self, facts: ServiceFacts, send: &[u8], refine: protocols::Refine) -> ServiceFacts {
        let Some(mut s) = self.open(Layer::Plain).await else { return facts };
        let until = self.until(self.cfg().listen);
        if self.read(&mut s, until).await.bytes.is_empty() {
            return facts;
        }
        if timeout_at(self.deadline, s.write_all(send)).await.map_or(true, |r| r.is_err()) {
            return facts;
        }
        let until = self.until(self.probe_wait(true));
        let answer = self.read(&mut s, until).await;
        refine(facts, &answer.bytes)
    }

    /// TLS, then a conversation inside it: a short listen (IMAPS, POP3S and
    /// SMTPS greet), then the inner plan.
    async fn inside_tls(&mut self) -> Outcome {
        let Some(mut s) = self.open(Layer::Tls).await else {
            return if self.spent() { Outcome::Stop } else { Outcome::Nothing };
        };
        let until = self.until(Duration::from_millis(250).min(self.cfg().listen));
        let greeting = self.read(&mut s, until).await;
        if !greeting.bytes.is_empty() {
            self.keep(&greeting.bytes);
            if let Verdict::Match(f) = protocols::parse(None, &greeting.bytes) {
                return Outcome::Facts(Box::new(f));
            }
        }
        let mut spare = (!greeting.closed).then_some(s);
        for step in plan::tls_inner_plan(self.addr.port()) {
            let Step::Probe(p) = step else { continue };
            let wait = self.probe_wait(true);
            match self.ask(Layer::Tls, spare.take(), p, wait).await {
                facts @ Outcome::Facts(_) => return facts,
                Outcome::Stop => break,
                Outcome::Tls | Outcome::Nothing => {}
            }
        }
        if let Some(f) = self.nmap_probes(Layer::Tls).await {
            return Outcome::Facts(Box::new(f));
        }
        // TLS with something unrecognised inside, like nmap's "ssl/unknown".
        Outcome::Facts(Box::new(ServiceFacts::named("ssl")))
    }

    /// Nothing recognised: the port's usual service, marked as a guess (or
    /// what an nmap soft match named).
    fn fallback(&self) -> ServiceFacts {
        if self.first.is_empty() && self.closed_unasked && self.tls.is_none() {
            // Accepts, then closes on everyone: a wrapper or filter in front.
            return ServiceFacts { method: Method::Probed, ..ServiceFacts::named("tcpwrapped") };
        }
        if let Some(soft) = &self.soft {
            return ServiceFacts { method: Method::Nmap, ..ServiceFacts::named(soft) };
        }
        let name = plan::port_guess(self.addr.port()).unwrap_or("unknown");
        ServiceFacts { method: Method::PortGuess, ..ServiceFacts::named(name) }
    }
}

/// An nmap match in Vantage's terms: CPEs in 2.3 form, the OS and device
/// type folded into the info.
pub fn nmap_facts(m: NmapMatch) -> ServiceFacts {
    let mut info: Vec<String> = m.info.into_iter().collect();
    if let Some(os) = m.ostype {
        info.push(format!("OS: {os}"));
    }
    if let Some(d) = m.devicetype {
        info.push(format!("device: {d}"));
    }
    if let Some(h) = m.hostname {
        info.push(format!("host: {h}"));
    }
    let mut f = ServiceFacts::named(&m.service)
        .product(m.product.unwrap_or_default())
        .version(m.version.unwrap_or_default())
        .info(info.join("; "));
    f.cpe = m.cpe.iter().filter_map(|c| cpe22_to_23(c)).collect();
    f.method = Method::Nmap;
    f
}
