//! The register's editing verbs: `add`, `remove` and `renew`. Each reads
//! the file, edits its text through [`crate::review::register`] (which keeps
//! comments and layout), and replaces the file atomically.

use std::path::Path;
use std::time::SystemTime;

use vantage_shared::{PortSpec, Proto, TargetSet, TargetSpec};

use super::{AddArgs, DAY, RemoveArgs, RenewArgs, SelectArgs, day_start, parse, plural, port, read, service};
use crate::cli::UsageError;
use crate::cli::files::replace_file;
use crate::review::register::{
    Entry, NewEntry, Register, RegisterError, Selector, add_entry, remove_entries, set_review_by,
};

pub(super) fn add(args: AddArgs) -> anyhow::Result<()> {
    let new = NewEntry {
        host: args.host,
        port: args.port,
        proto: args.proto.into(),
        service: args.service,
        product: args.product,
        versions: args.versions,
        tls: args.tls.then_some(true).or(args.no_tls.then_some(false)),
        justification: args.justification,
        owner: args.owner,
        contact: args.contact,
        review_by: args.review_by,
    };
    // Checked on its own first, so that a bad flag is told apart from a bad file.
    new.check().map_err(flag_error)?;
    let text = read(&args.file)?;
    let edited = add_entry(&text, &new).map_err(|e| e.in_file(args.file.display().to_string()))?;
    replace_file(&args.file, &edited)?;
    let register = parse(&args.file, &edited)?;
    let added = register.entries().last().expect("an entry was added");
    eprintln!("added service {} at {}:{}: {}", added.number, args.file.display(), added.line, describe(added));
    warn_if_past(&added.review_by);
    Ok(())
}

/// A bad value of a new entry, named by its flag (`--versions: ...`).
fn flag_error(e: RegisterError) -> UsageError {
    match &e.field {
        Some(field) => UsageError(format!("--{}: {}", field.replace('_', "-"), e.problem)),
        None => UsageError(e.to_string()),
    }
}

/// One line about an entry: `198.18.0.1 22/tcp ssh (ops, review by 2026-12-31): Bastion for operators`.
fn describe(e: &Entry) -> String {
    let service = match service(e) {
        s if s.is_empty() => String::new(),
        s => format!(" {s}"),
    };
    format!("{} {}{service} ({}, review by {}): {}", e.host_text, port(e), e.owner, e.review_by, e.justification)
}

fn warn_if_past(day: &str) {
    if day_start(day).is_some_and(|start| start + DAY <= SystemTime::now()) {
        eprintln!("note: {day} has passed: the entry is overdue already");
    }
}

/// The entries that [`SelectArgs`] name, checked.
struct Wanted {
    host: TargetSet,
    ports: Option<PortSpec>,
    proto: Option<Proto>,
    /// The selector as the operator wrote it, for messages.
    text: String,
}

impl Wanted {
    fn parse(args: &SelectArgs) -> Result<Wanted, UsageError> {
        let host = TargetSpec::parse(&args.host).map_err(|e| UsageError(format!("--host: {e}")))?.resolve();
        let ports =
            args.port.as_deref().map(PortSpec::parse).transpose().map_err(|e| UsageError(format!("--port: {e}")))?;
        let mut text = format!("--host {}", args.host);
        if let Some(p) = &args.port {
            text.push_str(&format!(" --port {p}"));
        }
        let proto = args.proto.map(Proto::from);
        if let Some(p) = proto {
            text.push_str(&format!(" --proto {p}"));
        }
        Ok(Wanted { host, ports, proto, text })
    }

    fn selects(&self, e: &Entry) -> bool {
        e.host == self.host
            && self.ports.as_ref().is_none_or(|p| *p == e.ports)
            && self.proto.is_none_or(|p| p == e.proto)
    }

    /// The selected entries, and the library's selectors that together
    /// select exactly them (one per distinct ports and protocol); an error
    /// naming the selector when there are none.
    fn select<'r>(&self, path: &Path, register: &'r Register) -> anyhow::Result<(Vec<&'r Entry>, Vec<Selector>)> {
        let chosen: Vec<&Entry> = register.entries().iter().filter(|e| self.selects(e)).collect();
        if chosen.is_empty() {
            anyhow::bail!("{}: no entry matches {}", path.display(), self.text);
        }
        let mut selectors: Vec<Selector> = Vec::new();
        for e in &chosen {
            if !selectors.iter().any(|s| s.selects(e)) {
                selectors.push(Selector { host: self.host.clone(), ports: e.ports.clone(), proto: e.proto });
            }
        }
        Ok((chosen, selectors))
    }
}

pub(super) fn remove(args: RemoveArgs) -> anyhow::Result<()> {
    let wanted = Wanted::parse(&args.select)?;
    let text = read(&args.file)?;
    let register = parse(&args.file, &text)?;
    let (chosen, selectors) = wanted.select(&args.file, &register)?;
    let mut edited = text;
    let mut removed = 0;
    for s in &selectors {
        let (next, n) = remove_entries(&edited, s).map_err(|e| e.in_file(args.file.display().to_string()))?;
        edited = next;
        removed += n;
    }
    replace_file(&args.file, &edited)?;
    eprintln!("removed {removed} {} from {}:", plural(removed), args.file.display());
    for e in chosen {
        eprintln!("  line {}: {}", e.line, describe(e));
    }
    Ok(())
}

pub(super) fn renew(args: RenewArgs) -> anyhow::Result<()> {
    let wanted = Wanted::parse(&args.select)?;
    let day = args.review_by.trim();
    if day_start(day).is_none() {
        return Err(UsageError(format!("--review-by: `{day}` is not a date (YYYY-MM-DD)")).into());
    }
    let text = read(&args.file)?;
    let register = parse(&args.file, &text)?;
    let (chosen, selectors) = wanted.select(&args.file, &register)?;
    let mut edited = text;
    let mut renewed = 0;
    for s in &selectors {
        let (next, n) = set_review_by(&edited, s, day).map_err(|e| e.in_file(args.file.display().to_string()))?;
        edited = next;
        renewed += n;
    }
    replace_file(&args.file, &edited)?;
    eprintln!("renewed {renewed} {} in {} until {day}:", plural(renewed), args.file.display());
    for e in chosen {
        eprintln!("  line {}: {} {} ({}): review by {} -> {day}", e.line, e.host_text, port(e), e.owner, e.review_by);
    }
    warn_if_past(day);
    Ok(())
}
