//! Recording peers for the notification tests, on loopback: an HTTP server
//! that keeps every request (method, path, headers, JSON body) and plays a
//! small issue tracker (GitHub's issue routes: create, list by label, edit,
//! comment), and an SMTP server that keeps every message. Faults are chosen
//! per request by the test: a 500, or a stall past the client's timeout
//! after the request took effect (the answer is lost, the issue exists).
//! These are the tests' peers, not Vantage: hand-written on purpose.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// What the server does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Answer 500 without acting.
    Fail,
    /// Act, then say nothing for this long and hang up.
    StallAfter(Duration),
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub fault: Fault,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An issue the server keeps.
#[derive(Debug, Clone)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub open: bool,
    pub comments: Vec<String>,
    pub edits: usize,
}

type FaultFn = Box<dyn FnMut(usize, &Request) -> Fault + Send>;

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    issues: Vec<Issue>,
    fault: Option<FaultFn>,
}

/// The recording HTTP server; stops when dropped.
pub struct HttpRecorder {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

/// Connections served at most (bounds the accept loop).
const MAX_CONNECTIONS: usize = 10_000;

impl HttpRecorder {
    pub fn start() -> HttpRecorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, stp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().take(MAX_CONNECTIONS) {
                if stp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve(conn, st));
            }
        });
        HttpRecorder { addr, state, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Chooses the fault of each request (by its number, from 0).
    pub fn set_faults(&self, f: impl FnMut(usize, &Request) -> Fault + Send + 'static) {
        self.state.lock().unwrap().fault = Some(Box::new(f));
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn issues(&self) -> Vec<Issue> {
        self.state.lock().unwrap().issues.clone()
    }
}

impl Drop for HttpRecorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Serves requests on one connection until it closes.
fn serve(conn: TcpStream, state: Arc<Mutex<State>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    for _ in 0..1000 {
        let Some(req) = read_request(&mut reader) else { return };
        let (fault, status, body) = {
            let mut s = state.lock().unwrap();
            let n = s.requests.len();
            let fault = s.fault.as_mut().map_or(Fault::None, |f| f(n, &req));
            let (status, body) =
                if fault == Fault::Fail { (500, json!({"message": "injected"})) } else { act(&mut s, &req) };
            s.requests.push(Request { fault, ..req });
            (fault, status, body)
        };
        if let Fault::StallAfter(d) = fault {
            std::thread::sleep(d);
            return;
        }
        // A 204 has no body (one would be read as the next answer on the connection).
        let body = if status == 204 { String::new() } else { body.to_string() };
        let head =
            format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
        if out.write_all(head.as_bytes()).and_then(|_| out.write_all(body.as_bytes())).is_err() {
            return;
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let n = reader.read_until(b'\n', &mut head).ok()?;
        if n == 0 || head.len() > 64 * 1024 {
            return None;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    parsed.parse(&head).ok()?;
    let target = parsed.path?.to_string();
    let (path, query) = target.split_once('?').map_or((target.clone(), String::new()), |(p, q)| (p.into(), q.into()));
    let headers: Vec<(String, String)> =
        parsed.headers.iter().map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned())).collect();
    let len = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).and_then(|(_, v)| v.parse().ok());
    let mut body = vec![0; len.unwrap_or(0)];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method: parsed.method?.to_string(),
        path,
        query,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        fault: Fault::None,
    })
}

/// GitHub's issue routes on the server's own issues; anything else: 200 `{}`.
fn act(s: &mut State, req: &Request) -> (u16, Value) {
    let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let issue_json =
        |i: &Issue| json!({ "number": i.number, "html_url": format!("http://tracker.invalid/{}", i.number) });
    match (req.method.as_str(), parts.as_slice()) {
        ("POST", ["repos", _, _, "issues"]) => {
            let number = s.issues.len() as u64 + 1;
            let labels =
                req.body["labels"].as_array().map(|l| l.iter().filter_map(|x| x.as_str().map(String::from)).collect());
            s.issues.push(Issue {
                number,
                title: req.body["title"].as_str().unwrap_or_default().into(),
                body: req.body["body"].as_str().unwrap_or_default().into(),
                labels: labels.unwrap_or_default(),
                open: true,
                comments: Vec::new(),
                edits: 0,
            });
            (201, issue_json(s.issues.last().unwrap()))
        }
        ("GET", ["repos", _, _, "issues"]) => {
            let label = req.query.split('&').find_map(|kv| kv.strip_prefix("labels=")).map(decode).unwrap_or_default();
            let found: Vec<Value> = s.issues.iter().filter(|i| i.labels.contains(&label)).map(issue_json).collect();
            (200, Value::Array(found))
        }
        ("PATCH", ["repos", _, _, "issues", n]) => match s.issues.iter_mut().find(|i| i.number.to_string() == *n) {
            Some(i) => {
                if let Some(state) = req.body["state"].as_str() {
                    i.open = state == "open";
                }
                if let Some(t) = req.body["title"].as_str() {
                    i.title = t.into();
                    i.edits += 1;
                }
                (200, issue_json(i))
            }
            None => (404, json!({"message": "Not Found"})),
        },
        ("POST", ["repos", _, _, "issues", n, "comments"]) => {
            match s.issues.iter_mut().find(|i| i.number.to_string() == *n) {
                Some(i) => {
                    i.comments.push(req.body["body"].as_str().unwrap_or_default().into());
                    (201, json!({"id": 1}))
                }
                None => (404, json!({"message": "Not Found"})),
            }
        }
        _ => jira(s, req, &parts),
    }
}

/// Jira's issue routes (REST API 2) on the same issues: keys `SEC-<n>`.
fn jira(s: &mut State, req: &Request, parts: &[&str]) -> (u16, Value) {
    let key_of = |i: &Issue| format!("SEC-{}", i.number);
    let find = |s: &mut State, k: &str| s.issues.iter_mut().position(|i| format!("SEC-{}", i.number) == k);
    match (req.method.as_str(), parts) {
        ("POST", ["rest", "api", _, "issue"]) => {
            let fields = &req.body["fields"];
            let number = s.issues.len() as u64 + 1;
            let labels =
                fields["labels"].as_array().map(|l| l.iter().filter_map(|x| x.as_str().map(String::from)).collect());
            s.issues.push(Issue {
                number,
                title: fields["summary"].as_str().unwrap_or_default().into(),
                body: fields["description"].as_str().unwrap_or_default().into(),
                labels: labels.unwrap_or_default(),
                open: true,
                comments: Vec::new(),
                edits: 0,
            });
            (201, json!({ "key": format!("SEC-{number}") }))
        }
        ("GET", ["rest", "api", _, "search"]) => {
            let jql = req.query.split('&').find_map(|kv| kv.strip_prefix("jql=")).map(decode).unwrap_or_default();
            let found: Vec<Value> = s
                .issues
                .iter()
                .filter(|i| i.labels.iter().any(|l| jql.contains(&format!("labels = \"{l}\""))))
                .map(|i| json!({ "key": key_of(i) }))
                .collect();
            (200, json!({ "issues": found }))
        }
        ("PUT", ["rest", "api", _, "issue", k]) => match find(s, k) {
            Some(n) => {
                s.issues[n].title = req.body["fields"]["summary"].as_str().unwrap_or_default().into();
                s.issues[n].edits += 1;
                (204, Value::Null)
            }
            None => (404, json!({})),
        },
        ("POST", ["rest", "api", _, "issue", k, "comment"]) => match find(s, k) {
            Some(n) => {
                s.issues[n].comments.push(req.body["body"].as_str().unwrap_or_default().into());
                (201, json!({}))
            }
            None => (404, json!({})),
        },
        ("GET", ["rest", "api", _, "issue", k, "transitions"]) => match find(s, k) {
            Some(n) if s.issues[n].open => (200, json!({ "transitions": [{ "id": "31", "name": "Done" }] })),
            Some(_) => (200, json!({ "transitions": [{ "id": "11", "name": "Reopen" }] })),
            None => (404, json!({})),
        },
        ("POST", ["rest", "api", _, "issue", k, "transitions"]) => match find(s, k) {
            Some(n) if req.body["transition"]["id"] == "31" => {
                s.issues[n].open = false;
                (204, Value::Null)
            }
            _ => (400, json!({})),
        },
        _ => (200, json!({})),
    }
}

/// Percent-decoding of a query value.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The recording SMTP server: one message per DATA, with its recipients.
pub struct SmtpRecorder {
    addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
}

#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

impl SmtpRecorder {
    pub fn start() -> SmtpRecorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let m = mails.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().take(100).flatten() {
                let m = m.clone();
                std::thread::spawn(move || smtp_session(conn, m));
            }
        });
        SmtpRecorder { addr, mails }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

fn smtp_session(conn: TcpStream, mails: Arc<Mutex<Vec<Mail>>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    let mut say = |s: &str| out.write_all(s.as_bytes()).is_ok();
    if !say("220 recorder.invalid ESMTP\r\n") {
        return;
    }
    let mut mail = Mail { from: String::new(), to: Vec::new(), data: String::new() };
    for _ in 0..1000 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let upper = line.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250-recorder.invalid\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = line[10..].trim().into();
            "250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(line[8..].trim().trim_matches(['<', '>']).into());
            "250 OK\r\n"
        } else if upper.starts_with("DATA") {
            if !say("354 go ahead\r\n") {
                return;
            }
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).unwrap_or(0) == 0 || l == ".\r\n" {
                    break;
                }
                data.push_str(&l);
            }
            mail.data = data;
            mails
                .lock()
                .unwrap()
                .push(std::mem::replace(&mut mail, Mail { from: String::new(), to: Vec::new(), data: String::new() }));
            "250 queued\r\n"
        } else if upper.starts_with("QUIT") {
            let _ = say("221 bye\r\n");
            return;
        } else {
            "250 OK\r\n"
        };
        if !say(reply) {
            return;
        }
    }
}
