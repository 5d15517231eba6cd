//! The configuration file machinery on the agent's real command line.

use std::path::Path;

use clap::FromArgMatches;

use super::*;
use crate::cli::{Cli, schema};

fn parse(text: &str) -> Result<ConfigFile, Vec<Problem>> {
    schema().parse(Path::new("/etc/vantage/agent.toml"), text).map_err(|e| match e {
        FileError::Invalid { problems, .. } => problems,
        other => panic!("{other}"),
    })
}

fn problem(text: &str) -> Problem {
    let mut problems = parse(text).expect_err("the file is wrong");
    assert_eq!(problems.len(), 1, "{problems:?}");
    problems.remove(0)
}

/// The agent's options after the file and then `args`.
fn cli(text: &str, args: &[&str]) -> Cli {
    let file = parse(text).expect("a valid file");
    let argv = std::iter::once("vantage-agent").chain(args.iter().copied());
    let matches = file.apply(schema().command()).try_get_matches_from(argv).expect("the command line parses");
    Cli::from_arg_matches(&matches).expect("matches fit")
}

#[test]
fn a_file_sets_defaults() {
    let c = cli("capacity = 4\nallow = [\"198.18.0.0/15\", \"127.0.0.1\"]\ninsecure = true\n", &[]);
    assert_eq!(c.agent.capacity, 4);
    assert_eq!(c.agent.allow, "198.18.0.0/15,127.0.0.1");
    assert!(c.agent.insecure);
    assert_eq!(c.agent.max_in_flight, 8192, "untouched options keep their default");
}

#[test]
fn the_command_line_beats_the_file() {
    let c = cli("capacity = 4\nlog-format = \"json\"\n", &["--capacity", "6"]);
    assert_eq!(c.agent.capacity, 6);
    assert_eq!(c.log_format, crate::process::LogFormat::Json);
}

#[test]
fn enroll_takes_coordinator_and_dir_from_the_file() {
    let text = "coordinator = \"https://coordinator.example.com:7420\"\ndir = \"/var/lib/vantage-agent\"\n";
    let c = cli(text, &["enroll", "--token", "vjt1.x"]);
    let Some(crate::cli::Command::Enroll(e)) = c.command else { panic!("enroll") };
    assert_eq!(e.coordinator, "https://coordinator.example.com:7420");
    assert_eq!(e.dir, Path::new("/var/lib/vantage-agent"));
}

#[test]
fn relative_paths_are_relative_to_the_file() {
    let c = cli("dir = \"state\"\n", &[]);
    assert_eq!(c.agent.dir, Path::new("/etc/vantage/state"));
}

#[test]
fn an_unknown_key_is_located_with_a_suggestion() {
    let p = problem("capacity = 2\n\ncapacty = 3\n");
    assert_eq!((p.line, p.col, p.key.as_deref()), (3, 1, Some("capacty")));
    assert!(p.message.contains("did you mean `capacity`"), "{}", p.message);
}

#[test]
fn a_wrong_type_says_what_was_expected() {
    let p = problem("insecure = \"yes\"\n");
    assert_eq!((p.line, p.col), (1, 12));
    assert_eq!(p.message, "expected true or false, found \"yes\"");
    let p = problem("capacity = 2.5\n");
    assert_eq!(p.message, "expected a whole number, found a float");
}

#[test]
fn the_options_own_parser_judges_values() {
    let p = problem("capacity = 0\n");
    assert!(p.message.starts_with("expected a whole number, found 0 ("), "{}", p.message);
    let p = problem("log-format = \"xml\"\n");
    assert_eq!(p.message, "expected one of \"human\", \"json\", found \"xml\"");
}

#[test]
fn checks_judge_addresses_and_files() {
    let p = problem("allow = \"198.18.0.0/33\"\n");
    assert_eq!(p.key.as_deref(), Some("allow"));
    let p = problem("service-probes = \"/nonexistent/nmap-service-probes\"\n");
    assert!(p.message.contains("/nonexistent/nmap-service-probes"), "{}", p.message);
    let p = problem("coordinator = \"https://\"\n");
    assert_eq!(p.key.as_deref(), Some("coordinator"));
}

#[test]
fn every_problem_is_reported_in_line_order() {
    let problems = parse("zzz = 1\ncapacity = \"many\"\naaa = 2\n").expect_err("three problems");
    let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [1, 2, 3]);
}

#[test]
fn a_syntax_error_is_located() {
    let p = problem("capacity = 2\nallow = \n");
    assert_eq!((p.line, p.key.as_deref()), (2, None));
}

#[test]
fn the_sample_names_every_option_and_passes_its_own_check() {
    let sample = crate::cli::sample();
    for arg in schema().options() {
        let key = arg.get_long().unwrap();
        let line = format!("{key} = ");
        assert!(sample.lines().any(|l| l.trim_start_matches('#').starts_with(&line)), "--{key} is not in the sample");
        assert!(arg.get_env().is_some(), "--{key} has no environment variable");
    }
    let uncommented: String = sample.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
    parse(&uncommented).expect("the sample's settings are valid");
    let commented: String = sample
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter(|l| l.contains(" = "))
        .map(|l| format!("{l}\n"))
        .collect();
    parse(&commented).expect("the sample's commented-out values are valid too");
}

#[test]
fn positions_count_characters() {
    assert_eq!(position("a\nbé = 1", 5), (2, 3));
    assert_eq!(position("", 0), (1, 1));
}

#[test]
fn enroll_finds_its_required_coordinator_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, "coordinator = \"https://coordinator.example.com:7420\"\n").unwrap();
    let args = ["vantage-agent", "enroll", "--token", "vjt1.x", "--config", path.to_str().unwrap()];
    let config = |m: &clap::ArgMatches| m.subcommand()?.1.get_one::<std::path::PathBuf>("config").cloned();
    let matches = get_matches_from(&schema(), args.iter().map(Into::into).collect(), config).expect("a valid file");
    let Some(crate::cli::Command::Enroll(e)) = Cli::from_arg_matches(&matches).unwrap().command else { panic!() };
    assert_eq!(e.coordinator, "https://coordinator.example.com:7420");
}
