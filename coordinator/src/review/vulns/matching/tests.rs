use super::*;

/// A criterion from its CPE and bounds `[start_incl, start_excl, end_incl, end_excl]`.
fn criterion(cpe: &str, bounds: [Option<&str>; 4]) -> MatchCriterion {
    let c: Cpe = cpe.parse().unwrap_or_else(|e| panic!("{e}"));
    let [si, se, ei, ee] = bounds.map(|b| b.map(str::to_string));
    MatchCriterion {
        part: c.part,
        vendor: c.vendor,
        product: c.product,
        version: c.version,
        update: c.update,
        start_including: si,
        start_excluding: se,
        end_including: ei,
        end_excluding: ee,
        platforms: Vec::new(),
    }
}

fn check(c: &MatchCriterion, detected: &str) -> Option<Evidence> {
    let cpe: Cpe = detected.parse().unwrap_or_else(|e| panic!("{e}"));
    Matcher::new(c).check(&Detection::new(&cpe))
}

fn app(vendor: &str, product: &str, version: &str) -> String {
    vantage_detect::cpe::application(vendor, product, version)
}

fn mariadb(version: &str) -> String {
    app("mariadb", "mariadb", version)
}

const MARIADB_ANY: &str = "cpe:2.3:a:mariadb:mariadb:*:*:*:*:*:*:*:*";
const SHOWN: Option<Evidence> = Some(Evidence::Shown);

#[test]
fn start_including_holds_its_bound() {
    let c = criterion(MARIADB_ANY, [Some("10.6.0"), None, None, None]);
    assert_eq!(check(&c, &mariadb("10.6.0")), SHOWN);
    assert_eq!(check(&c, &mariadb("10.5.99")), None);
}

#[test]
fn start_excluding_leaves_out_its_bound() {
    let c = criterion(MARIADB_ANY, [None, Some("10.6.0"), None, None]);
    assert_eq!(check(&c, &mariadb("10.6.0")), None);
    assert_eq!(check(&c, &mariadb("10.6.1")), SHOWN);
}

#[test]
fn end_including_holds_its_bound() {
    let c = criterion(MARIADB_ANY, [None, None, Some("10.11.6"), None]);
    assert_eq!(check(&c, &mariadb("10.11.6-MariaDB-0+deb12u1")), SHOWN);
    assert_eq!(check(&c, &mariadb("10.11.7")), None);
}

#[test]
fn end_excluding_leaves_out_its_bound() {
    let c = criterion(MARIADB_ANY, [Some("10.11.0"), None, None, Some("10.11.6")]);
    assert_eq!(check(&c, &mariadb("10.11.5")), SHOWN);
    assert_eq!(check(&c, &mariadb("10.11.6")), None);
    assert_eq!(check(&c, &mariadb("10.6.16")), None, "below the start");
    assert_eq!(c.describe(), ">= 10.11.0, < 10.11.6");
}

#[test]
fn no_bounds_means_every_version() {
    let c = criterion(MARIADB_ANY, [None; 4]);
    assert_eq!(check(&c, &mariadb("5.5.1")), SHOWN);
    assert_eq!(c.describe(), "all versions");
}

#[test]
fn exact_version_criteria_match_that_version_only() {
    let c = criterion("cpe:2.3:a:redis:redis:7.0.11:*:*:*:*:*:*:*", [None; 4]);
    assert_eq!(check(&c, &app("redis", "redis", "7.0.11")), SHOWN);
    assert_eq!(check(&c, &app("redis", "redis", "7.0.12")), None);
    assert_eq!(check(&c, &app("redis", "redis", "7.0.1")), None);
    assert_eq!(c.describe(), "= 7.0.11");
}

#[test]
fn unorderable_exact_versions_match_the_same_text_only() {
    let c = criterion("cpe:2.3:a:beasts:vsftpd:3.0.0-beta:*:*:*:*:*:*:*", [None; 4]);
    assert_eq!(check(&c, &app("beasts", "vsftpd", "3.0.0-beta")), SHOWN);
    assert_eq!(check(&c, &app("beasts", "vsftpd", "3.0.0")), None, "3.0.0-beta is not 3.0.0");
}

#[test]
fn unorderable_bounds_are_not_guessed() {
    let c = criterion(MARIADB_ANY, [None, None, None, Some("11.0.0-preview.2")]);
    assert_eq!(check(&c, &mariadb("10.11.6")), Some(Evidence::BoundsUnreadable));
}

#[test]
fn pinned_update_meets_the_detectors_folded_version() {
    let c = criterion("cpe:2.3:a:openbsd:openssh:9.1:p1:*:*:*:*:*:*", [None; 4]);
    let ssh = |v: &str| app("openbsd", "openssh", v);
    assert_eq!(check(&c, &ssh("9.1p1")), SHOWN);
    assert_eq!(check(&c, "cpe:2.3:a:openbsd:openssh:9.1:p1:*:*:*:*:*:*"), SHOWN);
    assert_eq!(check(&c, "cpe:2.3:a:openbsd:openssh:9.1:P1:*:*:*:*:*:*"), SHOWN, "updates ignore case");
    assert_eq!(check(&c, "cpe:2.3:a:openbsd:openssh:9.1:p2:*:*:*:*:*:*"), None);
    assert_eq!(check(&c, &ssh("9.1p2")), None);
    assert_eq!(check(&c, &ssh("9.1")), Some(Evidence::UpdateUnknown));
    assert_eq!(check(&c, "cpe:2.3:a:openbsd:openssh:9.1:-:*:*:*:*:*:*"), None, "NA: no update");
    assert_eq!(c.describe(), "= 9.1 (update p1)");
}

#[test]
fn any_update_covers_the_patch_levels_of_a_release() {
    let c = criterion("cpe:2.3:a:openbsd:openssh:9.1:*:*:*:*:*:*:*", [None; 4]);
    assert_eq!(check(&c, &app("openbsd", "openssh", "9.1p1")), SHOWN);
    assert_eq!(check(&c, &app("openbsd", "openssh", "9.2p1")), None);
    let none = criterion("cpe:2.3:a:openbsd:openssh:9.1:-:*:*:*:*:*:*", [None; 4]);
    assert_eq!(check(&none, &app("openbsd", "openssh", "9.1p1")), None, "9.1p1 has an update");
    assert_eq!(check(&none, &app("openbsd", "openssh", "9.1")), SHOWN);
}

#[test]
fn ranges_order_portable_patch_levels_after_their_release() {
    let c = criterion("cpe:2.3:a:openbsd:openssh:*:*:*:*:*:*:*:*", [None, None, None, Some("9.6")]);
    assert_eq!(check(&c, &app("openbsd", "openssh", "9.6p1")), None, "9.6p1 is the fixed release");
    assert_eq!(check(&c, &app("openbsd", "openssh", "9.5p1")), SHOWN);
    // An update in its own field is read into the version for ranges.
    assert_eq!(check(&c, "cpe:2.3:a:openbsd:openssh:9.6:p1:*:*:*:*:*:*"), None);
}

#[test]
fn detections_without_a_version_are_not_matches() {
    let c = criterion("cpe:2.3:a:exim:exim:*:*:*:*:*:*:*:*", [None, None, None, Some("4.97.1")]);
    let unknown = Some(Evidence::VersionUnknown);
    assert_eq!(check(&c, "cpe:2.3:a:exim:exim:*:*:*:*:*:*:*:*"), unknown);
    assert_eq!(check(&c, "cpe:2.3:a:exim:exim:-:*:*:*:*:*:*:*"), unknown);
    assert_eq!(check(&c, &app("exim", "exim", "unknown")), unknown);
    assert_eq!(check(&c, &app("exim", "eximx", "")), None, "another product is no hit at all");
    assert!(!Evidence::VersionUnknown.is_shown());
}

#[test]
fn vendor_any_in_a_criterion_matches_every_vendor_but_not_the_reverse() {
    let any_vendor = criterion("cpe:2.3:a:*:vsftpd:3.0.3:*:*:*:*:*:*:*", [None; 4]);
    assert_eq!(check(&any_vendor, &app("beasts", "vsftpd", "3.0.3")), SHOWN);
    let named = criterion("cpe:2.3:a:beasts:vsftpd:3.0.3:*:*:*:*:*:*:*", [None; 4]);
    assert_eq!(check(&named, "cpe:2.3:a:*:vsftpd:3.0.3:*:*:*:*:*:*:*"), None, "the detection shows no vendor");
    assert_eq!(check(&named, "cpe:2.3:a:BEASTS:VSFTPD:3.0.3:*:*:*:*:*:*:*"), SHOWN, "names ignore case");
    assert_eq!(check(&named, "cpe:2.3:o:beasts:vsftpd:3.0.3:*:*:*:*:*:*:*"), None, "the part must agree");
}

#[test]
fn escaped_characters_compare_unescaped() {
    let c = criterion(r"cpe:2.3:a:acme\.corp:web\:server:2\.4\.1:*:*:*:*:*:*:*", [None; 4]);
    assert_eq!(check(&c, r"cpe:2.3:a:acme.corp:web\:server:2.4.1:*:*:*:*:*:*:*"), SHOWN);
    assert_eq!(check(&c, r"cpe:2.3:a:acme.corp:web:server:2.4.1:*:*:*:*:*:*"), None);
}
