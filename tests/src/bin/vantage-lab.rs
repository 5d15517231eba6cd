//! `vantage-lab`: build, tear down and serve a lab from a shell.
//!
//! `up` leaves the lab running (its listeners in the background) so that
//! any scanner can be tried against it by hand with
//! `ip netns exec vl-<name>-scan ...`; `down` removes it. `serve` is what
//! `up` runs inside the target namespace. `services up` and `services down`
//! do the same for the service lab (real Debian daemons on 198.18.1.1).

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use vantage_tests::lab::delay::{self, line::LineConfig};
use vantage_tests::lab::services::{self, ServiceLab};
use vantage_tests::lab::{Lab, LabSpec, PortRange, Truth, serve::serve, state_dir};

#[derive(Debug, Parser)]
#[command(name = "vantage-lab", about = "A network of namespaces in 198.18.0.0/15 with a known ground truth.")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build a lab (tearing down any lab of the same name first) and leave it running.
    Up(UpArgs),
    /// Tear a lab down: its processes, namespaces and state.
    Down {
        #[arg(long)]
        name: String,
    },
    /// Delay everything a lab's targets send to its scanners and control address,
    /// until SIGTERM or Ctrl-C (which remove the delay again).
    #[command(
        long_about = "Delay everything a lab's targets send to its scanners and control address.\n\n\
                      Creates a TUN device (dl0) in the target namespace, routes the targets' answers \
                      into it, and writes each packet back after --delay: a wide-area round trip \
                      where the kernel has no netem. Runs in the foreground until SIGTERM or Ctrl-C, \
                      which remove the device and its routes; `vantage-lab down` removes them too.",
        after_help = "Example:\n  vantage-lab up --name demo\n  vantage-lab delay --name demo --delay 50ms &\n  \
                      ip netns exec vl-demo-scan nc -zv 198.18.1.0 <open port>   # takes 50 ms more"
    )]
    Delay(DelayArgs),
    /// The service lab: real Debian daemons on their standard and odd ports.
    Services {
        #[command(subcommand)]
        command: ServicesCmd,
    },
    /// Run the listeners of a truth file (inside the target namespace).
    Serve {
        #[arg(long)]
        truth: PathBuf,
        /// Written once every listener is bound.
        #[arg(long)]
        ready: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ServicesCmd {
    /// Build a service lab (tearing down any lab of the same name first), wait until
    /// every port answers, leave it running and print its services as JSON.
    Up {
        /// Lab name: namespaces are vl-<name>-br, vl-<name>-scan, vl-<name>-t.
        #[arg(long)]
        name: String,
        /// Only these daemons (comma-separated lab names, see `services list`).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Also write the JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Stop a service lab's daemons and tear it down.
    Down {
        #[arg(long)]
        name: String,
    },
    /// The ports a service lab serves: daemon, port, service, package and installed version.
    List,
}

#[derive(Debug, clap::Args)]
struct DelayArgs {
    /// Lab name: the line runs in vl-<name>-t.
    #[arg(long)]
    name: String,
    /// Added to each packet, one way (humantime: 50ms, 1s).
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    delay: Duration,
    /// Packets held at most; more are dropped and counted.
    #[arg(long, default_value_t = NonZeroUsize::new(delay::DEFAULT_QUEUE).expect("a queue holds packets"))]
    queue: NonZeroUsize,
    /// Where the counters go (JSON, rewritten every 200 ms) [default: the lab's state dir, delay.json].
    #[arg(long)]
    stats: Option<PathBuf>,
    /// Written once the delayed path is in place.
    #[arg(long)]
    ready: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    /// Lab name: namespaces are vl-<name>-br, vl-<name>-scan, vl-<name>-t.
    #[arg(long)]
    name: String,
    /// Live hosts, from 198.18.1.0 upwards.
    #[arg(long, default_value_t = 8)]
    hosts: u32,
    /// Open ports per live host.
    #[arg(long, default_value_t = 8)]
    open: u32,
    /// Filtered ports per live host.
    #[arg(long, default_value_t = 6)]
    filtered: u32,
    /// Range the open and filtered ports are drawn from.
    #[arg(long, default_value = "1-1000")]
    ports: PortRange,
    /// Unowned addresses after the live hosts.
    #[arg(long, default_value_t = 0)]
    dark: u32,
    /// Add a host that drops every packet.
    #[arg(long)]
    drop_all: bool,
    /// Add a host that accepts on every port.
    #[arg(long)]
    tarpit: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Scanner namespaces (vl-<name>-scan, -scan1, ...) at 198.18.0.1, .2, ...
    #[arg(long, default_value_t = 1)]
    scanners: u32,
    /// Open ports per live host that drop one scanner's packets (needs --scanners 2 or more).
    #[arg(long, default_value_t = 0)]
    fenced: u32,
    /// Add a control namespace (vl-<name>-ctl, 198.18.0.250) for a coordinator the scanners reach.
    #[arg(long)]
    control: bool,
    /// Also write the ground truth here.
    #[arg(long)]
    truth: Option<PathBuf>,
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("vantage-lab: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Up(args) => up(args),
        Cmd::Down { name } => Ok(Lab::teardown(&LabSpec::new(&name))?),
        Cmd::Services { command } => services_cmd(command),
        Cmd::Delay(args) => {
            let stats = args.stats.unwrap_or_else(|| state_dir(&args.name).join("delay.json"));
            let cfg =
                LineConfig { lab: args.name, delay: args.delay, queue: args.queue.get(), stats, ready: args.ready };
            let stats = delay::line::run(&cfg)?;
            eprintln!("delay line stopped: {}", serde_json::to_string(&stats)?);
            Ok(())
        }
        Cmd::Serve { truth, ready } => {
            let truth = Truth::load(&truth)?;
            let ready = ready.unwrap_or_else(|| std::env::temp_dir().join(format!("vantage-lab-{}.ready", truth.name)));
            Ok(serve(&truth, &ready)?)
        }
    }
}

fn services_cmd(command: ServicesCmd) -> anyhow::Result<()> {
    match command {
        ServicesCmd::Up { name, only, json } => {
            let started = std::time::Instant::now();
            let only: Vec<&str> = only.iter().map(String::as_str).collect();
            let lab = ServiceLab::up_only(&name, &only)?;
            let report = serde_json::to_string_pretty(&lab.report())?;
            if let Some(path) = &json {
                std::fs::write(path, format!("{report}\n")).with_context(|| format!("writing {}", path.display()))?;
            }
            println!("{report}");
            eprintln!(
                "service lab {name} is up in {:.1} s: {} ports on {} (logs in {}/logs)\n\
                 run a scanner with `ip netns exec {ns} ...`; remove the lab with `vantage-lab services down --name {name}`",
                started.elapsed().as_secs_f64(),
                lab.services().len(),
                lab.addr(),
                lab.dir().display(),
                ns = lab.spec().ns_scanner(),
            );
            lab.keep();
            Ok(())
        }
        ServicesCmd::Down { name } => Ok(ServiceLab::teardown(&name)?),
        ServicesCmd::List => {
            services::check().map_err(anyhow::Error::msg)?;
            for s in services::plan(&[])? {
                let port = format!("{}/{}", s.proto, s.port);
                let odd = if s.odd { format!("(to {})", s.listens) } else { String::new() };
                let service = if s.tls { format!("ssl/{}", s.service) } else { s.service.clone() };
                println!("{:<11} {port:<10} {odd:<10} {service:<11} {} {}", s.daemon, s.package, s.version);
            }
            Ok(())
        }
    }
}

fn up(args: UpArgs) -> anyhow::Result<()> {
    let spec = LabSpec {
        name: args.name,
        hosts: args.hosts,
        open: args.open,
        filtered: args.filtered,
        ports: args.ports,
        dark: args.dark,
        drop_all: args.drop_all,
        tarpit: args.tarpit,
        seed: args.seed,
        scanners: args.scanners,
        fenced: args.fenced,
        control: args.control,
    };
    let lab = Lab::up(&spec)?;
    if let Some(path) = &args.truth {
        lab.truth().save(path).with_context(|| format!("copying the truth to {}", path.display()))?;
    }
    println!("{}", lab.truth().targets());
    eprintln!(
        "lab {name} is up: scanner {scanner} in {ns}, targets {targets}, truth in {truth}\n\
         run a scanner with `ip netns exec NAMESPACE ...`; remove the lab with `vantage-lab down --name {name}`",
        name = spec.name,
        scanner = lab.truth().scanners.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        ns = (0..spec.scanners).map(|i| spec.ns_scanner_at(i)).collect::<Vec<_>>().join(", "),
        targets = lab.truth().targets(),
        truth = args.truth.unwrap_or_else(|| lab.truth_path()).display(),
    );
    lab.keep();
    Ok(())
}
