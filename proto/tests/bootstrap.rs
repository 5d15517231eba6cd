//! The checked-in generated code must match what the `.proto` produces today.

use std::path::{Path, PathBuf};

fn generate(out_dir: &Path) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("proto");
    let fds = protox::compile(["vantage/v1/vantage.proto"], [&root]).expect("vantage.proto compiles");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .emit_rerun_if_changed(false)
        .out_dir(out_dir)
        .compile_fds(fds)
        .expect("code generation succeeds");
}

#[test]
fn generated_code_is_current() {
    let tmp = tempfile::tempdir().unwrap();
    generate(tmp.path());
    let fresh = std::fs::read_to_string(tmp.path().join("vantage.v1.rs")).unwrap();
    let checked_in = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/gen/vantage.v1.rs");
    if std::env::var_os("VANTAGE_BLESS").is_some() {
        std::fs::write(&checked_in, &fresh).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&checked_in).unwrap_or_default();
    assert!(
        current == fresh,
        "proto/src/gen/vantage.v1.rs is stale: run `VANTAGE_BLESS=1 cargo test -p vantage-proto --test bootstrap` and commit the result"
    );
}
