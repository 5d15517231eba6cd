//! HTTP/1.x: the status line and headers (parsed by `httparse`), the
//! `Server` header, the page title, and the management interfaces a review
//! must never miss on the internet: Grafana, Jenkins, Kibana, phpMyAdmin,
//! RabbitMQ management, Prometheus, the Kubernetes API, the Docker Engine
//! API and Elasticsearch.

use vantage_shared::{Access, Category, ServiceFacts};

use super::{Verdict, split_version, version_prefix};
use crate::cpe;

/// The request: HTTP/1.0 so that the server closes after the body and the
/// read ends at once. The User-Agent names the scanner and, when the
/// operator configured one, whom to contact about it.
pub fn request(host: &str, user_agent: &str) -> Vec<u8> {
    format!("GET / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: {user_agent}\r\nAccept: */*\r\n\r\n").into_bytes()
}

/// The User-Agent of Vantage's probes: `Vantage/VERSION`, plus `(+CONTACT)`
/// when there is a contact. `None` if the contact could break the request
/// (control characters, or longer than 200 bytes).
pub fn user_agent(contact: Option<&str>) -> Option<String> {
    let base = concat!("Vantage/", env!("CARGO_PKG_VERSION"));
    match contact.map(str::trim).filter(|c| !c.is_empty()) {
        None => Some(base.to_string()),
        Some(c) if c.len() <= 200 && c.bytes().all(|b| (0x20..0x7f).contains(&b)) => Some(format!("{base} (+{c})")),
        Some(_) => None,
    }
}

/// What a response says, once parsed.
struct Response<'a> {
    status: u16,
    headers: Vec<(String, String)>,
    body: &'a [u8],
}

impl Response<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body[..self.body.len().min(16 * 1024)]).to_string()
    }
}

fn read(bytes: &[u8]) -> Option<Response<'_>> {
    if !bytes.starts_with(b"HTTP/1.") {
        return None;
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let (status, body_at) = match response.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => (response.code?, n),
        // Headers cut off by the byte cap: what we have still counts.
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => (response.code?, bytes.len()),
        Err(_) => (status_only(bytes)?, bytes.len()),
    };
    let headers = response
        .headers
        .iter()
        .filter(|h| !h.name.is_empty())
        .map(|h| (h.name.to_string(), String::from_utf8_lossy(&h.value[..h.value.len().min(256)]).to_string()))
        .collect();
    Some(Response { status, headers, body: &bytes[body_at..] })
}

fn status_only(bytes: &[u8]) -> Option<u16> {
    let line = super::first_line(bytes);
    line.split(' ').nth(1)?.parse().ok()
}

pub fn parse(_probe: Option<&str>, bytes: &[u8]) -> Verdict {
    let Some(r) = read(bytes) else { return Verdict::No };
    let body = r.body_text();
    let title = title(&body);
    if r.status == 400 && body.contains("The plain HTTP request was sent to HTTPS port") {
        return Verdict::Tls;
    }
    if let Some(f) = management(&r, &body, title.as_deref()) {
        return Verdict::Match(f);
    }
    let mut facts = ServiceFacts::named("http");
    if let Some(server) = r.header("Server") {
        facts = server_header(facts, server);
    }
    if let Some(t) = title {
        let t = format!("title: {t}");
        facts.info = Some(match facts.info.take() {
            Some(i) => format!("{i}; {t}"),
            None => t,
        });
    }
    Verdict::Match(facts)
}

/// `nginx/1.22.1`, `Apache/2.4.62 (Debian)`, `Microsoft-IIS/10.0`, ...
fn server_header(facts: ServiceFacts, server: &str) -> ServiceFacts {
    let (first, rest) = server.split_once(' ').unwrap_or((server, ""));
    let (name, version) = split_version(first, &['/']);
    let version = version.and_then(|v| version_prefix(&v));
    let (product, vendor) = match name.as_str() {
        "nginx" => ("nginx", Some(("f5", "nginx"))),
        "Apache" => ("Apache httpd", Some(("apache", "http_server"))),
        "Microsoft-IIS" => ("Microsoft IIS httpd", Some(("microsoft", "internet_information_services"))),
        "lighttpd" => ("lighttpd", Some(("lighttpd", "lighttpd"))),
        "openresty" => ("OpenResty web app server", Some(("openresty", "openresty"))),
        "Caddy" => ("Caddy httpd", None),
        "Jetty" | "Jetty(" => ("Jetty", Some(("eclipse", "jetty"))),
        _ => (name.as_str(), None),
    };
    let mut facts = facts.product(product);
    if let Some(v) = version {
        if let Some((vendor, p)) = vendor {
            facts.cpe = vec![cpe::application(vendor, p, &v)];
        }
        facts = facts.version(v);
    }
    let rest = rest.trim().trim_start_matches('(').trim_end_matches(')');
    facts.info(rest)
}

/// The contents of `<title>`, whitespace collapsed, at most 120 characters.
pub fn title(body: &str) -> Option<String> {
    let lower = body.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let open_end = start + lower[start..].find('>')? + 1;
    let close = open_end + lower[open_end..].find("</title")?;
    let t: String = body.get(open_end..close)?.split_whitespace().collect::<Vec<_>>().join(" ");
    (!t.is_empty()).then(|| t.chars().take(120).collect())
}

fn management(r: &Response, body: &str, title: Option<&str>) -> Option<ServiceFacts> {
    let mgmt = |product: &str| {
        let mut f = ServiceFacts::named("http").product(product);
        f.category = Category::Management;
        f
    };
    let json_version = |key: &str| json_string_after(body, key);
    if let Some(v) = r.header("X-Jenkins") {
        let v = version_prefix(v).unwrap_or_default();
        let mut f = mgmt("Jenkins").version(&v);
        f.cpe = vec![cpe::application("jenkins", "jenkins", &v)];
        return Some(f);
    }
    if let Some(v) = r.header("kbn-version") {
        return Some(mgmt("Kibana").version(version_prefix(v).unwrap_or_default()));
    }
    if r.header("kbn-name").is_some() || title == Some("Elastic") && body.contains("kbn") {
        return Some(mgmt("Kibana"));
    }
    if title.is_some_and(|t| t.contains("Grafana")) || body.contains("grafana-app") {
        let v = json_version("\"version\"").filter(|_| body.contains("buildInfo"));
        return Some(mgmt("Grafana").version(v.unwrap_or_default()));
    }
    if title.is_some_and(|t| t.contains("phpMyAdmin"))
        || r.header("Set-Cookie").is_some_and(|c| c.contains("phpMyAdmin"))
    {
        return Some(mgmt("phpMyAdmin"));
    }
    if title.is_some_and(|t| t.contains("RabbitMQ Management")) {
        return Some(mgmt("RabbitMQ management"));
    }
    if title.is_some_and(|t| t.contains("Prometheus"))
        || (r.status / 100 == 3 && r.header("Location").is_some_and(|l| l.ends_with("/graph") || l.ends_with("/query")))
    {
        return Some(mgmt("Prometheus"));
    }
    if let Some(server) = r.header("Server").filter(|s| s.starts_with("Docker/")) {
        let v = version_prefix(&server["Docker/".len()..]).unwrap_or_default();
        let mut f = mgmt("Docker Engine API").version(&v).access(if r.status == 401 {
            Access::AuthRequired
        } else {
            Access::Open
        });
        f.cpe = vec![cpe::application("docker", "docker", &v)];
        return Some(f);
    }
    if body.contains("\"kind\": \"Status\"") || body.contains("\"kind\":\"Status\"") {
        let anonymous = body.contains("system:anonymous");
        if anonymous || body.contains("\"apiVersion\"") {
            return Some(mgmt("Kubernetes API").access(if r.status / 100 == 2 {
                Access::Open
            } else {
                Access::AuthRequired
            }));
        }
    }
    if body.contains("\"/api\"") && body.contains("\"/healthz\"") {
        return Some(mgmt("Kubernetes API").access(Access::Open));
    }
    if body.contains("You Know, for Search") || r.header("X-elastic-product").is_some() {
        let v = json_version("\"number\"").unwrap_or_default();
        let mut f = ServiceFacts::named("http").product("Elasticsearch REST API").version(&v);
        f.category = Category::Database;
        f.access = match r.status {
            200 => Access::Open,
            401 | 403 => Access::AuthRequired,
            _ => Access::Unknown,
        };
        f.cpe = vec![cpe::application("elastic", "elasticsearch", &v)];
        return Some(f);
    }
    None
}

/// The string value after a JSON key, without a JSON parser: the body may
/// be cut off by the byte cap, and only one value is wanted.
fn json_string_after(body: &str, key: &str) -> Option<String> {
    let at = body.find(key)? + key.len();
    let rest = body[at..].trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    let value = &rest[..rest.find('"')?];
    version_prefix(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::matched;

    fn facts(bytes: &[u8]) -> ServiceFacts {
        matched(parse(None, bytes))
    }

    #[test]
    fn server_header_and_title() {
        let f = facts(b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\n\r\n<html><head><title>Welcome to\n nginx!</title>");
        assert_eq!((f.product.as_deref(), f.version.as_deref()), (Some("nginx"), Some("1.22.1")));
        assert_eq!(f.info.as_deref(), Some("title: Welcome to nginx!"));
        assert_eq!(f.cpe, vec!["cpe:2.3:a:f5:nginx:1.22.1:*:*:*:*:*:*:*"]);
        let f = facts(b"HTTP/1.1 404 Not Found\r\nServer: Apache/2.4.62 (Debian)\r\n\r\n");
        assert_eq!(
            (f.product.as_deref(), f.version.as_deref(), f.info.as_deref()),
            (Some("Apache httpd"), Some("2.4.62"), Some("Debian"))
        );
    }

    #[test]
    fn management_interfaces() {
        let f = facts(b"HTTP/1.1 403 Forbidden\r\nX-Jenkins: 2.440.3\r\n\r\n");
        assert_eq!((f.product.as_deref(), f.category), (Some("Jenkins"), Category::Management));
        let f = facts(b"HTTP/1.1 404 Not Found\r\nApi-Version: 1.43\r\nServer: Docker/24.0.7 (linux)\r\n\r\n{\"message\":\"page not found\"}");
        assert_eq!(
            (f.product.as_deref(), f.version.as_deref(), f.access),
            (Some("Docker Engine API"), Some("24.0.7"), Access::Open)
        );
        let f = facts(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"name\":\"n1\",\"version\":{\"number\":\"8.11.1\"},\"tagline\":\"You Know, for Search\"}");
        assert_eq!(
            (f.product.as_deref(), f.version.as_deref(), f.category),
            (Some("Elasticsearch REST API"), Some("8.11.1"), Category::Database)
        );
        let f = facts(b"HTTP/1.1 401 Unauthorized\r\n\r\n{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"message\":\"Unauthorized\"}");
        assert_eq!((f.product.as_deref(), f.access), (Some("Kubernetes API"), Access::AuthRequired));
        let f = facts(b"HTTP/1.1 302 Found\r\nLocation: /graph\r\n\r\n");
        assert_eq!(f.product.as_deref(), Some("Prometheus"));
        let f = facts(b"HTTP/1.1 200 OK\r\n\r\n<title>Grafana</title>");
        assert_eq!(f.product.as_deref(), Some("Grafana"));
    }

    #[test]
    fn plain_http_to_tls_port_asks_for_tls() {
        let r = b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n\r\n<center>The plain HTTP request was sent to HTTPS port</center>";
        assert!(matches!(parse(None, r), Verdict::Tls));
        assert!(parse(None, b"SSH-2.0-x").is_no());
    }
}
