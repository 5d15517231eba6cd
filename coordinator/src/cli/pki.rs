//! `vantage pki`: the installation's certificate authority and the
//! certificates of the coordinator and its operators.
//!
//! One directory (`--pki`, by default `<data-dir>/pki`) holds:
//!
//! * `ca.pem`: the CA certificate (public: agents get it at enrollment);
//! * `ca.key`: the CA's key (0600; `vantage serve` signs agent certificates with it);
//! * `coordinator.pem`: the coordinator's certificate and key (0600);
//! * `operator.pem`: an operator's certificate and key (0600), which the CLI
//!   shows when it talks to a coordinator.
//!
//! A workstation only needs `ca.pem` and its `operator.pem`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use vantage_proto::pki::{self, Ca, Role};
use vantage_proto::transport::ClientSecurity;
use vantage_proto::transport::tls::{self, Identity};

use super::{GlobalArgs, UsageError};

const FILE_CA: &str = "ca.pem";
const FILE_CA_KEY: &str = "ca.key";
const FILE_COORDINATOR: &str = "coordinator.pem";
const FILE_OPERATOR: &str = "operator.pem";
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Create the CA, the coordinator's certificate and a first operator's
    /// certificate in the PKI directory (once per installation).
    Init(InitArgs),
    /// Issue an operator certificate (for another person or workstation).
    Operator(OperatorArgs),
    /// Issue a new coordinator certificate from the same CA (new names, or
    /// before the old one expires); agents keep working.
    Coordinator(CoordinatorArgs),
    /// Show the certificates in the PKI directory and when they expire.
    Show,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    server: CoordinatorArgs,

    /// The first operator's name.
    #[arg(long, default_value = "admin")]
    operator: String,

    /// Replace an existing CA. Every enrolled agent and operator certificate
    /// stops working: they must enroll again.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
pub struct CoordinatorArgs {
    /// Names agents and operators use to reach the coordinator (DNS names or
    /// IP addresses), in addition to localhost, 127.0.0.1 and ::1.
    #[arg(long = "san", value_name = "NAME")]
    names: Vec<String>,

    /// How long the coordinator's certificate lasts.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "825days")]
    validity: Duration,
}

#[derive(Debug, Args)]
pub struct OperatorArgs {
    /// The operator's name (letters, digits, `-_.`), shown in the coordinator's logs.
    name: String,

    /// Where to write the certificate and key [default: operator-NAME.pem in the PKI directory].
    #[arg(long, short)]
    output: Option<PathBuf>,

    /// How long the certificate lasts.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "365days")]
    validity: Duration,
}

pub fn run(global: &GlobalArgs, cmd: PkiCommand) -> anyhow::Result<()> {
    let dir = global.pki_dir();
    match cmd {
        PkiCommand::Init(args) => init(&dir, args),
        PkiCommand::Operator(args) => {
            let ca = load_ca(&dir)?;
            let path = args.output.unwrap_or_else(|| dir.join(format!("operator-{}.pem", args.name)));
            issue_operator(&ca, &args.name, args.validity, &path)?;
            println!("{}", path.display());
            eprintln!(
                "give it with ca.pem to the operator: vantage --pki DIR, where DIR holds ca.pem and it as operator.pem"
            );
            Ok(())
        }
        PkiCommand::Coordinator(args) => {
            let ca = load_ca(&dir)?;
            issue_coordinator(&ca, &args, &dir.join(FILE_COORDINATOR))?;
            eprintln!("new coordinator certificate in {}; restart `vantage serve` to use it", dir.display());
            Ok(())
        }
        PkiCommand::Show => show(&dir),
    }
}

fn init(dir: &Path, args: InitArgs) -> anyhow::Result<()> {
    if dir.join(FILE_CA).exists() && !args.force {
        return Err(UsageError(format!(
            "{} already holds a CA; keep it (agents trust it), or replace it with --force and enroll every agent again",
            dir.display()
        ))
        .into());
    }
    pki::create_private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let host = vantage_agent::config::default_name();
    // A name of its own, so that two installations' CAs are told apart by name too.
    let ca = Ca::generate(&format!("Vantage CA ({host}, {})", unix_seconds()), CA_VALIDITY)?;
    write(&dir.join(FILE_CA_KEY), &ca.key_pem())?;
    write(&dir.join(FILE_CA), ca.cert_pem())?;
    issue_coordinator(&ca, &args.server, &dir.join(FILE_COORDINATOR))?;
    issue_operator(&ca, &args.operator, Duration::from_secs(365 * 24 * 3600), &dir.join(FILE_OPERATOR))?;
    println!("{}", dir.display());
    eprintln!(
        "PKI created in {}: ca.pem, ca.key, coordinator.pem, operator.pem (keys are 0600).\n\
         Next: vantage serve; then vantage fleet token --region REGION for each agent.",
        dir.display()
    );
    Ok(())
}

/// The creation time in seconds: unique enough between two `pki init`s.
fn unix_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn issue_coordinator(ca: &Ca, args: &CoordinatorArgs, path: &Path) -> anyhow::Result<()> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    names.extend(args.names.iter().cloned());
    names.dedup();
    let cert = ca
        .issue(&Role::Coordinator, "Vantage coordinator", &names, args.validity)
        .map_err(|e| UsageError(format!("--san: {e}")))?;
    write(path, &format!("{}{}", cert.cert_pem, cert.key_pem))
}

fn issue_operator(ca: &Ca, name: &str, validity: Duration, path: &Path) -> anyhow::Result<()> {
    if !pki::valid_id(name) {
        return Err(UsageError(format!("operator name `{name}`: use letters, digits, `-`, `_` and `.`")).into());
    }
    let cert = ca.issue(&Role::Operator(name.to_string()), name, &[], validity)?;
    write(path, &format!("{}{}", cert.cert_pem, cert.key_pem))
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    pki::write_file(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn read(dir: &Path, name: &str, hint: &str) -> anyhow::Result<String> {
    let path = dir.join(name);
    std::fs::read_to_string(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => UsageError(format!("no {} in {}: {hint}", name, dir.display())).into(),
        _ => anyhow::Error::from(e).context(format!("cannot read {}", path.display())),
    })
}

const INIT_HINT: &str =
    "create the PKI with `vantage pki init` (or give --pki DIR), or run plaintext on loopback with --insecure";

fn load_ca(dir: &Path) -> anyhow::Result<Ca> {
    let cert = read(dir, FILE_CA, INIT_HINT)?;
    let key = read(dir, FILE_CA_KEY, "the CA key stays on the coordinator's machine")?;
    Ca::from_pem(&cert, &key).map_err(|e| UsageError(format!("{}: {e}", dir.display())).into())
}

/// What `vantage serve` needs: the CA (to sign agents) and its own certificate.
pub fn load_server(dir: &Path) -> anyhow::Result<(Ca, Identity)> {
    let ca = load_ca(dir)?;
    let pem = read(dir, FILE_COORDINATOR, INIT_HINT)?;
    Ok((ca, Identity { cert_pem: pem.clone(), key_pem: pem }))
}

/// What an operator's CLI shows a coordinator: `operator.pem`, trusting `ca.pem`.
pub fn load_operator(dir: &Path) -> anyhow::Result<ClientSecurity> {
    let hint = "copy ca.pem and an operator certificate (as operator.pem) from the coordinator's PKI directory \
                (`vantage pki operator NAME`), or give --pki DIR";
    let ca = read(dir, FILE_CA, hint)?;
    let pem = read(dir, FILE_OPERATOR, hint)?;
    let config = tls::client_config(&ca, Some(&Identity { cert_pem: pem.clone(), key_pem: pem }))
        .map_err(|e| UsageError(format!("{}: {e}", dir.display())))?;
    Ok(ClientSecurity::Tls(config))
}

fn show(dir: &Path) -> anyhow::Result<()> {
    let mut any = false;
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| UsageError(format!("{}: {e}; {INIT_HINT}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pem"))
        .collect();
    names.sort();
    for path in names {
        let text = std::fs::read_to_string(&path)?;
        let Ok(certs) = pki::certs_from_pem(&text, "") else { continue };
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let role = pki::cert_facts(&certs[0]).map(|f| f.role.to_string()).unwrap_or_else(|_| "CA".into());
        let expires = pki::not_after(&certs[0]).map(|t| humantime::format_rfc3339_seconds(t).to_string());
        println!("{name}\t{role}\texpires {}", expires.unwrap_or_default());
        any = true;
    }
    if !any {
        return Err(UsageError(format!("no certificates in {}; {INIT_HINT}", dir.display())).into());
    }
    Ok(())
}
