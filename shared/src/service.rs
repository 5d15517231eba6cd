//! Service facts: what answers on an open port, in the words a reviewer uses.
//!
//! Port numbers lie (SSH on 443, Redis on 8080); these facts come from the
//! service itself. The agent fills them in; the coordinator stores them with
//! the observation; the monthly review compares them between baselines and
//! prioritises on [`Category`] and [`Access`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What kind of exposure a service is. The review ranks databases, remote
/// access and management interfaces first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    Database,
    RemoteAccess,
    Management,
    Web,
    Mail,
    FileTransfer,
    Messaging,
    Directory,
    #[default]
    Other,
}

impl Category {
    pub const ALL: [Category; 9] = [
        Category::Database,
        Category::RemoteAccess,
        Category::Management,
        Category::Web,
        Category::Mail,
        Category::FileTransfer,
        Category::Messaging,
        Category::Directory,
        Category::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Database => "database",
            Category::RemoteAccess => "remote-access",
            Category::Management => "management",
            Category::Web => "web",
            Category::Mail => "mail",
            Category::FileTransfer => "file-transfer",
            Category::Messaging => "messaging",
            Category::Directory => "directory",
            Category::Other => "other",
        }
    }

    /// The category of a service name, as nmap and Vantage name services
    /// (`ssh`, `mysql`, `http`, ...). Unknown names are [`Category::Other`].
    pub fn of_service(service: &str) -> Category {
        // nmap prefixes tunnelled services ("ssl/http"); the inner one decides.
        let name = service.rsplit('/').next().unwrap_or(service).to_ascii_lowercase();
        match name.as_str() {
            "mysql" | "postgresql" | "redis" | "mongodb" | "mongod" | "memcached" | "ms-sql-s" | "oracle-tns"
            | "oracle" | "cassandra" | "couchdb" | "elasticsearch" | "influxdb" | "neo4j" | "riak" | "zookeeper"
            | "db2" | "cockroachdb" | "clickhouse" | "etcd" => Category::Database,
            "ssh" | "telnet" | "rdp" | "ms-wbt-server" | "vnc" | "x11" | "rlogin" | "rsh" | "rexec" | "citrix-ica"
            | "teamviewer" | "anydesk" | "nomachine" | "openvpn" | "pptp" | "ipsec" | "wireguard" => {
                Category::RemoteAccess
            }
            "snmp"
            | "docker"
            | "kubernetes"
            | "kubelet"
            | "jenkins"
            | "grafana"
            | "kibana"
            | "phpmyadmin"
            | "rabbitmq-management"
            | "prometheus"
            | "ipmi"
            | "asf-rmcp"
            | "webmin"
            | "winrm"
            | "wsman"
            | "vmware-auth"
            | "cpanel"
            | "plesk"
            | "portainer"
            | "consul"
            | "nomad"
            | "vault"
            | "activemq-admin"
            | "java-rmi"
            | "jdwp"
            | "jmx" => Category::Management,
            "http" | "https" | "http-proxy" | "http-alt" | "https-alt" | "squid-http" => Category::Web,
            "smtp" | "smtps" | "submission" | "pop3" | "pop3s" | "imap" | "imaps" => Category::Mail,
            "ftp" | "ftps" | "ftp-data" | "sftp" | "tftp" | "microsoft-ds" | "smb" | "netbios-ssn" | "nfs"
            | "rsync" | "afp" | "webdav" => Category::FileTransfer,
            "mqtt" | "amqp" | "amqps" | "kafka" | "nats" | "stomp" | "xmpp" | "xmpp-client" | "irc" | "sip" => {
                Category::Messaging
            }
            "ldap" | "ldaps" | "kerberos" | "kerberos-sec" | "domain" | "dns" | "globalcatldap" => Category::Directory,
            _ => Category::Other,
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown category `{s}` (one of: database, remote-access, management, web, mail, file-transfer, messaging, directory, other)"))
    }
}

/// Whether the service served data to an anonymous client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Not tested, or the answer did not tell.
    #[default]
    Unknown,
    /// Answered a data command without credentials (Redis INFO, memcached
    /// stats, an open Docker API, ...).
    Open,
    /// Asked for credentials before serving data.
    AuthRequired,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Unknown => "unknown",
            Access::Open => "open",
            Access::AuthRequired => "auth-required",
        })
    }
}

/// What a TLS handshake showed. Recorded whether or not the certificate
/// would verify: a broken certificate is itself a finding.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TlsFacts {
    /// `TLSv1.3`, `TLSv1.2`, ...
    pub version: String,
    pub cipher: String,
    /// The negotiated ALPN protocol, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
    /// The leaf certificate's subject and issuer, as RFC 4514 strings.
    pub subject: String,
    pub issuer: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sans: Vec<String>,
    /// Validity, as seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// The leaf is signed by its own key (subject = issuer and the signature checks).
    pub self_signed: bool,
    /// Hex SHA-256 of the leaf certificate (DER).
    pub sha256: String,
    /// Why the certificate could not be parsed, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where the facts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Vantage's own probes and parsers.
    #[default]
    Probed,
    /// A match line of an nmap-service-probes file.
    Nmap,
    /// Nothing recognisable came back; only the port number suggests a service.
    PortGuess,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Probed => "probed",
            Method::Nmap => "nmap",
            Method::PortGuess => "port",
        })
    }
}

/// What answers on an open port.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceFacts {
    /// The service in nmap's vocabulary: `ssh`, `http`, `mysql`, ...
    /// Tunnelled services are named by what runs inside (see `tls`).
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Further detail: protocol version, distribution patch level, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
    /// CPE 2.3 formatted strings, the application first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpe: Vec<String>,
    pub category: Category,
    #[serde(default)]
    pub access: Access,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFacts>,
    pub method: Method,
}

impl ServiceFacts {
    /// Facts for a service name alone; the category follows from the name.
    pub fn named(service: &str) -> ServiceFacts {
        ServiceFacts { service: service.to_string(), category: Category::of_service(service), ..Default::default() }
    }

    pub fn product(mut self, product: impl Into<String>) -> Self {
        self.product = Some(product.into()).filter(|p: &String| !p.is_empty());
        self
    }

    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into()).filter(|v: &String| !v.is_empty());
        self
    }

    pub fn info(mut self, info: impl Into<String>) -> Self {
        self.info = Some(info.into()).filter(|i: &String| !i.is_empty());
        self
    }

    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// The name shown in tables: `ssl/http` when TLS-wrapped, like nmap.
    pub fn display_service(&self) -> String {
        match &self.tls {
            Some(_) if !self.service.starts_with("ssl/") && self.service != "ssl" => format!("ssl/{}", self.service),
            _ => self.service.clone(),
        }
    }

    /// `product version (info)`, what a person reads in a table.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for part in [&self.product, &self.version].into_iter().flatten() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(part);
        }
        if let Some(info) = &self.info {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push('(');
            out.push_str(info);
            out.push(')');
        }
        crate::observation::printable(out.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_follow_the_inner_service() {
        assert_eq!(Category::of_service("ssl/http"), Category::Web);
        assert_eq!(Category::of_service("mysql"), Category::Database);
        assert_eq!(Category::of_service("ssh"), Category::RemoteAccess);
        assert_eq!(Category::of_service("nonsense"), Category::Other);
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>().unwrap(), c);
        }
    }

    #[test]
    fn summary_is_printable() {
        let f = ServiceFacts::named("ssh").product("OpenSSH").version("9.2p1").info("Debian 2+deb12u3\x1b[2J");
        assert_eq!(f.summary(), "OpenSSH 9.2p1 (Debian 2+deb12u3\\u{1b}[2J)");
        assert_eq!(f.display_service(), "ssh");
    }
}
