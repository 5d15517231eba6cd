//! Configuration files (TOML) for both binaries, driven by their command lines.
//!
//! The clap command line is the one list of options: a file's keys are the
//! long option names (`shard-probes = 4096` is `--shard-probes 4096`), each
//! value goes through that option's own clap parser, and the commented
//! sample file is generated from the options' help. A file's values become
//! the options' defaults before the command line is parsed again, so clap
//! itself gives the precedence: command line > environment variable > file >
//! built-in default. A relative path in a file is relative to the file's
//! directory (a service's working directory is `/`).
//!
//! Errors name `FILE:LINE:COL: key: what was expected`, all of them at once.

use std::fmt;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, ArgMatches, Command};
use toml::de::{DeTable, DeValue};

/// A check of one value beyond its option's parser, made when the file is
/// read (a scope file exists, an address list parses).
pub type Check = fn(&str) -> Result<(), String>;

/// What one binary's configuration file may hold.
pub struct Schema {
    /// "coordinator" or "agent", in messages.
    pub kind: &'static str,
    /// The binary's whole command line, unbuilt.
    command: Command,
    /// The options the file sets, in help order (built, global ones included).
    options: Vec<Arg>,
    checks: Vec<(&'static str, Check)>,
}

/// One line of a sample file: an option's value, set or commented out.
pub struct Example {
    pub key: &'static str,
    /// A TOML literal (`"198.18.0.0/15"`, `4`, `true`).
    pub value: &'static str,
    /// Whether the sample sets it (else it shows commented out).
    pub set: bool,
}

/// A problem at one place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub col: usize,
    pub key: Option<String>,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{}", render(path, problems))]
    Invalid { path: String, problems: Vec<Problem> },
}

impl FileError {
    /// What `program` prints on stderr: each problem on its own line, then
    /// one line of its own.
    pub fn report(&self, program: &str, kind: &str) -> String {
        match self {
            FileError::Read { .. } => format!("{program}: cannot read {self}"),
            FileError::Invalid { path, problems } => {
                let n = problems.len();
                let s = if n == 1 { "" } else { "s" };
                format!("{self}\n{program}: {path}: {n} problem{s}; not a valid {kind} configuration")
            }
        }
    }
}

fn render(path: &str, problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(|p| format!("{path}:{p}")).collect();
    lines.join("\n")
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.line, self.col)?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// A file that passed every check: option id and value, in file order.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    settings: Vec<(String, String)>,
}

impl Schema {
    /// The options of `command` (or of its `subcommand`, with the global
    /// ones), less those in `skip` (by id) and clap's help and version.
    pub fn new(kind: &'static str, command: Command, subcommand: Option<&str>, skip: &[&str]) -> Self {
        let mut built = command.clone();
        built.build();
        let level = match subcommand {
            Some(name) => built.find_subcommand(name).unwrap_or_else(|| panic!("no subcommand {name}")),
            None => &built,
        };
        let options = level
            .get_arguments()
            .filter(|a| a.get_long().is_some())
            .filter(|a| !["help", "version"].contains(&a.get_id().as_str()) && !skip.contains(&a.get_id().as_str()))
            .cloned()
            .collect();
        Schema { kind, command, options, checks: Vec::new() }
    }

    /// Adds a check of `key`'s value, run when a file is read.
    pub fn check(mut self, key: &'static str, check: Check) -> Self {
        assert!(self.option(key).is_some(), "no option --{key}");
        self.checks.push((key, check));
        self
    }

    /// The binary's command line (unbuilt), for parsing.
    pub fn command(&self) -> Command {
        self.command.clone()
    }

    /// The options a file may set.
    pub fn options(&self) -> &[Arg] {
        &self.options
    }

    fn option(&self, key: &str) -> Option<&Arg> {
        self.options.iter().find(|a| a.get_long() == Some(key))
    }

    /// Reads and checks a file.
    pub fn load(&self, path: &Path) -> Result<ConfigFile, FileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| FileError::Read { path: path.display().to_string(), source })?;
        self.parse(path, &text)
    }

    /// Checks a file's text; `path` names it in errors and anchors relative paths.
    pub fn parse(&self, path: &Path, text: &str) -> Result<ConfigFile, FileError> {
        let invalid = |problems| FileError::Invalid { path: path.display().to_string(), problems };
        let table = DeTable::parse(text).map_err(|e| {
            let (line, col) = position(text, e.span().map_or(0, |s| s.start));
            invalid(vec![Problem { line, col, key: None, message: e.message().trim().to_string() }])
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut settings = Vec::new();
        let mut problems = Vec::new();
        for (key, value) in table.get_ref().iter() {
            let (line, col) = position(text, value.span().start);
            let key_name = key.get_ref().to_string();
            match self.setting(&key_name, value.get_ref(), base) {
                Ok(setting) => settings.push(setting),
                Err(message) => {
                    let (line, col) =
                        if self.option(&key_name).is_some() { (line, col) } else { position(text, key.span().start) };
                    problems.push(Problem { line, col, key: Some(key_name), message });
                }
            }
        }
        if problems.is_empty() {
            Ok(ConfigFile { path: path.to_path_buf(), settings })
        } else {
            problems.sort_by_key(|p| (p.line, p.col));
            Err(invalid(problems))
        }
    }

    /// One key's value as its option's text (id, value), or what is wrong with it.
    fn setting(&self, key: &str, value: &DeValue<'_>, base: &Path) -> Result<(String, String), String> {
        let Some(arg) = self.option(key) else {
            let hint = suggest(key, self.options.iter().filter_map(Arg::get_long))
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            return Err(format!("unknown option{hint}; `vantage config sample --kind {}` lists them all", self.kind));
        };
        let mut text = value_text(arg, value)?;
        if is_path(arg) && Path::new(&text).is_relative() && !text.is_empty() {
            text = base.join(&text).display().to_string();
        }
        parse_alone(arg, &text)
            .map_err(|cause| format!("expected {}, found {}{cause}", expected(arg), shown(value)))?;
        for (_, check) in self.checks.iter().filter(|(k, _)| *k == key) {
            check(&text)?;
        }
        Ok((arg.get_id().to_string(), text))
    }

    /// The commented sample file: `header`, then every option with its
    /// help, its environment variable and its example or default.
    pub fn sample(&self, header: &str, examples: &[Example]) -> Result<String, String> {
        let mut out = String::from(header.trim_end());
        out.push('\n');
        for arg in &self.options {
            let key = arg.get_long().expect("options have long names");
            out.push('\n');
            let mut help = arg.get_long_help().or(arg.get_help()).map(ToString::to_string).unwrap_or_default();
            // clap drops the full stop of a one-sentence help.
            if !help.trim_end().ends_with('.') {
                help = format!("{}.", help.trim_end());
            }
            for line in help.trim().lines() {
                out.push_str(&comment(line));
            }
            if let Some(env) = arg.get_env() {
                out.push_str(&format!("# Environment: {}.\n", env.to_string_lossy()));
            }
            out.push_str(&match examples.iter().find(|e| e.key == key) {
                Some(e) => format!("{}{key} = {}\n", if e.set { "" } else { "#" }, e.value),
                None => format!("#{key} = {}\n", default_literal(arg).ok_or(format!("--{key} has no default"))?),
            });
        }
        Ok(out)
    }
}

impl ConfigFile {
    /// How many options the file sets.
    pub fn len(&self) -> usize {
        self.settings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.settings.is_empty()
    }

    /// `command` with the file's values as defaults: at the top level and in
    /// every direct subcommand that has the option.
    pub fn apply(&self, mut command: Command) -> Command {
        for (id, value) in &self.settings {
            if command.get_arguments().any(|a| a.get_id() == id) {
                command = command.mut_arg(id, |a| set_default(a, value));
            }
            let subs: Vec<String> = command
                .get_subcommands()
                .filter(|s| s.get_arguments().any(|a| a.get_id() == id))
                .map(|s| s.get_name().to_string())
                .collect();
            for sub in subs {
                command = command.mut_subcommand(sub, |s| s.mut_arg(id, |a| set_default(a, value)));
            }
        }
        command
    }
}

/// A required option is satisfied by a default from the file.
fn set_default(arg: Arg, value: &str) -> Arg {
    arg.default_value(value.to_string()).required(false)
}

/// Parses the process's command line; when `config` finds a file in it,
/// parses it again with that file's values as defaults. Clap's own errors
/// (and `--help`) exit the process as usual.
pub fn get_matches(schema: &Schema, config: impl Fn(&ArgMatches) -> Option<PathBuf>) -> Result<ArgMatches, FileError> {
    get_matches_from(schema, std::env::args_os().collect(), config)
}

/// [`get_matches`] on given arguments (the program's name first).
pub fn get_matches_from(
    schema: &Schema,
    args: Vec<std::ffi::OsString>,
    config: impl Fn(&ArgMatches) -> Option<PathBuf>,
) -> Result<ArgMatches, FileError> {
    // A first look for the file forgives missing options: the file may hold them.
    let lenient = schema.command().mut_args(lenient).mut_subcommands(|s| s.mut_args(lenient));
    let path = lenient.try_get_matches_from(&args).ok().and_then(|m| config(&m));
    let command = match path {
        Some(path) => schema.load(&path)?.apply(schema.command()),
        None => schema.command(),
    };
    Ok(command.get_matches_from(args))
}

fn lenient(arg: Arg) -> Arg {
    arg.required(false)
}

fn is_flag(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue)
}

fn value_name(arg: &Arg) -> &str {
    arg.get_value_names().and_then(|n| n.first()).map_or("", |n| n.as_str())
}

fn is_path(arg: &Arg) -> bool {
    matches!(value_name(arg), "PATH" | "FILE" | "DIR")
}

/// The text an option would get on the command line.
fn value_text(arg: &Arg, value: &DeValue<'_>) -> Result<String, String> {
    let wrong = || format!("expected {}, found {}", expected(arg), shown(value));
    match value {
        DeValue::Boolean(b) if is_flag(arg) => Ok(b.to_string()),
        _ if is_flag(arg) => Err(wrong()),
        DeValue::String(s) => Ok(s.to_string()),
        DeValue::Integer(i) if i.radix() == 10 => Ok(i.as_str().replace('_', "")),
        DeValue::Array(items) if value_name(arg) == "TARGETS" => {
            let texts: Option<Vec<&str>> = items.iter().map(|v| v.get_ref().as_str()).collect();
            texts.map(|t| t.join(",")).ok_or_else(wrong)
        }
        _ => Err(wrong()),
    }
}

/// Runs `arg`'s own parser on `text`; the parser's reason on failure.
fn parse_alone(arg: &Arg, text: &str) -> Result<(), String> {
    if is_flag(arg) {
        return Ok(());
    }
    let long = arg.get_long().expect("options have long names");
    let command = Command::new("file").no_binary_name(true).arg(arg.clone().required(false).global(false));
    match command.try_get_matches_from([format!("--{long}={text}")]) {
        Ok(_) => Ok(()),
        Err(e) => Err(std::error::Error::source(&e).map(|c| format!(" ({c})")).unwrap_or_default()),
    }
}

/// What an option takes, in words.
fn expected(arg: &Arg) -> String {
    let possible: Vec<String> = arg.get_possible_values().iter().map(|v| format!("\"{}\"", v.get_name())).collect();
    if !possible.is_empty() {
        return format!("one of {}", possible.join(", "));
    }
    match value_name(arg) {
        _ if is_flag(arg) => "true or false".into(),
        "N" => "a whole number".into(),
        "DURATION" => "a duration such as \"90s\" or \"1h 30m\"".into(),
        "ADDR:PORT" => "an address and port such as \"198.18.0.10:7420\"".into(),
        "TARGETS" => "addresses such as \"198.18.0.0/15, 198.18.1.1-20\"".into(),
        "URL" => "a URL such as \"https://coordinator.example.com:7420\"".into(),
        "PATH" | "FILE" => "a file path".into(),
        "DIR" => "a directory path".into(),
        _ => "a string".into(),
    }
}

fn shown(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("{s:?}"),
        DeValue::Integer(i) => i.as_str().to_string(),
        DeValue::Boolean(b) => b.to_string(),
        other => format!("a {}", other.type_str()),
    }
}

/// The default as a TOML literal, when there is one.
fn default_literal(arg: &Arg) -> Option<String> {
    if is_flag(arg) {
        return Some("false".into());
    }
    let value = arg.get_default_values().first()?.to_string_lossy().into_owned();
    Some(if value_name(arg) == "N" { value } else { toml::Value::String(value).to_string() })
}

fn comment(line: &str) -> String {
    const WIDTH: usize = 100;
    let mut out = String::new();
    let mut current = String::from("#");
    for word in line.split_whitespace() {
        if current.len() + 1 + word.len() > WIDTH && current != "#" {
            out.push_str(&current);
            out.push('\n');
            current = String::from("#");
        }
        current.push(' ');
        current.push_str(word);
    }
    out.push_str(&current);
    out.push('\n');
    out
}

/// 1-based line and column (in characters) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (before.matches('\n').count() + 1, before[line_start..].chars().count() + 1)
}

/// The closest option name, if it is close (at most two edits).
fn suggest<'a>(key: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    names.map(|n| (edits(key, n), n)).filter(|(d, _)| *d <= 2).min().map(|(_, n)| n)
}

/// Levenshtein distance.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests;
