//! Reading the register's TOML: each entry deserialized with the place of
//! every value, so that each problem names its line, entry and field.

use std::ops::Range;
use std::time::SystemTime;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use vantage_shared::ports::{PortProblem, PortSpecError};
use vantage_shared::{PortSpec, Proto, TargetSet, TargetSpec, VersionRange};

use super::{Entry, FIELDS, Problem, RegisterError};

/// The entries of a register's text, in file order.
pub(super) fn entries(text: &str) -> Result<Vec<Entry>, RegisterError> {
    let doc = DeTable::parse(text).map_err(|e| {
        let mut err = RegisterError::new(Problem::Syntax(e.message().to_string()));
        err.line = e.span().map(|s| line_of(text, s.start));
        err
    })?;
    let mut entries = Vec::new();
    for (key, value) in doc.get_ref() {
        let at = At { text, entry: None, header: key.span() };
        if key.get_ref() != "service" {
            return Err(at.err(key.get_ref(), key.span(), Problem::UnknownKey));
        }
        let DeValue::Array(items) = value.get_ref() else {
            return Err(at.err("service", value.span(), Problem::Type("expected [[service]] tables".into())));
        };
        for (i, item) in items.iter().enumerate() {
            entries.push(entry(text, i + 1, item)?);
        }
    }
    Ok(entries)
}

/// The fields of one entry as TOML has them, each with its place in the text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    host: Option<Spanned<String>>,
    port: Option<Spanned<toml::Value>>,
    proto: Option<Spanned<String>>,
    service: Option<Spanned<String>>,
    product: Option<Spanned<String>>,
    versions: Option<Spanned<String>>,
    tls: Option<Spanned<bool>>,
    justification: Option<Spanned<String>>,
    owner: Option<Spanned<String>>,
    contact: Option<Spanned<String>>,
    review_by: Option<Spanned<toml::Value>>,
}

/// Where an entry is, to turn a problem into a located error.
struct At<'t> {
    text: &'t str,
    entry: Option<usize>,
    /// Where the entry starts: missing fields are reported there.
    header: Range<usize>,
}

impl At<'_> {
    fn err(&self, field: &str, span: Range<usize>, problem: Problem) -> RegisterError {
        RegisterError {
            file: None,
            line: Some(line_of(self.text, span.start)),
            entry: self.entry,
            field: Some(field.to_string()),
            problem,
        }
    }

    fn required<T>(&self, field: &'static str, value: Option<Spanned<T>>) -> Result<Spanned<T>, RegisterError> {
        value.ok_or_else(|| self.err(field, self.header.clone(), Problem::Missing))
    }

    /// Text that must say something, trimmed.
    fn text(&self, field: &'static str, value: Spanned<String>) -> Result<String, RegisterError> {
        let trimmed = value.get_ref().trim();
        if trimmed.is_empty() {
            return Err(self.err(field, value.span(), Problem::Empty));
        }
        Ok(trimmed.to_string())
    }

    fn optional_text(
        &self,
        field: &'static str,
        value: Option<Spanned<String>>,
    ) -> Result<Option<String>, RegisterError> {
        value.map(|v| self.text(field, v)).transpose()
    }
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1
}

fn entry(text: &str, number: usize, item: &Spanned<DeValue<'_>>) -> Result<Entry, RegisterError> {
    let at = At { text, entry: Some(number), header: item.span() };
    let DeValue::Table(table) = item.get_ref() else {
        return Err(at.err("service", item.span(), Problem::Type("expected a table".into())));
    };
    if let Some((key, _)) = table.iter().find(|(k, _)| !FIELDS.contains(&k.get_ref().as_ref())) {
        return Err(at.err(key.get_ref(), key.span(), Problem::UnknownField));
    }
    let raw = RawEntry::deserialize(ValueDeserializer::from(item.clone())).map_err(|e| {
        let span = e.span().unwrap_or(item.span());
        // The field is the one whose value holds the error.
        let field = table.iter().find(|(_, v)| v.span().contains(&span.start)).map(|(k, _)| k.get_ref().to_string());
        at.err(field.as_deref().unwrap_or("service"), span, Problem::Type(e.message().to_string()))
    })?;
    check(&at, number, raw)
}

fn check(at: &At<'_>, number: usize, raw: RawEntry) -> Result<Entry, RegisterError> {
    let host = at.required("host", raw.host)?;
    let (host_text, host_set) = check_host(at, host)?;
    let ports = check_port(at, at.required("port", raw.port)?)?;
    let proto = match raw.proto {
        None => Proto::Tcp,
        Some(p) => match p.get_ref().as_str() {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            other => return Err(at.err("proto", p.span(), Problem::Proto(other.to_string()))),
        },
    };
    let service = at.optional_text("service", raw.service.clone())?;
    if let (Some(name), Some(s)) = (&service, &raw.service)
        && name.starts_with("ssl/")
    {
        return Err(at.err("service", s.span(), Problem::SslPrefix(name.clone())));
    }
    let versions = raw
        .versions
        .map(|v| v.get_ref().parse::<VersionRange>().map_err(|e| at.err("versions", v.span(), Problem::Versions(e))))
        .transpose()?;
    let review_by = at.required("review_by", raw.review_by)?;
    let (review_by, review_ends) = check_date(at, review_by)?;
    Ok(Entry {
        number,
        line: line_of(at.text, at.header.start),
        host: host_set,
        host_text,
        ports,
        proto,
        service,
        product: at.optional_text("product", raw.product)?,
        versions,
        tls: raw.tls.map(Spanned::into_inner),
        justification: at.text("justification", at.required("justification", raw.justification)?)?,
        owner: at.text("owner", at.required("owner", raw.owner)?)?,
        contact: at.optional_text("contact", raw.contact)?,
        review_by,
        review_ends,
    })
}

fn check_host(at: &At<'_>, host: Spanned<String>) -> Result<(String, TargetSet), RegisterError> {
    let set = TargetSpec::parse(host.get_ref())
        .map_err(|e| at.err("host", host.span(), Problem::Host(Box::new(e))))?
        .resolve();
    if set.is_empty() {
        return Err(at.err("host", host.span(), Problem::NoAddress));
    }
    Ok((host.get_ref().trim().to_string(), set))
}

fn check_port(at: &At<'_>, port: Spanned<toml::Value>) -> Result<PortSpec, RegisterError> {
    let bad = |problem| at.err("port", port.span(), problem);
    match port.get_ref() {
        toml::Value::Integer(n) => match u16::try_from(*n) {
            Ok(p) if p > 0 => PortSpec::parse(&p.to_string()).map_err(|e| bad(Problem::Port(e))),
            _ => {
                let problem = if *n > 0 { PortProblem::OutOfRange(*n as u64) } else { PortProblem::Unparsable };
                Err(bad(Problem::Port(PortSpecError { token: n.to_string(), problem })))
            }
        },
        toml::Value::String(s) => PortSpec::parse(s).map_err(|e| bad(Problem::Port(e))),
        other => Err(bad(Problem::Type(format!(
            "expected a port number or a port list such as \"80,443\", found {}",
            other.type_str()
        )))),
    }
}

/// A review-by day, quoted (`"2027-03-31"`) or as a TOML date (`2027-03-31`),
/// and the instant after it.
fn check_date(at: &At<'_>, value: Spanned<toml::Value>) -> Result<(String, SystemTime), RegisterError> {
    let text = match value.get_ref() {
        toml::Value::String(s) => s.trim().to_string(),
        toml::Value::Datetime(d) if d.time.is_none() && d.offset.is_none() => d.to_string(),
        other => other.to_string(),
    };
    let ends = vantage_shared::period::day_end(&text)
        .ok_or_else(|| at.err("review_by", value.span(), Problem::Date(text.clone())))?;
    Ok((text, ends))
}
