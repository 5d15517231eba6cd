//! The deploy/ files: the systemd units pass `systemd-analyze verify` and
//! stay hardened, the container build and compose file name only what exists,
//! cloud-init installs what Terraform hands it, and every sample address is
//! a documentation one (198.18.0.0/15) or loopback.
//!
//! Without systemd-analyze the unit tests skip, and fail when `CI=true`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use serde_norway::Value;
use vantage_tests::bins;
use vantage_tests::proc::run;

const LIMIT: Duration = Duration::from_secs(60);
/// Exposure scores of `systemd-analyze security --offline=yes` (0 best, 10
/// worst) measured with systemd 252: 1.2 and 1.5. The coordinator has no
/// capability and its own user namespace; the agent keeps CAP_NET_RAW for
/// SYN scans, which rules out a user namespace.
const MAX_EXPOSURE: [(&str, f64); 2] = [("vantage.service", 1.3), ("vantage-agent.service", 1.6)];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

fn deploy(path: &str) -> PathBuf {
    repo().join("deploy").join(path)
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// systemd-analyze, or `None` (a skip) outside CI.
fn systemd_analyze() -> Option<PathBuf> {
    let found = Command::new("systemd-analyze").arg("--version").output().is_ok_and(|o| o.status.success());
    if found {
        return Some(PathBuf::from("systemd-analyze"));
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(!ci, "systemd-analyze is needed in CI to check deploy/systemd (Debian package: systemd)");
    eprintln!("skipping: no systemd-analyze");
    None
}

/// The units in a temporary directory with ExecStart on the built binaries
/// (verify insists that they exist), and `edit` applied.
fn units_for_verify(edit: impl Fn(&str) -> String) -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (unit, bin) in [("vantage.service", bins::vantage()), ("vantage-agent.service", bins::agent())] {
        let text = read(&deploy(&format!("systemd/{unit}")));
        let name = bin.file_name().unwrap().to_str().unwrap();
        let text = text.replace(&format!("ExecStart=/usr/local/bin/{name} "), &format!("ExecStart={} ", bin.display()));
        assert!(text.contains(&format!("ExecStart={} ", bin.display())), "{unit} starts /usr/local/bin/{name}");
        let path = dir.path().join(unit);
        fs::write(&path, edit(&text)).unwrap();
        paths.push(path);
    }
    (dir, paths)
}

fn verify(tool: &Path, paths: &[PathBuf]) -> (bool, String) {
    let out = run(Command::new(tool).args(["verify", "--man=no"]).args(paths), LIMIT);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn the_units_verify_without_a_warning() {
    let Some(tool) = systemd_analyze() else { return };
    let (_dir, paths) = units_for_verify(str::to_string);
    let (ok, text) = verify(&tool, &paths);
    assert!(ok && text.trim().is_empty(), "systemd-analyze verify:\n{text}");

    // The same check sees a mistake, so silence above means something.
    let (_dir, paths) = units_for_verify(|t| t.replace("ProtectHome=yes", "ProtectHome=sometimes"));
    let (_, text) = verify(&tool, &paths);
    assert!(text.contains("ProtectHome") || text.contains("protect home"), "a bad value goes unnoticed:\n{text}");
}

#[test]
fn the_units_exposure_stays_low() {
    let Some(tool) = systemd_analyze() else { return };
    let (_dir, paths) = units_for_verify(str::to_string);
    for (path, (unit, max)) in paths.iter().zip(MAX_EXPOSURE) {
        let out = run(Command::new(&tool).args(["security", "--offline=yes", "--no-pager"]).arg(path), LIMIT);
        let text = String::from_utf8_lossy(&out.stdout);
        let score: f64 = text
            .lines()
            .find_map(|l| {
                l.split_once(&format!("exposure level for {unit}: "))?.1.split_whitespace().next()?.parse().ok()
            })
            .unwrap_or_else(|| panic!("no exposure level for {unit}:\n{text}{}", String::from_utf8_lossy(&out.stderr)));
        eprintln!("{unit}: exposure {score}");
        assert!(score <= max, "{unit}: exposure {score} > {max}:\n{text}");
    }
}

/// The `Key=value` lines of a unit, in order (keys may repeat).
fn unit_settings(unit: &str) -> Vec<(String, String)> {
    read(&deploy(&format!("systemd/{unit}")))
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn setting<'a>(settings: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    settings.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
}

#[test]
fn only_the_agent_gets_a_capability_and_only_cap_net_raw() {
    for (unit, caps, config) in [
        ("vantage.service", "", "/etc/vantage/coordinator.toml"),
        ("vantage-agent.service", "CAP_NET_RAW", "/etc/vantage/agent.toml"),
    ] {
        let s = unit_settings(unit);
        assert_eq!(setting(&s, "CapabilityBoundingSet"), [caps], "{unit}");
        assert_eq!(setting(&s, "AmbientCapabilities"), [caps], "{unit}");
        for (key, want) in [
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("PrivateDevices", "yes"),
            ("LimitNOFILE", "65536"),
            ("Restart", "on-failure"),
            ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ] {
            assert_eq!(setting(&s, key), [want], "{unit}: {key}");
        }
        assert_eq!(setting(&s, "SystemCallFilter").first(), Some(&"@system-service"), "{unit}");
        let exec = setting(&s, "ExecStart")[0];
        assert!(exec.ends_with(&format!("--config {config}")), "{unit}: {exec}");
        // The file it reads is the sample of that name.
        let sample = Path::new(config).file_name().unwrap().to_str().unwrap();
        assert!(deploy(sample).is_file(), "{unit} reads a config with no sample deploy/{sample}");
        // Its user is one sysusers.d creates.
        let user = setting(&s, "User")[0];
        let sysusers = read(&deploy("systemd/sysusers.d/vantage.conf"));
        assert!(sysusers.lines().any(|l| l.split_whitespace().nth(1) == Some(user)), "{unit}: no user {user}");
    }
}

/// The stages of the Dockerfile and its instructions, by stage.
fn dockerfile() -> Vec<(String, Vec<String>)> {
    let text = read(&deploy("container/Dockerfile")).replace("\\\n", " ");
    let mut stages: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if let Some(from) = line.strip_prefix("FROM ") {
            let name = from.split_once(" AS ").map_or("", |(_, n)| n.trim());
            stages.push((name.to_string(), vec![line.to_string()]));
        } else {
            stages.last_mut().expect("FROM first").1.push(line.to_string());
        }
    }
    stages
}

#[test]
fn the_dockerfile_copies_what_exists_and_runs_as_a_user() {
    let stages = dockerfile();
    let names: Vec<&str> = stages.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["builder", "runtime", "coordinator", "agent"]);
    // The builder's Rust is the workspace's.
    let manifest = read(&repo().join("Cargo.toml"));
    let rust = manifest.lines().find_map(|l| l.strip_prefix("rust-version = ")).unwrap().trim_matches('"');
    assert_eq!(stages[0].1[0], format!("FROM rust:{rust}-bookworm AS builder"));
    for (stage, lines) in &stages {
        for line in lines.iter().filter(|l| l.starts_with("COPY ") && !l.contains("--from=")) {
            let words: Vec<&str> = line.split_whitespace().collect();
            for source in &words[1..words.len() - 1] {
                assert!(repo().join(source).exists(), "{stage}: {line}: {source} does not exist");
            }
        }
    }
    for (stage, bin) in [("coordinator", "vantage"), ("agent", "vantage-agent")] {
        let lines = &stages.iter().find(|(n, _)| n == stage).unwrap().1;
        assert!(lines.iter().any(|l| l == "USER vantage"), "{stage} runs as root");
        assert!(lines.contains(&format!("ENTRYPOINT [\"{bin}\"]")), "{stage}");
        assert!(lines.contains(&format!("COPY --from=builder /out/{bin} /usr/local/bin/{bin}")), "{stage}");
    }
    assert!(stages[0].1.iter().any(|l| l.contains("target/release/vantage target/release/vantage-agent")));
}

fn yaml(path: &Path) -> Value {
    let mut value: Value = serde_norway::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    value.apply_merge().unwrap();
    value
}

/// 198.18.0.0/15, or loopback (where the options' defaults point).
fn sample_address(addr: Ipv4Addr) -> bool {
    let [a, b, ..] = addr.octets();
    (a == 198 && (b == 18 || b == 19)) || addr.is_loopback()
}

#[test]
fn compose_runs_a_fleet_on_an_internal_network() {
    let compose = yaml(&deploy("compose.yaml"));
    let services = compose["services"].as_mapping().expect("services");
    let names: BTreeSet<&str> = services.keys().filter_map(Value::as_str).collect();
    let want = ["agent-ap-south", "agent-eu-west", "agent-us-east", "coordinator", "pki", "tokens"];
    assert_eq!(names, want.into_iter().collect());
    let stages: Vec<String> = dockerfile().into_iter().map(|(n, _)| n).collect();
    let mut regions = BTreeSet::new();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        assert!(service.get("ports").is_none(), "{name} publishes a port");
        assert!(service.get("privileged").is_none() && service.get("user").is_none(), "{name} changes its user");
        // Built here, never pulled.
        let build = service.get("build").unwrap_or_else(|| panic!("{name} has no build"));
        let context = deploy(build["context"].as_str().unwrap());
        assert!(context.join(build["dockerfile"].as_str().unwrap()).is_file(), "{name}: no Dockerfile");
        assert!(stages.iter().any(|s| Some(s.as_str()) == build["target"].as_str()), "{name}: no such stage");
        for volume in service.get("volumes").and_then(Value::as_sequence).into_iter().flatten() {
            let source = volume.as_str().unwrap().split(':').next().unwrap();
            if source.starts_with('.') {
                assert!(deploy(source).exists(), "{name}: {source} does not exist");
            } else {
                assert!(compose["volumes"].get(source).is_some(), "{name}: undeclared volume {source}");
            }
        }
        if let Some(region) = service.get("environment").and_then(|e| e.get("REGION")) {
            regions.insert(region.as_str().unwrap().to_string());
            let command = service["command"][0].as_str().unwrap();
            assert!(command.contains("vantage-agent enroll --config /etc/vantage/agent.toml"), "{name}");
        }
    }
    assert_eq!(regions.len(), 3, "three regions: {regions:?}");
    let tokens = services[&Value::from("tokens")]["command"][0].as_str().unwrap();
    for region in &regions {
        assert!(tokens.contains(region.as_str()), "no join token for {region}");
    }
    for (name, network) in compose["networks"].as_mapping().unwrap() {
        assert_eq!(network["internal"], Value::Bool(true), "network {name:?} reaches out");
    }
    // The coordinator's address is the one deploy/coordinator.toml listens on.
    let coordinator = &services[&Value::from("coordinator")];
    let addr = coordinator["networks"]["fleet"]["ipv4_address"].as_str().unwrap();
    assert!(read(&deploy("coordinator.toml")).contains(&format!("\nlisten = \"{addr}:7420\"")));
}

/// The cloud-init template filled in as Terraform fills it in.
fn cloud_init(vars: &BTreeMap<&str, String>) -> String {
    let mut text = read(&deploy("cloud-init/agent.yaml"));
    for (name, value) in vars {
        text = text.replace(&format!("${{{name}}}"), value);
    }
    assert!(!text.contains("${"), "a template variable is left:\n{text}");
    text
}

#[test]
fn cloud_init_installs_what_terraform_hands_it() {
    let b64 = |path: &str| base64::engine::general_purpose::STANDARD.encode(read(&deploy(path)));
    let vars: BTreeMap<&str, String> = [
        ("agent_url", "https://artifacts.example.com/vantage-agent".to_string()),
        ("agent_sha256", "0".repeat(64)),
        ("coordinator_url", "https://coordinator.example.com:7420".to_string()),
        ("allow", "[\"198.18.0.0/15\"]".to_string()),
        ("join_token", "vjt1.example".to_string()),
        ("unit_b64", b64("systemd/vantage-agent.service")),
        ("sysusers_b64", b64("systemd/sysusers.d/vantage.conf")),
    ]
    .into_iter()
    .collect();
    // Terraform hands over exactly these variables.
    let main = read(&deploy("terraform/main.tf"));
    let block = main.split("templatefile(").nth(1).unwrap().split("})").next().unwrap();
    let passed: BTreeSet<&str> = block.lines().filter_map(|l| Some(l.split_once(" = ")?.0.trim())).collect();
    assert_eq!(passed, vars.keys().copied().collect());

    let text = cloud_init(&vars);
    if let Some(rendered) = terraform_render(&vars) {
        assert_eq!(rendered.trim_end(), text.trim_end(), "Terraform renders the template differently");
    }
    assert!(text.starts_with("#cloud-config\n"));
    let doc: Value = serde_norway::from_str(&text).expect("valid YAML");
    let files: BTreeMap<&str, &Value> =
        doc["write_files"].as_sequence().unwrap().iter().map(|f| (f["path"].as_str().unwrap(), f)).collect();
    let unit = files["/etc/systemd/system/vantage-agent.service"];
    assert_eq!(unit["encoding"], Value::from("b64"));
    assert_eq!(unit["content"].as_str().unwrap(), b64("systemd/vantage-agent.service"));
    let install = files["/usr/local/sbin/vantage-agent-install"]["content"].as_str().unwrap();
    for step in ["sha256sum -c", "systemd-sysusers", "vantage-agent enroll --config /etc/vantage/agent.toml"] {
        assert!(install.contains(step), "the install script lacks {step}");
    }
    assert!(install.trim_end().ends_with("systemctl enable --now vantage-agent.service"));
    assert_eq!(doc["runcmd"][0][0], Value::from("/usr/local/sbin/vantage-agent-install"));

    // The agent.toml it writes is one the agent accepts.
    let dir = tempfile::tempdir().unwrap();
    let agent_toml = dir.path().join("agent.toml");
    fs::write(&agent_toml, files["/etc/vantage/agent.toml"]["content"].as_str().unwrap()).unwrap();
    let out = run(Command::new(bins::vantage()).args(["config", "check"]).arg(&agent_toml), LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid agent configuration"));
}

/// The cloud-init template rendered by Terraform's own templatefile()
/// (`terraform console` needs no provider); `None` (a skip) without
/// terraform outside CI.
fn terraform_render(vars: &BTreeMap<&str, String>) -> Option<String> {
    if Command::new("terraform").arg("version").output().is_err() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(!ci, "terraform is needed in CI to render deploy/cloud-init/agent.yaml");
        eprintln!("skipping the Terraform rendering: no terraform");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = vars.iter().map(|(k, v)| format!("{k} = {}", serde_json::to_string(v).unwrap())).collect();
    let template = deploy("cloud-init/agent.yaml");
    let expr = format!("templatefile({:?}, {{ {} }})\n", template.display().to_string(), args.join(", "));
    let input = dir.path().join("expr");
    fs::write(&input, expr).unwrap();
    // The harness gives children no stdin: the shell redirects it.
    let out = run(Command::new("sh").args(["-c", "exec terraform console < expr"]).current_dir(dir.path()), LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "terraform console: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let body = stdout.trim().strip_prefix("<<EOT\n").and_then(|b| b.strip_suffix("EOT"));
    Some(body.unwrap_or_else(|| panic!("terraform console printed {stdout}")).to_string())
}

/// Every dotted quad in a text (with its prefix length, if any).
fn ipv4_literals(text: &str) -> Vec<Ipv4Addr> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts =
            bytes[i].is_ascii_digit() && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.'));
        if starts {
            let end =
                (i..bytes.len()).find(|&j| !(bytes[j].is_ascii_digit() || bytes[j] == b'.')).unwrap_or(bytes.len());
            if let Ok(addr) = text[i..end].trim_end_matches('.').parse::<Ipv4Addr>() {
                out.push(addr);
            }
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn every_sample_address_is_a_documentation_address() {
    let mut seen = 0;
    let mut stack = vec![repo().join("deploy")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            for addr in ipv4_literals(&read(&path)) {
                seen += 1;
                assert!(sample_address(addr), "{}: {addr} is neither in 198.18.0.0/15 nor loopback", path.display());
            }
        }
    }
    assert!(seen >= 5, "the scan finds the samples' addresses ({seen})");
    assert_eq!(
        ipv4_literals("a 10.1.2.3/8, v1.2.3.4 and 198.18.0.1:7420."),
        ["10.1.2.3".parse::<Ipv4Addr>().unwrap(), "198.18.0.1".parse().unwrap()]
    );
}
