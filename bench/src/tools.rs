//! The scanners under comparison: how each is invoked inside the lab's
//! scanner namespace, and how its open ports are read back.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::ValueEnum;
use vantage_tests::lab::Lab;
use vantage_tests::lab::net::{SCANNER_IF, TARGET_MAC};

use crate::parse::{self, OpenSet, ParseError};

/// A scanner configuration, as named on the command line and in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Tool {
    /// `vantage scan`, embedded coordinator and agent, TCP connect.
    #[value(name = "vantage-connect")]
    VantageConnect,
    /// `vantage scan --mode syn`.
    #[value(name = "vantage-syn")]
    VantageSyn,
    /// `nmap -sT -T5 --min-rate 10000`.
    #[value(name = "nmap-sT")]
    NmapConnect,
    /// `nmap -sS -T5 --min-rate 50000`.
    #[value(name = "nmap-sS")]
    NmapSyn,
    /// `nmap -sS -T4`: nmap's own congestion control, which slows down when
    /// answers go missing (slower, and more accurate on a busy box).
    #[value(name = "nmap-sS-T4")]
    NmapSynAdaptive,
    /// `masscan --rate R`.
    #[value(name = "masscan")]
    Masscan,
    /// `rustscan -b 10000 -t 1000 -g --scripts none` (from crates.io: `cargo install rustscan`).
    #[value(name = "rustscan")]
    Rustscan,
}

/// Knobs of the tools that the benchmark exposes.
#[derive(Debug, Clone)]
pub struct ToolOptions {
    /// Packets per second for masscan.
    pub masscan_rate: u32,
    pub masscan_retries: u32,
    /// How long masscan listens for late answers after its last probe.
    pub masscan_wait: Duration,
    /// Vantage's connect timeout (`--timeout`).
    pub vantage_timeout: Duration,
}

/// Everything a tool run needs from the lab and the benchmark.
pub struct Setup<'a> {
    pub lab: &'a Lab,
    pub vantage: &'a Path,
    pub scope: &'a Path,
    /// One target address per line, for nmap's `-iL`.
    pub targets_file: &'a Path,
    /// A fresh Vantage store for this run.
    pub data_dir: PathBuf,
    pub options: &'a ToolOptions,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::VantageConnect => "vantage-connect",
            Tool::VantageSyn => "vantage-syn",
            Tool::NmapConnect => "nmap-sT",
            Tool::NmapSyn => "nmap-sS",
            Tool::NmapSynAdaptive => "nmap-sS-T4",
            Tool::Masscan => "masscan",
            Tool::Rustscan => "rustscan",
        }
    }

    /// The command line, prefixed with `ip netns exec vl-<lab>-scan`.
    pub fn command(self, setup: &Setup<'_>) -> Command {
        let truth = setup.lab.truth();
        let ports = truth.ports.to_string();
        match self {
            Tool::VantageConnect | Tool::VantageSyn => {
                let mut cmd = setup.lab.scanner_command(setup.vantage);
                cmd.arg("--data-dir").arg(&setup.data_dir).arg("--scope").arg(setup.scope);
                cmd.args(["scan", "--targets", &truth.targets(), "--ports", &ports, "--format", "json"]);
                cmd.arg("--timeout").arg(humantime::format_duration(setup.options.vantage_timeout).to_string());
                if self == Tool::VantageSyn {
                    cmd.args(["--mode", "syn"]);
                }
                cmd
            }
            Tool::NmapConnect | Tool::NmapSyn | Tool::NmapSynAdaptive => {
                let mut cmd = setup.lab.scanner_command("nmap");
                match self {
                    Tool::NmapConnect => cmd.args(["-sT", "-T5", "--min-rate", "10000"]),
                    Tool::NmapSyn => cmd.args(["-sS", "-T5", "--min-rate", "50000"]),
                    _ => cmd.args(["-sS", "-T4"]),
                };
                cmd.args(["-n", "-Pn", &format!("-p{ports}"), "-oX", "-", "-iL"]);
                cmd.arg(setup.targets_file);
                cmd
            }
            Tool::Masscan => {
                let o = setup.options;
                let mut cmd = setup.lab.scanner_command("masscan");
                // No default route in the lab: masscan is told its interface
                // and the next hop's MAC (the target namespace) instead.
                cmd.args(["--interface", SCANNER_IF, "--router-mac", TARGET_MAC]);
                cmd.args(["--rate", &o.masscan_rate.to_string(), "--retries", &o.masscan_retries.to_string()]);
                cmd.args(["--wait", &o.masscan_wait.as_secs().max(1).to_string(), &format!("-p{ports}")]);
                cmd.args([truth.targets().as_str(), "-oL", "-"]);
                cmd
            }
            Tool::Rustscan => {
                let mut cmd = setup.lab.scanner_command("rustscan");
                cmd.arg("-a").arg(setup.targets_file);
                cmd.args(["-r", &ports, "-b", "10000", "-t", "1000", "--ulimit", "20000"]);
                cmd.args(["-g", "--scripts", "none", "--no-config"]);
                cmd
            }
        }
    }

    /// The open ports in the tool's stdout.
    pub fn parse(self, stdout: &str) -> Result<OpenSet, ParseError> {
        match self {
            Tool::VantageConnect | Tool::VantageSyn => parse::vantage_json(stdout),
            Tool::NmapConnect | Tool::NmapSyn | Tool::NmapSynAdaptive => parse::nmap_xml(stdout),
            Tool::Masscan => parse::masscan_list(stdout),
            Tool::Rustscan => parse::rustscan_greppable(stdout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_command_line() {
        for tool in Tool::value_variants() {
            assert_eq!(Tool::from_str(tool.name(), false).ok(), Some(*tool));
        }
        assert_eq!(Tool::NmapConnect.name(), "nmap-sT");
    }
}
