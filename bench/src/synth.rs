//! Synthetic baselines for `--checks diff`: two periods' worth of open ports
//! that look like a real estate, with a known set of differences.
//!
//! The "before" baseline (2026-10) holds exactly `entries` entries on hosts
//! spread over 198.18.0.0/15: about 15 open ports a host, mostly TCP on the
//! usual service ports, some UDP, some high ports; most with service facts
//! (product, version, CPE, category), the TLS ports with a certificate;
//! seen from one region or both. The "after" baseline (2026-11) is the same
//! with about one entry in ten changed, each in one way only, so every
//! change is one line of the diff: a port opened next to it (new), the port
//! gone (closed), another version, another service, another certificate (or
//! TLS dropped, a service change), or seen from other regions (reachability).
//!
//! Everything is drawn from the seed, host by host: the same seed gives the
//! same baselines, and host `i` can be made again without the others, so the
//! baselines are streamed, never held in memory.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use vantage_coordinator::review::diff::ChangeKind;
use vantage_shared::{
    Access, BaselineEntry, Category, Method, Period, PortKey, PortState, Proto, ServiceFacts, TlsFacts,
};

/// The first address of 198.18.0.0/15, and how many it holds.
const NET: u32 = u32::from_be_bytes([198, 18, 0, 0]);
const NET_SIZE: u32 = 1 << 17;
/// Open ports per host, on average.
const PORTS_PER_HOST: u64 = 15;
/// Hosts at most: every other address of the /15.
const MAX_HOSTS: u64 = 65_536;
/// Entries changed, per thousand.
pub const CHANGED_PER_MILLE: u64 = 100;
pub const REGIONS: [&str; 2] = ["eu-west", "us-east"];

/// Tags that keep the random streams of hosts, pairs and ports apart.
const STREAM_HOST: u64 = 1;
const STREAM_PAIR: u64 = 2;

pub fn before_period() -> Period {
    Period::new(2026, 10).expect("a valid month")
}

pub fn after_period() -> Period {
    Period::new(2026, 11).expect("a valid month")
}

/// The scans the entries come from: TCP then UDP, per side.
pub const BEFORE_SCANS: [u64; 2] = [1, 2];
pub const AFTER_SCANS: [u64; 2] = [3, 4];

/// SplitMix64: small, fast, and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, stream: u64, index: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next();
        r
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the bias of the modulo is negligible here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn version(&mut self, versions: &[&'static str]) -> &'static str {
        versions[self.below(versions.len() as u64) as usize]
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// A product as detection names it, with the versions seen in the wild and
/// the vendor:product part of its CPE.
struct Product {
    name: &'static str,
    cpe: &'static str,
    versions: &'static [&'static str],
}

/// What usually answers on a port.
struct Profile {
    port: u16,
    service: &'static str,
    tls: bool,
    products: &'static [Product],
}

macro_rules! product {
    ($name:expr, $cpe:expr, [$($v:expr),+ $(,)?]) => {
        Product { name: $name, cpe: $cpe, versions: &[$($v),+] }
    };
}

const OPENSSH: Product = product!("OpenSSH", "openbsd:openssh", ["8.4p1", "8.9p1", "9.2p1", "9.6p1", "9.7p1"]);
const NGINX: Product = product!("nginx", "f5:nginx", ["1.22.1", "1.24.0", "1.26.2"]);
const HTTPD: Product = product!("Apache httpd", "apache:http_server", ["2.4.57", "2.4.59", "2.4.62"]);
const TOMCAT: Product = product!("Apache Tomcat", "apache:tomcat", ["9.0.85", "10.1.19", "10.1.28"]);
const JETTY: Product = product!("Jetty", "eclipse:jetty", ["9.4.53", "10.0.20", "12.0.9"]);
const GUNICORN: Product = product!("gunicorn", "gunicorn:gunicorn", ["21.2.0", "22.0.0"]);
const BIND: Product = product!("ISC BIND", "isc:bind", ["9.16.48", "9.18.24", "9.18.28"]);

const WEB: &[Product] = &[NGINX, HTTPD];
const APP: &[Product] = &[TOMCAT, JETTY, GUNICORN];

/// The TCP service ports, by how often they are open.
const TCP: &[Profile] = &[
    Profile { port: 22, service: "ssh", tls: false, products: &[OPENSSH] },
    Profile { port: 80, service: "http", tls: false, products: WEB },
    Profile { port: 443, service: "http", tls: true, products: WEB },
    Profile { port: 22, service: "ssh", tls: false, products: &[OPENSSH] },
    Profile { port: 80, service: "http", tls: false, products: WEB },
    Profile { port: 443, service: "http", tls: true, products: WEB },
    Profile { port: 8080, service: "http", tls: false, products: APP },
    Profile { port: 8443, service: "http", tls: true, products: APP },
    Profile { port: 8000, service: "http", tls: false, products: APP },
    Profile {
        port: 21,
        service: "ftp",
        tls: false,
        products: &[
            product!("vsftpd", "beasts:vsftpd", ["3.0.3", "3.0.5"]),
            product!("ProFTPD", "proftpd:proftpd", ["1.3.7a", "1.3.8b"]),
        ],
    },
    Profile {
        port: 25,
        service: "smtp",
        tls: false,
        products: &[
            product!("Postfix smtpd", "postfix:postfix", ["3.5.25", "3.7.11", "3.8.6"]),
            product!("Exim smtpd", "exim:exim", ["4.96", "4.97.1"]),
        ],
    },
    Profile {
        port: 587,
        service: "smtp",
        tls: false,
        products: &[product!("Postfix smtpd", "postfix:postfix", ["3.5.25", "3.7.11", "3.8.6"])],
    },
    Profile {
        port: 993,
        service: "imap",
        tls: true,
        products: &[product!("Dovecot imapd", "dovecot:dovecot", ["2.3.16", "2.3.19.1", "2.3.21"])],
    },
    Profile {
        port: 3306,
        service: "mysql",
        tls: false,
        products: &[
            product!("MySQL", "oracle:mysql", ["8.0.36", "8.0.39", "8.4.2"]),
            product!("MariaDB", "mariadb:mariadb", ["10.6.18", "10.11.6", "11.4.2"]),
        ],
    },
    Profile {
        port: 5432,
        service: "postgresql",
        tls: false,
        products: &[product!("PostgreSQL DB", "postgresql:postgresql", ["13.14", "15.6", "16.2", "16.4"])],
    },
    Profile {
        port: 6379,
        service: "redis",
        tls: false,
        products: &[product!("Redis key-value store", "redis:redis", ["6.2.14", "7.0.15", "7.2.4"])],
    },
    Profile {
        port: 27017,
        service: "mongodb",
        tls: false,
        products: &[product!("MongoDB", "mongodb:mongodb", ["5.0.26", "6.0.14", "7.0.12"])],
    },
    Profile {
        port: 9200,
        service: "elasticsearch",
        tls: false,
        products: &[product!("Elasticsearch REST API", "elastic:elasticsearch", ["7.17.18", "8.13.2", "8.14.3"])],
    },
    Profile {
        port: 11211,
        service: "memcached",
        tls: false,
        products: &[product!("Memcached", "memcached:memcached", ["1.6.21", "1.6.29"])],
    },
    Profile {
        port: 3389,
        service: "ms-wbt-server",
        tls: true,
        products: &[product!(
            "Microsoft Terminal Services",
            "microsoft:remote_desktop_services",
            ["10.0.17763", "10.0.20348"]
        )],
    },
    Profile {
        port: 5900,
        service: "vnc",
        tls: false,
        products: &[product!("RealVNC", "realvnc:realvnc", ["6.11.0", "7.5.1"])],
    },
    Profile {
        port: 389,
        service: "ldap",
        tls: false,
        products: &[product!("OpenLDAP", "openldap:openldap", ["2.4.57", "2.5.13", "2.6.7"])],
    },
    Profile {
        port: 636,
        service: "ldap",
        tls: true,
        products: &[product!("OpenLDAP", "openldap:openldap", ["2.4.57", "2.5.13", "2.6.7"])],
    },
    Profile {
        port: 445,
        service: "microsoft-ds",
        tls: false,
        products: &[product!("Samba smbd", "samba:samba", ["4.17.12", "4.19.5", "4.20.2"])],
    },
    Profile { port: 53, service: "domain", tls: false, products: &[BIND] },
    Profile {
        port: 2379,
        service: "etcd",
        tls: true,
        products: &[product!("etcd", "etcd-io:etcd", ["3.5.12", "3.5.15"])],
    },
    Profile {
        port: 3000,
        service: "grafana",
        tls: false,
        products: &[product!("Grafana", "grafana:grafana", ["10.4.2", "11.1.0", "11.2.0"])],
    },
    Profile {
        port: 9090,
        service: "prometheus",
        tls: false,
        products: &[product!("Prometheus", "prometheus:prometheus", ["2.45.0", "2.53.1"])],
    },
    Profile {
        port: 6443,
        service: "kubernetes",
        tls: true,
        products: &[product!("Kubernetes API server", "kubernetes:kubernetes", ["1.28.9", "1.29.4", "1.30.2"])],
    },
    Profile {
        port: 5672,
        service: "amqp",
        tls: false,
        products: &[product!("RabbitMQ", "vmware:rabbitmq", ["3.12.13", "3.13.4"])],
    },
    Profile {
        port: 1883,
        service: "mqtt",
        tls: false,
        products: &[product!("Mosquitto", "eclipse:mosquitto", ["2.0.15", "2.0.18"])],
    },
];

const UDP: &[Profile] = &[
    Profile {
        port: 53,
        service: "domain",
        tls: false,
        products: &[BIND, product!("dnsmasq", "thekelleys:dnsmasq", ["2.85", "2.89", "2.90"])],
    },
    Profile {
        port: 123,
        service: "ntp",
        tls: false,
        products: &[product!("ntpd", "ntp:ntp", ["4.2.8p15", "4.2.8p17"])],
    },
    Profile {
        port: 161,
        service: "snmp",
        tls: false,
        products: &[product!("net-snmp SNMPv3 server", "net-snmp:net-snmp", ["5.9.1", "5.9.3", "5.9.4"])],
    },
    Profile {
        port: 500,
        service: "isakmp",
        tls: false,
        products: &[product!("strongSwan", "strongswan:strongswan", ["5.9.8", "5.9.13"])],
    },
    Profile {
        port: 1194,
        service: "openvpn",
        tls: false,
        products: &[product!("OpenVPN", "openvpn:openvpn", ["2.5.9", "2.6.3", "2.6.12"])],
    },
    Profile {
        port: 5353,
        service: "mdns",
        tls: false,
        products: &[product!("Avahi mDNS", "avahi:avahi", ["0.7", "0.8"])],
    },
];

/// What answers on the high ports that have facts.
const HIGH: &[Profile] = &[
    Profile { port: 0, service: "http", tls: false, products: APP },
    Profile { port: 0, service: "http", tls: true, products: APP },
    Profile {
        port: 0,
        service: "http",
        tls: false,
        products: &[product!("Node.js Express framework", "expressjs:express", ["4.18.2", "4.19.2"])],
    },
    Profile {
        port: 0,
        service: "prometheus",
        tls: false,
        products: &[product!("Prometheus node_exporter", "prometheus:node_exporter", ["1.6.1", "1.8.1"])],
    },
];

fn product_named(name: &str) -> Option<&'static Product> {
    TCP.iter().chain(UDP).chain(HIGH).flat_map(|p| p.products).find(|p| p.name == name)
}

/// One host's entries in both baselines, in key order, and the changes
/// between them.
#[derive(Debug, Default)]
pub struct Host {
    pub before: Vec<BaselineEntry>,
    pub after: Vec<BaselineEntry>,
    pub changes: Vec<(ChangeKind, PortKey)>,
}

/// The two baselines, drawn from a seed.
#[derive(Debug, Clone, Copy)]
pub struct Synth {
    entries: u64,
    hosts: u64,
    seed: u64,
}

impl Synth {
    /// Baselines of `entries` (at least 1) entries before the changes.
    pub fn new(entries: u64, seed: u64) -> Synth {
        let entries = entries.max(1);
        Synth { entries, hosts: entries.div_ceil(PORTS_PER_HOST).clamp(1, MAX_HOSTS), seed }
    }

    pub fn hosts(&self) -> u64 {
        self.hosts
    }

    /// The entries of the earlier baseline, in key order.
    pub fn before(&self) -> impl Iterator<Item = BaselineEntry> + use<> {
        let synth = *self;
        (0..self.hosts).flat_map(move |i| synth.host(i).before)
    }

    /// The entries of the later baseline, in key order.
    pub fn after(&self) -> impl Iterator<Item = BaselineEntry> + use<> {
        let synth = *self;
        (0..self.hosts).flat_map(move |i| synth.host(i).after)
    }

    /// Every change from the earlier baseline to the later one, in key order.
    pub fn changes(&self) -> impl Iterator<Item = (ChangeKind, PortKey)> + use<> {
        let synth = *self;
        (0..self.hosts).flat_map(move |i| synth.host(i).changes)
    }

    /// How many open ports host `i` has before: the mean, give or take up to
    /// 8, the deviations of hosts 2k and 2k+1 cancelling out, so that the
    /// total is exactly `entries`.
    fn ports_of(&self, i: u64) -> u64 {
        let base = self.entries / self.hosts;
        let extra = u64::from(i < self.entries % self.hosts);
        if (i ^ 1) >= self.hosts {
            return base + extra;
        }
        let d = Rng::new(self.seed, STREAM_PAIR, i / 2).below(base.clamp(1, 9));
        if i.is_multiple_of(2) { base + extra + d } else { base + extra - d }
    }

    /// Host `i` (below [`Synth::hosts`]), the same every time.
    pub fn host(&self, i: u64) -> Host {
        let mut rng = Rng::new(self.seed, STREAM_HOST, i);
        let stride = u64::from(NET_SIZE) / self.hosts;
        let offset = i * stride + rng.below(stride);
        let addr = IpAddr::V4(Ipv4Addr::from(NET + offset as u32));
        let name = format!("h{offset:05x}.corp.example");
        let ports = self.ports_of(i);

        // The open ports, each with what answers there.
        let mut picked: Vec<(Proto, u16, Option<&'static Profile>)> = Vec::new();
        let taken = |picked: &[(Proto, u16, Option<&Profile>)], proto: Proto, port: u16| {
            picked.iter().any(|&(p, n, _)| p == proto && n == port)
        };
        while (picked.len() as u64) < ports {
            let (proto, port, profile) = draw_port(&mut rng);
            if !taken(&picked, proto, port) {
                picked.push((proto, port, profile));
            }
        }

        let open: Vec<(Proto, u16)> = picked.iter().map(|&(proto, port, _)| (proto, port)).collect();
        let (since, until) = (start_of(before_period()), start_of(after_period()));
        let mut host = Host::default();
        for (proto, port, profile) in picked {
            let e = BaselineEntry {
                addr,
                proto,
                port,
                state: PortState::Open,
                open_in: regions(&mut rng),
                service: facts(&mut rng, profile, port, &name),
                scan_id: scan_of(BEFORE_SCANS, proto),
                seen_at: seen_at(since, &mut rng),
            };
            let mut after = e.clone();
            after.scan_id = scan_of(AFTER_SCANS, proto);
            after.seen_at = seen_at(until, &mut rng);
            let change = rng.chance(CHANGED_PER_MILLE).then(|| change(&mut rng, &mut after, &name));
            match change {
                None => {}
                Some(ChangeKind::Closed) => host.changes.push((ChangeKind::Closed, e.key())),
                Some(ChangeKind::New) => {
                    // The port stays as it was; another one opens on the host.
                    let (proto, port, profile) = loop {
                        let (proto, port, profile) = draw_port(&mut rng);
                        let opened = host.after.iter().any(|o| o.proto == proto && o.port == port);
                        if !open.contains(&(proto, port)) && !opened {
                            break (proto, port, profile);
                        }
                    };
                    host.after.push(BaselineEntry {
                        addr,
                        proto,
                        port,
                        state: PortState::Open,
                        open_in: regions(&mut rng),
                        service: facts(&mut rng, profile, port, &name),
                        scan_id: scan_of(AFTER_SCANS, proto),
                        seen_at: seen_at(until, &mut rng),
                    });
                    host.changes.push((ChangeKind::New, (addr, proto, port)));
                }
                Some(kind) => host.changes.push((kind, e.key())),
            }
            if change != Some(ChangeKind::Closed) {
                host.after.push(after);
            }
            host.before.push(e);
        }
        host.before.sort_by_key(BaselineEntry::key);
        host.after.sort_by_key(BaselineEntry::key);
        host.changes.sort_by_key(|&(kind, key)| (key, kind));
        host
    }
}

/// One open port: 8 % UDP, 62 % a TCP service port, 30 % a high TCP port.
fn draw_port(rng: &mut Rng) -> (Proto, u16, Option<&'static Profile>) {
    match rng.below(100) {
        0..8 => {
            let p = rng.pick(UDP);
            (Proto::Udp, p.port, Some(p))
        }
        8..70 => {
            let p = rng.pick(TCP);
            (Proto::Tcp, p.port, Some(p))
        }
        _ => (Proto::Tcp, 1024 + rng.below(65535 - 1024) as u16, None),
    }
}

fn scan_of(scans: [u64; 2], proto: Proto) -> u64 {
    match proto {
        Proto::Tcp => scans[0],
        Proto::Udp => scans[1],
    }
}

/// The 10th of the period's month, when its scans start.
fn start_of(period: Period) -> SystemTime {
    humantime::parse_rfc3339(&format!("{period}-10T00:00:00Z")).expect("a valid date")
}

/// A moment in the ten days of the period's scans.
fn seen_at(start: SystemTime, rng: &mut Rng) -> SystemTime {
    start + Duration::from_secs(rng.below(10 * 86_400))
}

/// Both regions for three ports in four; one of them otherwise.
fn regions(rng: &mut Rng) -> Vec<String> {
    match rng.below(100) {
        0..75 => REGIONS.iter().map(|r| r.to_string()).collect(),
        75..90 => vec![REGIONS[0].to_string()],
        _ => vec![REGIONS[1].to_string()],
    }
}

/// What detection found on a port: nothing on 8 % of the service ports and
/// 40 % of the high ports.
fn facts(rng: &mut Rng, profile: Option<&'static Profile>, port: u16, host: &str) -> Option<ServiceFacts> {
    let profile = match profile {
        Some(p) => {
            if rng.chance(80) {
                return None;
            }
            p
        }
        None => {
            if rng.chance(400) {
                return None;
            }
            rng.pick(HIGH)
        }
    };
    let product = rng.pick(profile.products);
    let mut f = ServiceFacts::named(profile.service);
    set_product(&mut f, product, rng.version(product.versions));
    if f.category == Category::Database {
        f.access = if rng.chance(150) { Access::Open } else { Access::AuthRequired };
    }
    if profile.tls {
        f.tls = Some(certificate(rng, host, port));
    }
    f.method = if rng.chance(100) { Method::Nmap } else { Method::Probed };
    Some(f)
}

fn set_product(f: &mut ServiceFacts, product: &Product, version: &str) {
    f.product = Some(product.name.to_string());
    f.version = Some(version.to_string());
    f.cpe = vec![format!("cpe:2.3:a:{}:{version}:*:*:*:*:*:*:*", product.cpe)];
}

fn certificate(rng: &mut Rng, host: &str, port: u16) -> TlsFacts {
    let not_before = 1_767_225_600 + rng.below(200 * 86_400) as i64; // from 2026-01-01
    let self_signed = rng.chance(50);
    let subject = format!("CN={host}");
    TlsFacts {
        version: if rng.chance(700) { "TLSv1.3" } else { "TLSv1.2" }.into(),
        cipher: if rng.chance(700) { "TLS_AES_256_GCM_SHA384" } else { "ECDHE-RSA-AES128-GCM-SHA256" }.into(),
        alpn: matches!(port, 443 | 8443).then(|| "h2".to_string()),
        issuer: if self_signed { subject.clone() } else { "CN=Example Issuing CA 2,O=Example Corp,C=DE".into() },
        sans: vec![host.to_string(), format!("www.{host}")],
        subject,
        not_before,
        not_after: not_before + 397 * 86_400,
        self_signed,
        sha256: (0..4).map(|_| format!("{:016x}", rng.next())).collect(),
        error: None,
    }
}

/// Changes `after` in one way (drawn), and says which; `Closed` and `New`
/// are left to the caller. A change that needs facts the entry does not
/// have becomes a reachability change.
fn change(rng: &mut Rng, after: &mut BaselineEntry, host: &str) -> ChangeKind {
    let wanted = match rng.below(100) {
        0..20 => ChangeKind::New,
        20..40 => ChangeKind::Closed,
        40..60 => ChangeKind::VersionChanged,
        60..68 => ChangeKind::ServiceChanged,
        68..85 => ChangeKind::TlsChanged,
        _ => ChangeKind::ReachabilityChanged,
    };
    let (port, proto) = (after.port, after.proto);
    match (wanted, after.service.as_mut()) {
        (ChangeKind::New | ChangeKind::Closed, _) => wanted,
        (ChangeKind::VersionChanged, Some(f)) => {
            let product = f.product.as_deref().and_then(product_named).expect("generated facts name a product");
            let others: Vec<&str> =
                product.versions.iter().copied().filter(|v| Some(*v) != f.version.as_deref()).collect();
            set_product(f, product, rng.version(&others));
            wanted
        }
        (ChangeKind::ServiceChanged, Some(f)) => {
            // Something else answers now (on the same certificate, if any).
            let pool = if proto == Proto::Udp { UDP } else { TCP };
            let others: Vec<&Profile> = pool.iter().filter(|p| p.service != f.service).collect();
            let profile = *rng.pick(&others);
            let product = rng.pick(profile.products);
            let mut g = ServiceFacts::named(profile.service);
            set_product(&mut g, product, rng.version(product.versions));
            g.tls = f.tls.take();
            *f = g;
            wanted
        }
        (ChangeKind::TlsChanged, Some(f)) if f.tls.is_some() => {
            if rng.chance(800) {
                // Mostly a renewed certificate.
                f.tls = Some(certificate(rng, host, port));
                wanted
            } else {
                // TLS gone: `ssl/http` became `http`, a service change.
                f.tls = None;
                ChangeKind::ServiceChanged
            }
        }
        _ => {
            after.open_in = match after.open_in.len() {
                2 => vec![rng.pick(&REGIONS).to_string()],
                _ if rng.chance(500) => REGIONS.iter().map(|r| r.to_string()).collect(),
                _ => REGIONS.iter().filter(|r| **r != after.open_in[0]).map(|r| r.to_string()).collect(),
            };
            ChangeKind::ReachabilityChanged
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::convert::Infallible;

    use vantage_coordinator::review::diff::diff;

    use super::*;

    fn by_kind(changes: impl IntoIterator<Item = ChangeKind>) -> BTreeMap<ChangeKind, u64> {
        let mut counts = BTreeMap::new();
        for kind in changes {
            *counts.entry(kind).or_default() += 1;
        }
        counts
    }

    #[test]
    fn the_same_seed_gives_the_same_baselines() {
        let (a, b, c) = (Synth::new(3_000, 7), Synth::new(3_000, 7), Synth::new(3_000, 8));
        assert!(a.before().eq(b.before()) && a.after().eq(b.after()) && a.changes().eq(b.changes()));
        assert!(!a.before().eq(c.before()), "another seed, other baselines");
        // A host is the same made alone as in the stream.
        let host = a.host(57);
        let start: u64 = (0..57).map(|i| a.ports_of(i)).sum();
        let streamed: Vec<_> = a.before().skip(start as usize).take(host.before.len()).collect();
        assert_eq!(streamed, host.before);
    }

    #[test]
    fn baselines_are_in_key_order_and_the_earlier_one_has_every_entry() {
        for entries in [1, 14, 15, 16, 999, 10_000] {
            let s = Synth::new(entries, 1);
            let keys: Vec<PortKey> = s.before().map(|e| e.key()).collect();
            assert_eq!(keys.len() as u64, entries, "{entries} entries");
            assert!(keys.windows(2).all(|w| w[0] < w[1]), "{entries}: strictly ascending");
            let after: Vec<PortKey> = s.after().map(|e| e.key()).collect();
            assert!(after.windows(2).all(|w| w[0] < w[1]), "{entries}: strictly ascending");
            for (addr, _, _) in keys {
                let IpAddr::V4(a) = addr else { panic!("IPv4 only") };
                assert_eq!(u32::from(a) >> 17, NET >> 17, "{a} is in 198.18.0.0/15");
            }
        }
    }

    #[test]
    fn a_million_entries_fill_65536_hosts() {
        let s = Synth::new(1_000_000, 1);
        assert_eq!(s.hosts(), 65_536);
        assert_eq!((0..s.hosts()).map(|i| s.ports_of(i)).sum::<u64>(), 1_000_000);
        assert!((0..s.hosts()).all(|i| (7..=24).contains(&s.ports_of(i))));
    }

    /// The point of the generator: the changes it claims are what the real
    /// diff finds, key by key and kind by kind.
    #[test]
    fn the_diff_finds_exactly_the_changes_made() {
        let s = Synth::new(10_000, 1);
        let found: Vec<(ChangeKind, PortKey)> = diff(s.before().map(Ok::<_, Infallible>), s.after().map(Ok))
            .map(|c| c.map(|c| (c.kind, (c.addr, c.proto, c.port))).unwrap())
            .collect();
        let claimed: Vec<(ChangeKind, PortKey)> = s.changes().collect();
        assert_eq!(by_kind(found.iter().map(|c| c.0)), by_kind(claimed.iter().map(|c| c.0)));
        assert_eq!(found, claimed);
    }

    #[test]
    fn about_one_entry_in_ten_changes_in_every_way() {
        let s = Synth::new(10_000, 3);
        let counts = by_kind(s.changes().map(|c| c.0));
        let total: u64 = counts.values().sum();
        assert!((800..=1200).contains(&total), "{total} changes in 10,000: {counts:?}");
        for kind in [
            ChangeKind::New,
            ChangeKind::Closed,
            ChangeKind::VersionChanged,
            ChangeKind::ServiceChanged,
            ChangeKind::TlsChanged,
            ChangeKind::ReachabilityChanged,
        ] {
            // Certificates change only where there is TLS: fewer of those.
            let least = if kind == ChangeKind::TlsChanged { 10 } else { 50 };
            assert!(counts.get(&kind).copied().unwrap_or(0) >= least, "{kind}: {counts:?}");
        }
        let after = s.after().count() as u64;
        assert_eq!(after, 10_000 + counts[&ChangeKind::New] - counts[&ChangeKind::Closed]);
    }

    #[test]
    fn entries_look_like_an_estate() {
        let entries: Vec<BaselineEntry> = Synth::new(10_000, 1).before().collect();
        let share = |f: &dyn Fn(&BaselineEntry) -> bool| entries.iter().filter(|e| f(e)).count() * 100 / entries.len();
        let with_facts = share(&|e| e.service.is_some());
        let udp = share(&|e| e.proto == Proto::Udp);
        let tls = share(&|e| e.service.as_ref().is_some_and(|f| f.tls.is_some()));
        let both = share(&|e| e.open_in.len() == 2);
        assert!((75..=90).contains(&with_facts), "{with_facts} % with facts");
        assert!((5..=10).contains(&udp), "{udp} % UDP");
        assert!((5..=25).contains(&tls), "{tls} % with TLS");
        assert!((70..=80).contains(&both), "{both} % seen from both regions");
        let f = entries.iter().find_map(|e| e.service.as_ref().filter(|f| f.service == "ssh")).expect("some ssh");
        assert_eq!(f.product.as_deref(), Some("OpenSSH"));
        assert!(f.cpe[0].starts_with("cpe:2.3:a:openbsd:openssh:"), "{:?}", f.cpe);
        assert_eq!(f.category, Category::RemoteAccess);
    }
}
