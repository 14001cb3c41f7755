//! Policies and templates as a user writes them, through `meshfleet schedule` and `meshfleet
//! render`: a document nested too deeply is refused at once.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Karmada's three member clusters of `examples/karmada`.
const CLUSTERS: &str = include_str!("../../examples/karmada/clusters.yaml");

/// A config directory holding the clusters and `files`.
fn config(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("clusters.yaml"), CLUSTERS).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// Runs the binary: exit status, stdout, stderr.
fn meshfleet(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_meshfleet"))
        .args(args)
        .output()
        .expect("running meshfleet");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `meshfleet schedule -o json`: exit status, the bindings, stderr.
fn schedule(dir: &Path) -> (Option<i32>, Vec<serde_json::Value>, String) {
    let (code, stdout, stderr) =
        meshfleet(&["schedule", "--config", dir.to_str().unwrap(), "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_default();
    let items = list["items"].as_array().cloned().unwrap_or_default();
    (code, items, stderr)
}

#[test]
fn a_deeply_nested_document_is_refused_at_once() {
    let depth = 100_000;
    let deep = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: deep}}\ndata: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let dir = config(&[("deep.yaml", &deep)]);
    let started = Instant::now();
    let (code, _, stderr) = schedule(dir.path());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("deep.yaml#0: nested deeper than 128 levels at line 4; not parsed"),
        "{stderr}"
    );
}
