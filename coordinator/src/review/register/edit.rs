//! Editing the register for the CLI. The file is the operator's: it holds
//! comments on why a port is open and who agreed, laid out their way. So the
//! edits go through `toml_edit`, which changes the entries concerned and
//! leaves every other byte alone. Each edit starts from a register that
//! parses and must end with one.

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, Value, value};
use vantage_shared::{PortSpec, Proto, TargetSet, TargetSpec};

use super::{Entry, Problem, Register, RegisterError};
use vantage_shared::period::day_end;

/// A new entry as the CLI collects it; checked as strictly as the file.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub host: String,
    /// A port number or a port spec (`"80,443"`).
    pub port: String,
    pub proto: Proto,
    pub service: Option<String>,
    pub product: Option<String>,
    pub versions: Option<String>,
    pub tls: Option<bool>,
    pub justification: String,
    pub owner: String,
    pub contact: Option<String>,
    /// `YYYY-MM-DD`.
    pub review_by: String,
}

impl NewEntry {
    /// Checks the entry on its own. Errors name the field, not a line: the
    /// entry is not in a file yet.
    pub fn check(&self) -> Result<Entry, RegisterError> {
        let mut entries = ArrayOfTables::new();
        entries.push(self.to_table());
        let mut doc = DocumentMut::new();
        doc.insert("service", Item::ArrayOfTables(entries));
        let register = Register::parse(&doc.to_string()).map_err(|mut e| {
            e.line = None;
            e.entry = None;
            e
        })?;
        Ok(register.entries.into_iter().next().expect("one entry was written"))
    }

    /// The entry as a `[[service]]` table, fields in the documented order.
    fn to_table(&self) -> Table {
        let mut t = Table::new();
        t["host"] = value(self.host.trim());
        // A number stays a number (so that 70000 is reported as out of range).
        t["port"] = match self.port.trim().parse::<i64>() {
            Ok(n) => value(n),
            Err(_) => value(self.port.trim()),
        };
        t["proto"] = value(self.proto.to_string());
        for (key, text) in [("service", &self.service), ("product", &self.product), ("versions", &self.versions)] {
            if let Some(text) = text {
                t[key] = value(text.trim());
            }
        }
        if let Some(tls) = self.tls {
            t["tls"] = value(tls);
        }
        t["justification"] = value(self.justification.trim());
        t["owner"] = value(self.owner.trim());
        if let Some(contact) = &self.contact {
            t["contact"] = value(contact.trim());
        }
        t["review_by"] = value(self.review_by.trim());
        t
    }
}

/// Which entries an edit applies to: those documenting exactly these
/// addresses, ports and protocol, however written (`198.18.1.0/24` selects
/// an entry written `198.18.1.0-198.18.1.255`; `443,80` one written `80,443`).
#[derive(Debug, Clone)]
pub struct Selector {
    pub host: TargetSet,
    pub ports: PortSpec,
    pub proto: Proto,
}

impl Selector {
    pub fn parse(host: &str, ports: &str, proto: Proto) -> Result<Selector, RegisterError> {
        let field =
            |field: &str, problem| RegisterError { field: Some(field.to_string()), ..RegisterError::new(problem) };
        let host = TargetSpec::parse(host).map_err(|e| field("host", Problem::Host(Box::new(e))))?.resolve();
        let ports = PortSpec::parse(ports).map_err(|e| field("port", Problem::Port(e)))?;
        Ok(Selector { host, ports, proto })
    }

    pub fn selects(&self, entry: &Entry) -> bool {
        entry.host == self.host && entry.ports == self.ports && entry.proto == self.proto
    }
}

/// Appends `entry` to the register `text`, after checking it.
pub fn add_entry(text: &str, entry: &NewEntry) -> Result<String, RegisterError> {
    entry.check()?;
    let (_, mut doc) = open(text)?;
    let mut table = entry.to_table();
    match entries_mut(&mut doc)? {
        Some(entries) => {
            table.decor_mut().set_prefix("\n");
            entries.push(table);
        }
        None => {
            // A file of comments alone: toml_edit keeps them as the document's
            // trailing text, which would put them below the new entry.
            let mut lead = doc.trailing().as_str().unwrap_or("").to_string();
            if !lead.is_empty() && !lead.ends_with("\n\n") {
                lead.push('\n');
            }
            doc.set_trailing("");
            table.decor_mut().set_prefix(lead);
            let mut entries = ArrayOfTables::new();
            entries.push(table);
            doc.insert("service", Item::ArrayOfTables(entries));
        }
    }
    finish(&doc)
}

/// Removes the entries `which` selects; returns the new text and how many
/// went (0 leaves the text as it was). A comment directly above a removed
/// entry goes with it; comments separated from it by a blank line stay.
pub fn remove_entries(text: &str, which: &Selector) -> Result<(String, usize), RegisterError> {
    let (register, mut doc) = open(text)?;
    let doomed = selected(&register, which);
    if doomed.is_empty() {
        return Ok((text.to_string(), 0));
    }
    let mut at_end = String::new();
    let entries = entries_mut(&mut doc)?.expect("the register has entries");
    for &i in doomed.iter().rev() {
        let removed = entries.remove(i);
        let kept = kept_prefix(removed.decor().prefix().and_then(|p| p.as_str()).unwrap_or(""));
        match entries.get_mut(i) {
            Some(next) => {
                let own = next.decor().prefix().and_then(|p| p.as_str()).unwrap_or("\n").to_string();
                next.decor_mut().set_prefix(format!("{kept}{own}"));
            }
            None => at_end.insert_str(0, kept),
        }
    }
    if !at_end.is_empty() {
        let trailing = doc.trailing().as_str().unwrap_or("").to_string();
        doc.set_trailing(format!("{at_end}{trailing}"));
    }
    Ok((finish(&doc)?, doomed.len()))
}

/// Sets the review-by day of the entries `which` selects (a renewal);
/// returns the new text and how many changed. A comment after the old
/// date stays.
pub fn set_review_by(text: &str, which: &Selector, review_by: &str) -> Result<(String, usize), RegisterError> {
    let day = review_by.trim();
    if day_end(day).is_none() {
        let problem = Problem::Date(day.to_string());
        return Err(RegisterError { field: Some("review_by".into()), ..RegisterError::new(problem) });
    }
    let (register, mut doc) = open(text)?;
    let chosen = selected(&register, which);
    if chosen.is_empty() {
        return Ok((text.to_string(), 0));
    }
    let entries = entries_mut(&mut doc)?.expect("the register has entries");
    for &i in &chosen {
        let item = &mut entries.get_mut(i).expect("entries and tables correspond")["review_by"];
        let mut new = Value::from(day);
        if let Some(old) = item.as_value() {
            *new.decor_mut() = old.decor().clone();
        }
        *item = Item::Value(new);
    }
    Ok((finish(&doc)?, chosen.len()))
}

/// The register, checked, and the document to edit.
fn open(text: &str) -> Result<(Register, DocumentMut), RegisterError> {
    let register = Register::parse(text)?;
    let doc = text.parse::<DocumentMut>().map_err(|e| RegisterError::new(Problem::Syntax(e.message().to_string())))?;
    Ok((register, doc))
}

/// The `[[service]]` tables, in file order (the order of the register's entries).
fn entries_mut(doc: &mut DocumentMut) -> Result<Option<&mut ArrayOfTables>, RegisterError> {
    match doc.get_mut("service") {
        None => Ok(None),
        Some(item) => item
            .as_array_of_tables_mut()
            .map(Some)
            .ok_or_else(|| RegisterError { field: Some("service".into()), ..RegisterError::new(Problem::InlineArray) }),
    }
}

/// Indexes of the tables of the selected entries.
fn selected(register: &Register, which: &Selector) -> Vec<usize> {
    register.entries().iter().filter(|e| which.selects(e)).map(|e| e.number - 1).collect()
}

/// What of a removed table's leading text to keep: the lines up to its last
/// blank line, when they hold a comment (a file header, a section heading).
/// What follows the blank line is the entry's own comment.
fn kept_prefix(prefix: &str) -> &str {
    let mut end = 0;
    let mut offset = 0;
    for line in prefix.split_inclusive('\n') {
        offset += line.len();
        if line.trim().is_empty() {
            end = offset;
        }
    }
    let kept = &prefix[..end];
    if kept.trim().is_empty() { "" } else { kept }
}

/// The edited text, which must still be a register.
fn finish(doc: &DocumentMut) -> Result<String, RegisterError> {
    let text = doc.to_string();
    Register::parse(&text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# Justification register: who agreed to what.
# Reviewed monthly.

# The bastion, agreed with the CISO.
[[service]]
host = "198.18.0.1"   # bastion
port = 22
justification = "bastion"
owner = "ops"
review_by = "2027-01-01"  # renewed in January

# Public web.
[[service]]
host = "198.18.1.0/24"
port = "80,443"
justification = "website"
owner = "web"
review_by = "2027-03-31"
"#;

    fn new_entry() -> NewEntry {
        NewEntry {
            host: "198.18.2.5".into(),
            port: "443".into(),
            proto: Proto::Tcp,
            service: Some("http".into()),
            product: Some("nginx".into()),
            versions: Some(">=1.22, <1.23".into()),
            tls: Some(true),
            justification: "API gateway".into(),
            owner: "api-team".into(),
            contact: Some("api@example.invalid".into()),
            review_by: "2027-06-30".into(),
        }
    }

    #[test]
    fn adding_keeps_comments_and_appends_the_entry() {
        let out = add_entry(TEXT, &new_entry()).unwrap();
        assert!(out.starts_with(TEXT), "the existing text is untouched:\n{out}");
        let r = Register::parse(&out).unwrap();
        assert_eq!(r.entries().len(), 3);
        let added = &r.entries()[2];
        assert_eq!((added.host_text.as_str(), added.owner.as_str(), added.tls), ("198.18.2.5", "api-team", Some(true)));
        assert_eq!(added.versions.as_ref().map(|v| v.as_str()), Some(">=1.22, <1.23"));
        assert!(out.ends_with("review_by = \"2027-06-30\"\n"), "{out}");
        assert!(out.contains("\n\n[[service]]\nhost = \"198.18.2.5\"\nport = 443\nproto = \"tcp\"\n"), "{out}");
    }

    #[test]
    fn adding_to_a_file_of_comments_keeps_them_on_top() {
        let header = "# Justification register.\n# Entries below.\n";
        let out = add_entry(header, &new_entry()).unwrap();
        assert!(out.starts_with("# Justification register.\n# Entries below.\n\n[[service]]\n"), "{out}");
        assert_eq!(Register::parse(&out).unwrap().entries().len(), 1);
        let out = add_entry("", &new_entry()).unwrap();
        assert!(out.starts_with("[[service]]\n"), "{out}");
    }

    #[test]
    fn a_bad_new_entry_is_refused_by_field() {
        let mut bad = new_entry();
        bad.versions = Some("~1.22".into());
        let e = add_entry(TEXT, &bad).unwrap_err();
        assert_eq!((e.line, e.entry, e.field.as_deref()), (None, None, Some("versions")));
        assert!(matches!(e.problem, Problem::Versions(_)), "{e:?}");
        let mut bad = new_entry();
        bad.port = "70000".into();
        assert!(matches!(add_entry(TEXT, &bad).unwrap_err().problem, Problem::Port(_)));
        let mut bad = new_entry();
        bad.owner = " ".into();
        assert_eq!(add_entry(TEXT, &bad).unwrap_err().field.as_deref(), Some("owner"));
        // A broken file is reported with its line, not edited.
        let e = add_entry(&TEXT.replace("owner = \"web\"\n", ""), &new_entry()).unwrap_err();
        assert_eq!((e.line, e.entry, e.field.as_deref()), (Some(13), Some(2), Some("owner")));
    }

    #[test]
    fn removing_takes_the_entry_and_its_own_comment() {
        let which = Selector::parse("198.18.0.1", "22", Proto::Tcp).unwrap();
        let (out, n) = remove_entries(TEXT, &which).unwrap();
        assert_eq!(n, 1);
        assert!(!out.contains("bastion"), "{out}");
        assert!(out.starts_with("# Justification register: who agreed to what.\n# Reviewed monthly.\n\n"), "{out}");
        assert!(out.contains("# Public web.\n[[service]]\nhost = \"198.18.1.0/24\""), "{out}");
        let r = Register::parse(&out).unwrap();
        assert_eq!(r.entries().len(), 1);
        assert_eq!(r.entries()[0].owner, "web");
    }

    #[test]
    fn removing_selects_by_what_entries_cover() {
        // Written differently from the file, the same addresses and ports.
        let which = Selector::parse("198.18.1.0-198.18.1.255", "443,80", Proto::Tcp).unwrap();
        let (out, n) = remove_entries(TEXT, &which).unwrap();
        assert_eq!(n, 1);
        assert!(out.ends_with("review_by = \"2027-01-01\"  # renewed in January\n"), "{out}");
        assert_eq!(Register::parse(&out).unwrap().entries().len(), 1);
        for (host, ports, proto) in [("198.18.1.0/24", "80", Proto::Tcp), ("198.18.0.1", "22", Proto::Udp)] {
            let (same, n) = remove_entries(TEXT, &Selector::parse(host, ports, proto).unwrap()).unwrap();
            assert_eq!((same.as_str(), n), (TEXT, 0), "{host} {ports} {proto}");
        }
        assert!(matches!(Selector::parse("198.18.0.1/40", "22", Proto::Tcp).unwrap_err().problem, Problem::Host(_)));
    }

    #[test]
    fn renewing_changes_the_date_and_nothing_else() {
        let which = Selector::parse("198.18.0.1", "22", Proto::Tcp).unwrap();
        let (out, n) = set_review_by(TEXT, &which, "2027-07-01").unwrap();
        assert_eq!(n, 1);
        assert_eq!(out, TEXT.replace("\"2027-01-01\"  # renewed", "\"2027-07-01\"  # renewed"));
        assert_eq!(Register::parse(&out).unwrap().entries()[0].review_by, "2027-07-01");
        let e = set_review_by(TEXT, &which, "soon").unwrap_err();
        assert!(matches!(e.problem, Problem::Date(_)) && e.field.as_deref() == Some("review_by"), "{e:?}");
    }

    #[test]
    fn inline_arrays_cannot_be_extended() {
        let inline = "service = [{ host = \"198.18.0.1\", port = 22, justification = \"x\", owner = \"o\", review_by = \"2027-01-01\" }]\n";
        assert_eq!(Register::parse(inline).unwrap().entries().len(), 1);
        let e = add_entry(inline, &new_entry()).unwrap_err();
        assert!(matches!(e.problem, Problem::InlineArray), "{e:?}");
    }

    #[test]
    fn kept_prefix_is_what_lies_above_the_last_blank_line() {
        assert_eq!(kept_prefix("\n# entry\n"), "");
        assert_eq!(kept_prefix("# header\n\n# entry\n"), "# header\n\n");
        assert_eq!(kept_prefix("# entry\n"), "");
        assert_eq!(kept_prefix("\n\n"), "");
    }
}
