//! `vantage config check|sample` and `vantage serve --config` on the real
//! binary: the samples in deploy/ are what `config sample` prints and pass
//! `config check`; broken files are refused with FILE:LINE:COL and exit
//! status 2; and a file's values yield to the environment and the command line.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const VANTAGE: &str = env!("CARGO_BIN_EXE_vantage");

fn deploy(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(name)
}

fn vantage(args: &[&str]) -> Output {
    Command::new(VANTAGE).args(args).env_remove("VANTAGE_LISTEN").output().expect("vantage runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What `vantage config check` said about a file.
struct Checked {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

/// `vantage config check` on `body` written to `name` in a fresh directory.
fn check(name: &str, body: &str, extra: &[&str]) -> Checked {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, body).unwrap();
    let out = vantage(&[&["config", "check", path.to_str().unwrap()], extra].concat());
    Checked { code: out.status.code(), stdout: text(&out.stdout), stderr: text(&out.stderr), path, _dir: dir }
}

#[test]
fn the_samples_are_generated_from_the_options() {
    for (kind, file) in [("coordinator", "coordinator.toml"), ("agent", "agent.toml")] {
        let out = vantage(&["config", "sample", "--kind", kind]);
        assert!(out.status.success());
        let on_disk = std::fs::read_to_string(deploy(file)).unwrap();
        assert!(
            text(&out.stdout) == on_disk,
            "deploy/{file} is not what `vantage config sample --kind {kind}` prints; regenerate it"
        );
    }
}

#[test]
fn the_samples_pass_the_check() {
    for (file, kind) in [("coordinator.toml", "coordinator"), ("agent.toml", "agent")] {
        let path = deploy(file);
        let out = vantage(&["config", "check", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        assert!(stdout.contains(&format!("valid {kind} configuration; sets ")), "{stdout}");
    }
}

#[test]
fn broken_files_are_located_and_refused() {
    let cases: &[(&str, &str, &str)] = &[
        ("listen = \"198.18.0.10:7420\"\nlisen = \"x\"\n", ":2:1: lisen: unknown option (did you mean `listen`?)", ""),
        (
            "listen = \"198.18.0.10:7420\"\nshard-probes = \"many\"\n",
            ":2:16: shard-probes: expected a whole number",
            "",
        ),
        ("listen = \"198.18.0.10:7420\"\nlease = \"sixty\"\n", ":2:9: lease: expected a duration such as", ""),
        ("listen = \"198.18.0.10\"\n", ":1:10: listen: expected an address and port", ""),
        ("listen = \"198.18.0.10:7420\"\nagent-cert-ttl = \"5s\"\n", ":2:18: agent-cert-ttl:", "at least 10s"),
        ("listen = \"198.18.0.10:7420\"\ninsecure = 1\n", ":2:12: insecure: expected true or false, found 1", ""),
        (
            "listen = \"198.18.0.10:7420\"\nscope = \"missing-scope.txt\"\n",
            ":2:9: scope: scope file ",
            "missing-scope.txt",
        ),
        ("allow = \"198.18.0.0/33\"\n", ":1:9: allow: ", ""),
        ("capacity = 2\n[coordinator]\nlisten = 1\n", ":2:1: coordinator: expected a URL", ""),
        ("listen = [\n", ":1:", ""),
    ];
    for (body, want, also) in cases {
        let Checked { code, stdout, stderr, path, .. } = check("vantage.toml", body, &[]);
        assert_eq!(code, Some(2), "{body}: {stderr}");
        assert!(stdout.is_empty());
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with(&format!("{}{want}", path.display())), "{body}: {stderr}");
        assert!(first.contains(also), "{body}: {stderr}");
        assert!(stderr.lines().last().unwrap().starts_with("vantage: "), "{stderr}");
    }
}

#[test]
fn every_problem_is_listed() {
    let Checked { code, stderr, .. } = check("coordinator.toml", "lease = 60\nshard-probes = 0\nnope = 1\n", &[]);
    assert_eq!(code, Some(2));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert!(lines[0].contains(":1:9: lease: expected a duration"), "{stderr}");
    assert!(lines[1].contains(":2:16: shard-probes: expected a whole number, found 0"), "{stderr}");
    assert!(lines[2].contains(":3:1: nope: unknown option"), "{stderr}");
}

#[test]
fn the_kind_comes_from_the_keys_or_the_name() {
    let Checked { code, stdout, .. } = check("x.toml", "lease = \"2m\"\n", &[]);
    assert_eq!((code, stdout.contains("valid coordinator configuration")), (Some(0), true), "{stdout}");
    let Checked { code, stdout, .. } = check("x.toml", "capacity = 3\n", &[]);
    assert_eq!((code, stdout.contains("valid agent configuration")), (Some(0), true), "{stdout}");
    let Checked { code, stdout, .. } = check("edge-agent.toml", "log-format = \"json\"\n", &[]);
    assert_eq!((code, stdout.contains("valid agent configuration")), (Some(0), true), "{stdout}");
    let Checked { code, stderr, .. } = check("x.toml", "log-format = \"json\"\n", &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("give --kind"), "{stderr}");
    // --kind decides: an agent's key in a coordinator's file is unknown.
    let Checked { code, stderr, .. } = check("x.toml", "capacity = 3\n", &["--kind", "coordinator"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("capacity: unknown option"), "{stderr}");
}

/// A `vantage serve --insecure` that is killed when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `vantage serve` and returns which of `ports` it listens on.
fn listening_port(config: &Path, env: Option<u16>, flag: Option<u16>, ports: &[u16]) -> u16 {
    let mut cmd = Command::new(VANTAGE);
    cmd.args(["serve", "--config"]).arg(config).env_remove("VANTAGE_LISTEN");
    if let Some(port) = env {
        cmd.env("VANTAGE_LISTEN", format!("127.0.0.1:{port}"));
    }
    if let Some(port) = flag {
        cmd.arg("--listen").arg(format!("127.0.0.1:{port}"));
    }
    let mut serve = Serve(cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        for &port in ports {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return port;
            }
        }
        if let Some(status) = serve.0.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(serve.0.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("vantage serve exited with {status}: {err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("vantage serve listens on none of {ports:?}");
}

#[test]
fn the_command_line_beats_the_environment_which_beats_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_port(), free_port(), free_port()];
    let config = dir.path().join("coordinator.toml");
    let body = format!("listen = \"127.0.0.1:{}\"\ninsecure = true\ndata-dir = \"store\"\n", ports[0]);
    std::fs::write(&config, body).unwrap();
    assert_eq!(listening_port(&config, None, None, &ports), ports[0]);
    assert!(dir.path().join("store").is_dir(), "data-dir is relative to the file's directory");
    assert_eq!(listening_port(&config, Some(ports[1]), None, &ports), ports[1]);
    assert_eq!(listening_port(&config, Some(ports[1]), Some(ports[2]), &ports), ports[2]);
}

#[test]
fn serve_refuses_a_broken_file_before_starting() {
    let checked = check("coordinator.toml", "listen = \"127.0.0.1:0\"\nlease = \"soon\"\n", &[]);
    let path = &checked.path;
    let out = vantage(&["serve", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with(&format!("{}:2:9: lease: expected a duration", path.display())), "{stderr}");
}
