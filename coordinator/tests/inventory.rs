//! The asset inventory as a CMDB exports it (`data/inventory-sample.csv`):
//! unknown assets, versions the scan contradicts, and located mistakes.

use std::net::IpAddr;

use vantage_coordinator::review::inventory::{Inventory, InventoryProblem};
use vantage_shared::ServiceFacts;

const SAMPLE: &str = include_str!("data/inventory-sample.csv");

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sample() -> Inventory {
    Inventory::parse(SAMPLE).unwrap()
}

#[test]
fn the_sample_parses_with_its_extra_columns() {
    let i = sample();
    assert_eq!(i.records().len(), 8);
    let maria = i.for_host(addr("198.18.4.7")).next().unwrap();
    assert_eq!((maria.line, maria.software.as_str()), (7, "MariaDB"));
    assert_eq!(
        maria.extra,
        [("owner".to_string(), "dba".to_string()), ("location".to_string(), "dc-east, rack 4".to_string())]
    );
}

#[test]
fn hosts_the_inventory_does_not_know_are_unknown_assets() {
    let i = sample();
    let seen = ["198.18.0.1", "198.18.1.5", "198.18.9.9", "127.0.0.1", "198.18.9.9", "198.18.1.7"].map(addr);
    assert_eq!(i.unknown(seen), [addr("198.18.1.7"), addr("198.18.9.9")]);
}

#[test]
fn versions_are_compared_after_normalisation() {
    let i = sample();
    let found = |host: &str, facts: ServiceFacts| -> Vec<String> {
        i.discrepancies(addr(host), &facts).iter().map(ToString::to_string).collect()
    };
    let maria = ServiceFacts::named("mysql").product("MariaDB").version("10.11.6-MariaDB-0+deb12u1");
    assert!(found("198.18.4.7", maria).is_empty());
    let nmap_maria = ServiceFacts::named("mysql").product("MySQL").version("5.5.5-10.11.6-MariaDB-0+deb12u1");
    assert!(found("198.18.4.7", nmap_maria).is_empty());
    let upgraded = ServiceFacts::named("mysql").product("MariaDB").version("11.4.3-MariaDB");
    assert_eq!(
        found("198.18.4.7", upgraded),
        ["inventory line 7 says MariaDB 10.11.6; the scan saw MariaDB 11.4.3-MariaDB"]
    );
    let pg = ServiceFacts::named("postgresql").product("PostgreSQL DB").version("16.4");
    assert!(found("198.18.4.8", pg).is_empty());
    let ssh = ServiceFacts::named("ssh").product("OpenSSH").version("9.6p1 Ubuntu-3ubuntu13");
    assert_eq!(
        found("198.18.0.1", ssh),
        ["inventory line 2 says OpenSSH 9.2p1; the scan saw OpenSSH 9.6p1 Ubuntu-3ubuntu13"]
    );
}

#[test]
fn mistakes_name_file_line_and_column() {
    let text = SAMPLE.replacen("198.18.4.8,PostgreSQL,16.4", "198.18.4.0/24,PostgreSQL,16.4", 1);
    let e = Inventory::parse(&text).unwrap_err().in_file("inventory-sample.csv");
    assert_eq!((e.line, e.column.clone()), (Some(9), Some((1, "host".to_string()))));
    assert!(matches!(e.problem, InventoryProblem::NotSingle(_)), "{e:?}");
    assert!(e.to_string().starts_with("inventory-sample.csv:9: column 1 (host): "), "{e}");

    let text = SAMPLE.replacen("Redis,7.0.15", "Redis,seven", 1);
    let e = Inventory::parse(&text).unwrap_err();
    assert_eq!((e.line, e.column.clone()), (Some(10), Some((3, "version".to_string()))));

    let text = SAMPLE.replacen("host,software,version", "address,software,version", 1);
    let e = Inventory::parse(&text).unwrap_err();
    assert!(matches!(e.problem, InventoryProblem::MissingColumn("host")) && e.line == Some(1), "{e:?}");
}
