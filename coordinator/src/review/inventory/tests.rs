use vantage_shared::ServiceFacts;

use super::*;

const CSV: &str = "host,software,version,owner
198.18.0.10,OpenSSH,9.2p1,ops
198.18.0.11,MariaDB,10.11.6,dba

198.18.0.11,OpenSSH,8.9p1,ops
198.18.0.12,nginx,,web
::1,Apache,2.4.62,web
";

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn inventory() -> Inventory {
    Inventory::parse(CSV).unwrap()
}

fn err(text: &str) -> InventoryError {
    Inventory::parse(text).unwrap_err()
}

fn facts(product: &str, version: &str) -> ServiceFacts {
    ServiceFacts::named("x").product(product).version(version)
}

fn seen(i: &Inventory, host: &str, product: &str, version: &str) -> Vec<(u64, String)> {
    i.discrepancies(addr(host), &facts(product, version)).iter().map(|d| (d.record.line, d.seen.clone())).collect()
}

#[test]
fn records_keep_their_lines_and_extra_columns() {
    let i = inventory();
    let r = i.records();
    assert_eq!(r.len(), 5);
    assert_eq!((r[0].line, r[0].software.as_str()), (2, "OpenSSH"));
    // The blank line counts: the second OpenSSH is on line 5.
    assert_eq!(r[2].line, 5);
    assert_eq!(r[0].extra, [("owner".to_string(), "ops".to_string())]);
    assert!(r[3].version.is_none());
    assert_eq!(i.for_host(addr("198.18.0.11")).count(), 2);
}

#[test]
fn columns_may_come_in_any_order() {
    let i = Inventory::parse("Version,Host,Software,Owner\n1.22.1,198.18.0.7,nginx,web\n").unwrap();
    assert_eq!(i.records()[0].extra, [("Owner".to_string(), "web".to_string())]);
    assert_eq!(i.records()[0].software, "nginx");
    assert_eq!(i.records()[0].version.as_ref().map(Version::as_str), Some("1.22.1"));
}

#[test]
fn known_and_unknown_hosts() {
    let i = inventory();
    assert!(i.knows(addr("198.18.0.10")));
    assert!(i.knows(addr("::1")));
    assert!(!i.knows(addr("198.18.0.13")));
    let seen = ["198.18.0.99", "198.18.0.10", "127.0.0.2", "198.18.0.99"].map(addr);
    assert_eq!(i.unknown(seen), [addr("127.0.0.2"), addr("198.18.0.99")]);
}

#[test]
fn a_missing_header_column_is_named() {
    let e = err("198.18.0.10,OpenSSH,9.2p1\n");
    assert!(matches!(e.problem, InventoryProblem::MissingColumn("host")) && e.line == Some(1), "{e:?}");
    let e = err("host,software\n198.18.0.10,OpenSSH\n");
    assert!(matches!(e.problem, InventoryProblem::MissingColumn("version")), "{e:?}");
    let e = err("host,software,version,Host\n");
    assert!(matches!(&e.problem, InventoryProblem::DuplicateColumn(c) if c == "Host"), "{e:?}");
}

#[test]
fn bad_fields_name_line_and_column() {
    let e =
        err("host,software,version\n198.18.0.10,OpenSSH,9.2p1\n198.18.0.0/24,nginx,1.22\n").in_file("inventory.csv");
    assert_eq!((e.line, e.column.clone()), (Some(3), Some((1, "host".to_string()))));
    assert!(matches!(e.problem, InventoryProblem::NotSingle(_)), "{e:?}");
    assert!(e.to_string().starts_with("inventory.csv:3: column 1 (host): `198.18.0.0/24`"), "{e}");
    let e = err("host,software,version\nweb01,nginx,1.22\n");
    assert!(matches!(e.problem, InventoryProblem::Host(_)) && e.line == Some(2), "{e:?}");
    let e = err("software,host,version\n,198.18.0.1,1.0\n");
    assert_eq!(e.column, Some((1, "software".to_string())));
    assert!(matches!(e.problem, InventoryProblem::Empty), "{e:?}");
    let e = err("host,software,version\n198.18.0.1,nginx,latest\n");
    assert_eq!((e.line, e.column.clone()), (Some(2), Some((3, "version".to_string()))));
    assert!(matches!(e.problem, InventoryProblem::Version(_)), "{e:?}");
}

#[test]
fn lines_count_blank_lines_and_ignore_a_byte_order_mark() {
    let e = err("\u{feff}host,software,version\n\n198.18.0.1,nginx,1.22\n\n\n198.18.0.2,nginx,latest\n");
    assert_eq!((e.line, e.column.clone()), (Some(6), Some((3, "version".to_string()))), "{e:?}");
}

#[test]
fn a_short_row_is_a_csv_error_with_its_line() {
    let e = err("host,software,version\n198.18.0.1,nginx,1.22\n\n198.18.0.2,nginx\n");
    assert!(matches!(e.problem, InventoryProblem::Csv(_)) && e.line == Some(4), "{e:?}");
}

#[test]
fn vendor_suffixed_versions_agree_with_the_inventory() {
    let i = inventory();
    assert!(seen(&i, "198.18.0.11", "MariaDB", "10.11.6-MariaDB-0+deb12u1").is_empty());
    // nmap's way of reporting the same server.
    assert!(seen(&i, "198.18.0.11", "MySQL", "5.5.5-10.11.6-MariaDB-0+deb12u1").is_empty());
    assert_eq!(seen(&i, "198.18.0.11", "MariaDB", "10.11.9-MariaDB"), [(3, "10.11.9-MariaDB".to_string())]);
    assert_eq!(seen(&i, "198.18.0.11", "MySQL", "5.5.5-10.6.18-MariaDB"), [(3, "10.6.18-MariaDB".to_string())]);
}

#[test]
fn another_version_of_the_same_software_is_a_discrepancy() {
    let i = inventory();
    assert!(seen(&i, "198.18.0.10", "openssh", "9.2p1").is_empty());
    assert_eq!(seen(&i, "198.18.0.10", "OpenSSH", "9.6p1"), [(2, "9.6p1".to_string())]);
    let d = &i.discrepancies(addr("198.18.0.10"), &facts("OpenSSH", "9.6p1"))[0];
    assert_eq!(d.to_string(), "inventory line 2 says OpenSSH 9.2p1; the scan saw OpenSSH 9.6p1");
    // Only the host's own lines count.
    assert_eq!(seen(&i, "198.18.0.11", "OpenSSH", "9.2p1"), [(5, "9.2p1".to_string())]);
    assert_eq!(seen(&i, "::1", "Apache httpd", "2.4.58"), [(7, "2.4.58".to_string())]);
}

#[test]
fn nothing_is_compared_without_both_versions_or_the_same_software() {
    let i = inventory();
    assert!(seen(&i, "198.18.0.12", "nginx", "1.18.0").is_empty(), "the inventory has no version");
    assert!(i.discrepancies(addr("198.18.0.10"), &ServiceFacts::named("ssh").product("OpenSSH")).is_empty());
    assert!(seen(&i, "198.18.0.10", "OpenSSH", "unknown").is_empty());
    assert!(seen(&i, "198.18.0.10", "Dropbear sshd", "2022.83").is_empty());
    assert!(seen(&i, "198.18.0.99", "OpenSSH", "9.6p1").is_empty());
}

#[test]
fn software_names_match_by_words_and_aliases() {
    assert!(same_software("OpenSSH", "openssh"));
    assert!(same_software("nginx", "nginx/Debian"));
    assert!(same_software("Apache", "Apache httpd"));
    assert!(same_software("httpd", "Apache httpd"));
    assert!(same_software("postgres", "PostgreSQL"));
    assert!(same_software("MSSQL", "Microsoft SQL Server"));
    assert!(same_software("IIS", "Microsoft IIS httpd"));
    assert!(!same_software("httpd", "lighttpd"));
    assert!(!same_software("MySQL", "MariaDB"));
    assert!(!same_software("", "nginx"));
}
