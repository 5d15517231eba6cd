//! Which probes a port gets, and in what order.
//!
//! The port number is a hint, never an answer: it decides only what is
//! tried first and how long to wait for a greeting. A client-first service
//! on its usual port (HTTP on 80, Redis on 6379) is asked at once after a
//! short listen; anything else is listened to for the full greeting time,
//! then asked in every protocol Vantage knows, most common first.

use std::time::Duration;

use crate::protocols::{amqp, http, mongodb, mqtt, postgres, rdp, redis, smb};

/// One step of a conversation plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Open TLS, then converse inside it.
    Tls,
    /// Send a built-in probe.
    Probe(Probe),
}

/// The built-in TCP probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Probe {
    Http,
    Redis,
    Postgres,
    Memcached,
    MongoDb,
    Mqtt,
    Amqp,
    Rdp,
    Smb,
    Ldap,
    Dns,
}

impl Probe {
    /// Most common first: the order for a port without a hint.
    pub const BY_LIKELIHOOD: [Probe; 11] = [
        Probe::Http,
        Probe::Redis,
        Probe::Postgres,
        Probe::Memcached,
        Probe::MongoDb,
        Probe::Rdp,
        Probe::Smb,
        Probe::Ldap,
        Probe::Mqtt,
        Probe::Amqp,
        Probe::Dns,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Probe::Http => "http",
            Probe::Redis => "redis",
            Probe::Postgres => "postgres",
            Probe::Memcached => "memcached",
            Probe::MongoDb => "mongodb",
            Probe::Mqtt => "mqtt",
            Probe::Amqp => "amqp",
            Probe::Rdp => "rdp",
            Probe::Smb => "smb",
            Probe::Ldap => "ldap",
            Probe::Dns => "dns",
        }
    }

    /// The bytes to send; `host` is what HTTP puts in `Host:`, `user_agent`
    /// in `User-Agent:`.
    pub fn payload(self, host: &str, user_agent: &str) -> Vec<u8> {
        match self {
            Probe::Http => http::request(host, user_agent),
            Probe::Redis => redis::PROBE.to_vec(),
            Probe::Postgres => postgres::SSL_REQUEST.to_vec(),
            Probe::Memcached => b"version\r\n".to_vec(),
            Probe::MongoDb => mongodb::probe(),
            Probe::Mqtt => mqtt::PROBE.to_vec(),
            Probe::Amqp => amqp::PROBE.to_vec(),
            Probe::Rdp => rdp::PROBE.to_vec(),
            Probe::Smb => smb::probe(),
            Probe::Ldap => crate::protocols::ldap::PROBE.to_vec(),
            Probe::Dns => crate::protocols::udp::dns_tcp_query(),
        }
    }

    /// The probe a port is usually asked first, if any.
    pub fn hinted(port: u16) -> Option<Probe> {
        Some(match port {
            80 | 81 | 591 | 2375 | 3000 | 5000 | 5601 | 8000 | 8001 | 8008 | 8080 | 8081 | 8088 | 8888 | 9000
            | 9090 | 9200 | 15672 => Probe::Http,
            6379 | 16379 => Probe::Redis,
            5432 | 5433 => Probe::Postgres,
            11211 => Probe::Memcached,
            27017 | 27018 => Probe::MongoDb,
            1883 => Probe::Mqtt,
            5672 => Probe::Amqp,
            3389 => Probe::Rdp,
            139 | 445 => Probe::Smb,
            389 => Probe::Ldap,
            53 | 5353 => Probe::Dns,
            _ => return None,
        })
    }
}

/// Ports where TLS is expected from the first byte.
pub fn tls_port(port: u16) -> bool {
    matches!(
        port,
        443 | 465
            | 563
            | 636
            | 853
            | 990
            | 992
            | 993
            | 994
            | 995
            | 2376
            | 5671
            | 5986
            | 6443
            | 8443
            | 8883
            | 9443
            | 10250
    )
}

/// Ports whose usual service speaks first (greets before the client says anything).
fn server_first_port(port: u16) -> bool {
    matches!(port, 21 | 22 | 23 | 25 | 110 | 143 | 587 | 2222 | 3306 | 5900..=5910)
}

/// How long to wait for a greeting: the full time unless the port's usual
/// service is known to wait for the client.
pub fn listen_time(port: u16, full: Duration) -> Duration {
    let client_first = Probe::hinted(port).is_some() || tls_port(port);
    if client_first && !server_first_port(port) { full.min(Duration::from_millis(250)) } else { full }
}

/// The plan for a plain TCP port, after the greeting (or its absence).
pub fn tcp_plan(port: u16) -> Vec<Step> {
    let mut plan = Vec::with_capacity(Probe::BY_LIKELIHOOD.len() + 1);
    if tls_port(port) {
        plan.push(Step::Tls);
    }
    if let Some(p) = Probe::hinted(port) {
        plan.push(Step::Probe(p));
    }
    for p in Probe::BY_LIKELIHOOD {
        if !plan.contains(&Step::Probe(p)) {
            plan.push(Step::Probe(p));
        }
        // TLS right after HTTP: the next most common thing on an odd port.
        if p == Probe::Http && !plan.contains(&Step::Tls) {
            plan.push(Step::Tls);
        }
    }
    plan
}

/// The plan inside TLS: HTTP first (HTTPS is most of it), then the hinted probe.
pub fn tls_inner_plan(port: u16) -> Vec<Step> {
    let mut plan = vec![Step::Probe(Probe::Http)];
    let inner = match port {
        5671 => Some(Probe::Amqp),
        8883 => Some(Probe::Mqtt),
        636 => Some(Probe::Ldap),
        _ => None,
    };
    if let Some(p) = inner {
        plan.insert(0, Step::Probe(p));
    }
    plan
}

/// What a port usually carries, for a port that said nothing at all.
pub fn port_guess(port: u16) -> Option<&'static str> {
    Some(match port {
        21 => "ftp",
        22 => "ssh",
        23 => "telnet",
        873 => "rsync",
        9418 => "git",
        25 | 587 => "smtp",
        53 => "domain",
        80 | 8080 | 8000 => "http",
        110 => "pop3",
        143 => "imap",
        389 => "ldap",
        443 | 8443 => "https",
        445 => "microsoft-ds",
        1883 => "mqtt",
        3306 => "mysql",
        3389 => "ms-wbt-server",
        5432 => "postgresql",
        5672 => "amqp",
        5900 => "vnc",
        6379 => "redis",
        11211 => "memcached",
        27017 => "mongodb",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hinted_probe_goes_first_and_every_probe_once() {
        let plan = tcp_plan(6379);
        assert_eq!(plan[0], Step::Probe(Probe::Redis));
        assert_eq!(plan.len(), Probe::BY_LIKELIHOOD.len() + 1);
        assert_eq!(tcp_plan(8443)[0], Step::Tls);
        assert_eq!(tcp_plan(12345)[..2], [Step::Probe(Probe::Http), Step::Tls]);
    }

    #[test]
    fn listen_is_short_only_where_the_client_speaks_first() {
        let full = Duration::from_secs(2);
        assert_eq!(listen_time(22, full), full);
        assert_eq!(listen_time(12345, full), full);
        assert!(listen_time(80, full) < full);
        assert!(listen_time(443, full) < full);
    }
}
