//! Reachability from several regions, in the lab (needs root): three
//! scanner namespaces with their own source addresses, one `vantage-agent`
//! each (regions r1, r2, r3), a coordinator in the lab's control namespace,
//! and target hosts whose firewall drops one scanner's packets on some open
//! ports. `vantage reachability` must show exactly what the lab's truth says
//! each region can see, and `vantage diff` must confirm each change from
//! every region.
//!
//! Without root, the test skips (and fails when `CI=true`): see `lab::require`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde_json::Value;
use vantage_tests::fleet::{Fleet, FleetSpec};
use vantage_tests::lab::nft::Block;
use vantage_tests::lab::{self, HostKind, Lab, LabSpec, PortRange, Truth};
use vantage_tests::proc::run;

const LIMIT: Duration = Duration::from_secs(180);
/// The coordinator's port on the control address.
const CONTROL_PORT: u16 = 7420;

/// Region of scanner `i`.
fn region(i: usize) -> String {
    format!("r{}", i + 1)
}

/// (address, port) → region → state, and whether it is flagged; port 0 is a
/// host that answers on every port.
type Matrix = BTreeMap<(Ipv4Addr, u16), (BTreeMap<String, String>, bool)>;

/// What `vantage reachability` must say, from the truth alone: every port
/// open from some scanner, open where it is not fenced off and not-open
/// where it is; the tarpit once, answering everywhere.
fn expected(truth: &Truth) -> Matrix {
    let mut out = Matrix::new();
    let tarpit = truth.of_kind(HostKind::Tarpit).next().map(|h| h.addr);
    for (i, scanner) in truth.scanners.iter().enumerate() {
        for addr in truth.expected_open().into_iter().filter(|a| Some(*a.ip()) != tarpit) {
            let state = if truth.expected_open_from(*scanner).contains(&addr) { "open" } else { "not-open" };
            out.entry((*addr.ip(), addr.port())).or_default().0.insert(region(i), state.into());
        }
        if let Some(t) = tarpit {
            out.entry((t, 0)).or_default().0.insert(region(i), "answers-all".into());
        }
    }
    for (states, flagged) in out.values_mut() {
        *flagged = states.values().any(|s| s == "not-open");
    }
    out
}

fn parse(doc: &Value) -> Matrix {
    let ports = doc["ports"].as_array().expect("a ports array");
    ports
        .iter()
        .map(|p| {
            let addr: Ipv4Addr = p["addr"].as_str().and_then(|a| a.parse().ok()).expect("an IPv4 address");
            let port = p["port"].as_u64().and_then(|n| u16::try_from(n).ok()).expect("a port");
            let states = p["states"].as_object().expect("states").iter();
            let states = states.map(|(r, s)| (r.clone(), s.as_str().expect("a state").to_string())).collect();
            ((addr, port), (states, p["inconsistent"].as_bool().expect("a flag")))
        })
        .collect()
}

fn stdout_json(what: &str, out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{what}: stdout is no JSON document: {e}"))
}

#[test]
fn reachability_shows_what_each_region_can_reach() {
    if !lab::require() {
        return;
    }
    let started = Instant::now();
    let spec = LabSpec {
        hosts: 4,
        open: 6,
        filtered: 2,
        fenced: 3,
        scanners: 3,
        control: true,
        tarpit: true,
        ports: PortRange::new(1, 1000),
        seed: 11,
        ..LabSpec::new(&format!("regions-{}", std::process::id()))
    };
    let lab = Lab::up(&spec).expect("lab up");
    let truth = lab.truth().clone();
    assert!(truth.fences().count() > 0, "the lab must fence something for the test to mean anything");
    let fleet = Fleet::start(&FleetSpec::in_lab(
        &spec,
        &truth.network,
        CONTROL_PORT,
        spec.scanners,
        |i| region(i as usize),
        Vec::new(),
    ));

    let regions: Vec<String> = (0..spec.scanners as usize).map(region).collect();
    let scan = run(
        fleet.cli().args(["scan", "--targets", &truth.targets(), "--ports", &truth.ports.to_string()]).args([
            "--regions",
            &regions.join(","),
            "--no-detect",
            "--timeout",
            "300ms",
            "--format",
            "json",
        ]),
        LIMIT,
    );
    let scan = stdout_json("scan", &scan);
    assert_eq!(scan["scan"]["probes_done"].as_u64(), Some(truth.probes() * 3), "every probe from every region");
    let id = scan["scan"]["id"].as_u64().expect("a scan id").to_string();

    let out = run(fleet.cli().args(["reachability", &id, "--format", "json"]), LIMIT);
    let doc = stdout_json("reachability", &out);
    let got = parse(&doc);
    let want = expected(&truth);
    let differ: Vec<_> = want.keys().chain(got.keys()).filter(|k| want.get(k) != got.get(k)).collect();
    assert!(differ.is_empty(), "matrix differs from the truth at {differ:?}:\nwant {want:?}\ngot {got:?}");
    let flagged = want.values().filter(|(_, f)| *f).count();
    assert_eq!(doc["summary"]["inconsistent"].as_u64(), Some(flagged as u64));
    assert_eq!(doc["summary"]["incomplete"].as_u64(), Some(0));
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains(&format!("{flagged} inconsistent")), "summary: {summary}");

    // --inconsistent lists exactly the flagged ports: the fenced ones.
    let out = run(fleet.cli().args(["reachability", &id, "--inconsistent", "--format", "json"]), LIMIT);
    let only = parse(&stdout_json("reachability --inconsistent", &out));
    let fenced: BTreeSet<(Ipv4Addr, u16)> = truth.fences().map(|(_, dst, port)| (dst, port)).collect();
    assert_eq!(only.keys().copied().collect::<BTreeSet<_>>(), fenced);
    assert!(only.values().all(|(_, flagged)| *flagged));
    fleet.stop();
    lab.down().expect("lab down");
    eprintln!("reachability from 3 regions checked in {:?}", started.elapsed());
}

/// `vantage diff` confirms each candidate change from every region with an
/// agent: the two regions that scanned both periods must each see again what
/// they saw (a port fenced off from one of them included), and a third
/// region, which scanned neither period, is a second opinion. The firewall of
/// the target namespace changes between the scans, as a real one would.
#[test]
fn diff_changes_are_confirmed_from_a_second_region() {
    if !lab::require() {
        return;
    }
    let started = Instant::now();
    let spec = LabSpec {
        hosts: 1,
        open: 6,
        filtered: 0,
        fenced: 0,
        scanners: 3,
        control: true,
        ports: PortRange::new(1, 300),
        seed: 5,
        ..LabSpec::new(&format!("confirm-{}", std::process::id()))
    };
    let lab = Lab::up(&spec).expect("lab up");
    let truth = lab.truth().clone();
    let host = &truth.hosts[0];
    let open: Vec<u16> = host.open.iter().copied().collect();
    let [new_everywhere, new_fenced_from_r3, closed, flapping, fenced_from_r2, ..] = open[..] else {
        panic!("the lab host needs 5 open ports, has {open:?}");
    };
    let scanner = |i: usize| Some(truth.scanners[i]);
    let block = |port, from, on| {
        lab.set_block(Block { addr: host.addr, port, from }, on).expect("nft");
    };
    let fleet = Fleet::start(&FleetSpec::in_lab(
        &spec,
        &truth.network,
        CONTROL_PORT,
        spec.scanners,
        |i| region(i as usize),
        Vec::new(),
    ));
    let ports = truth.ports.to_string();
    let scan = |period: &str| {
        let out = run(
            fleet
                .cli()
                .args(["scan", "--targets", &host.addr.to_string(), "--ports", &ports, "--period", period])
                .args(["--regions", "r1,r2", "--no-detect", "--timeout", "300ms", "--format", "json"]),
            LIMIT,
        );
        stdout_json("scan", &out);
    };

    // October: two ports not there yet.
    block(new_everywhere, None, true);
    block(new_fenced_from_r3, None, true);
    scan("2026-10");
    // November: they open (one fenced off from r3, which scans neither
    // month), one port closes for good, one closes only while November is
    // scanned, and r2 loses sight of another.
    block(new_everywhere, None, false);
    block(new_fenced_from_r3, None, false);
    block(new_fenced_from_r3, scanner(2), true);
    block(closed, None, true);
    block(flapping, None, true);
    block(fenced_from_r2, scanner(1), true);
    scan("2026-11");
    block(flapping, None, false);

    let out = run(fleet.cli().args(["diff", "2026-10", "2026-11", "--format", "json"]), LIMIT);
    let doc = stdout_json("diff", &out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("re-probing from 3 regions: r1, r2, r3"), "stderr: {stderr}");
    let got: BTreeMap<(String, u16), (String, bool)> = doc["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            let key = (c["kind"].as_str().expect("kind").to_string(), c["port"].as_u64().expect("port") as u16);
            (key, (c["status"].as_str().expect("status").to_string(), c["confirmed"].as_bool().expect("flag")))
        })
        .collect();
    let want: BTreeMap<(String, u16), (String, bool)> = [
        ("new", new_everywhere, "confirmed"),
        ("new", new_fenced_from_r3, "regions-disagree"),
        ("closed", closed, "confirmed"),
        ("closed", flapping, "contradicted"),
        ("reachability-changed", fenced_from_r2, "confirmed"),
    ]
    .into_iter()
    .map(|(kind, port, status)| ((kind.to_string(), port), (status.to_string(), status == "confirmed")))
    .collect();
    assert_eq!(got, want, "diff: {doc:#}");
    assert!(stderr.contains("3 confirmed changes"), "stderr: {stderr}");
    fleet.stop();
    lab.down().expect("lab down");
    eprintln!("second-region confirmation checked in {:?}", started.elapsed());
}
