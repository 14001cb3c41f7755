//! `meshfleet ca` as an operator uses it: a root, one plug-in CA per cluster for Istio's
//! `cacerts`, checked by `openssl verify`, an Istio-style root adopted, damage explained.

use std::path::Path;
use std::process::Command;

fn meshfleet(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(meshfleet_testkit::meshfleet_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running meshfleet");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed (tests/setup.sh)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn a_root_and_two_clusters_plug_in_cas_verify_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, text) = meshfleet(
        d,
        &[
            "ca",
            "init",
            "--trust-domain",
            "fleet.example",
            "--out",
            "root",
        ],
    );
    assert!(ok, "{text}");
    for cluster in ["east-1", "west-1"] {
        let (ok, text) = meshfleet(
            d,
            &[
                "ca",
                "issue",
                "--ca-dir",
                "root",
                "--cluster",
                cluster,
                "--out",
                cluster,
            ],
        );
        assert!(ok, "{text}");
        let (ok, text) = meshfleet(d, &["ca", "verify", cluster]);
        assert!(ok && text.starts_with("ok: "), "{text}");
        let (ok, text) = openssl(
            d,
            &[
                "verify",
                "-CAfile",
                "root/root-cert.pem",
                &format!("{cluster}/ca-cert.pem"),
            ],
        );
        assert!(ok, "{text}");
        let secret = std::fs::read_to_string(d.join(cluster).join("cacerts.yaml")).unwrap();
        for key in [
            "ca-cert.pem:",
            "ca-key.pem:",
            "root-cert.pem:",
            "cert-chain.pem:",
        ] {
            assert!(secret.contains(key), "{secret}");
        }
    }
    // Each cluster's intermediate chains to the same root, not to the other cluster's.
    let (ok, _) = openssl(
        d,
        &[
            "verify",
            "-CAfile",
            "east-1/ca-cert.pem",
            "west-1/ca-cert.pem",
        ],
    );
    assert!(!ok);

    // The root is never overwritten; damage is explained, with the file.
    let (ok, text) = meshfleet(
        d,
        &[
            "ca",
            "init",
            "--trust-domain",
            "fleet.example",
            "--out",
            "root",
        ],
    );
    assert!(!ok && text.contains("already holds a root key"), "{text}");
    std::fs::copy(d.join("west-1/ca-key.pem"), d.join("east-1/ca-key.pem")).unwrap();
    let (ok, text) = meshfleet(d, &["ca", "verify", "east-1"]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("east-1: ca-key.pem: the key does not match the certificate in ca-cert.pem"),
        "{text}"
    );
}

#[test]
fn a_root_made_as_istios_tools_make_it_is_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, text) = openssl(
        d,
        &["genrsa", "-traditional", "-out", "root-key.pem", "4096"],
    );
    assert!(ok, "{text}");
    let (ok, text) = openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "root-key.pem",
            "-sha256",
            "-days",
            "3650",
            "-subj",
            "/O=Istio/CN=Root CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-out",
            "root-cert.pem",
        ],
    );
    assert!(ok, "{text}");
    let (ok, text) = meshfleet(
        d,
        &[
            "ca",
            "init",
            "--trust-domain",
            "cluster.local",
            "--out",
            "ca",
            "--import-root",
            "root-cert.pem",
            "root-key.pem",
        ],
    );
    assert!(ok, "{text}");
    let (ok, text) = meshfleet(
        d,
        &[
            "ca",
            "issue",
            "--ca-dir",
            "ca",
            "--cluster",
            "cluster1",
            "--out",
            "cluster1",
        ],
    );
    assert!(ok, "{text}");
    let (ok, text) = openssl(
        d,
        &["verify", "-CAfile", "root-cert.pem", "cluster1/ca-cert.pem"],
    );
    assert!(ok, "{text}");
    let (ok, text) = openssl(
        d,
        &["x509", "-in", "cluster1/ca-cert.pem", "-noout", "-issuer"],
    );
    assert!(ok && text.contains("O = Istio, CN = Root CA"), "{text}");
}

/// A workload certificate signed by a cluster's intermediate, made with openssl as a workload's
/// CSR would be signed: `<cluster>/leaf.pem`.
fn openssl_leaf(d: &Path, cluster: &str) {
    let c = |f: &str| format!("{cluster}/{f}");
    for args in [
        vec![
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &c("leaf-key.pem"),
        ],
        vec![
            "req",
            "-new",
            "-key",
            &c("leaf-key.pem"),
            "-subj",
            "/O=shop",
            "-out",
            &c("leaf.csr"),
        ],
    ] {
        let (ok, text) = openssl(d, &args);
        assert!(ok, "{text}");
    }
    let (ok, text) = openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            &c("leaf.csr"),
            "-CA",
            &c("ca-cert.pem"),
            "-CAkey",
            &c("ca-key.pem"),
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            &c("leaf.pem"),
        ],
    );
    assert!(ok, "{text}");
}

#[test]
fn a_root_rotation_keeps_old_and_new_trusted_until_it_is_finished() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| {
        let (ok, text) = meshfleet(d, args);
        assert!(ok, "{args:?}: {text}");
        text
    };
    run(&[
        "ca",
        "init",
        "--trust-domain",
        "cluster.local",
        "--out",
        "ca",
    ]);
    run(&[
        "ca",
        "issue",
        "--ca-dir",
        "ca",
        "--cluster",
        "east",
        "--out",
        "east",
    ]);
    openssl_leaf(d, "east");

    // A new root signs west; west trusts the old root too, so east's workloads still pass.
    let text = run(&["ca", "rotate", "--ca-dir", "ca"]);
    assert!(text.contains("the previous one stays trusted"), "{text}");
    run(&[
        "ca",
        "issue",
        "--ca-dir",
        "ca",
        "--cluster",
        "west",
        "--out",
        "west",
    ]);
    let text = run(&["ca", "verify", "west"]);
    assert!(text.contains("2 roots trusted"), "{text}");
    let text = run(&["ca", "verify", "ca"]);
    assert!(text.contains("1 previous root(s) still trusted"), "{text}");
    openssl_leaf(d, "west");
    let verify = |roots: &str, chain: &str, leaf: &str| {
        openssl(d, &["verify", "-CAfile", roots, "-untrusted", chain, leaf]).0
    };
    assert!(verify(
        "west/root-cert.pem",
        "east/cert-chain.pem",
        "east/leaf.pem"
    ));
    assert!(verify(
        "west/root-cert.pem",
        "west/cert-chain.pem",
        "west/leaf.pem"
    ));
    // east, not issued again yet, does not know the new root.
    assert!(!verify(
        "east/root-cert.pem",
        "west/cert-chain.pem",
        "west/leaf.pem"
    ));
    run(&[
        "ca",
        "issue",
        "--ca-dir",
        "ca",
        "--cluster",
        "east",
        "--out",
        "east2",
    ]);
    assert!(verify(
        "east2/root-cert.pem",
        "west/cert-chain.pem",
        "west/leaf.pem"
    ));
    assert!(verify(
        "east2/root-cert.pem",
        "east/cert-chain.pem",
        "east/leaf.pem"
    ));

    // Finished: only the new root is trusted.
    run(&["ca", "rotate", "--ca-dir", "ca", "--finish"]);
    run(&[
        "ca",
        "issue",
        "--ca-dir",
        "ca",
        "--cluster",
        "west",
        "--out",
        "west2",
    ]);
    assert!(!verify(
        "west2/root-cert.pem",
        "east/cert-chain.pem",
        "east/leaf.pem"
    ));
    assert!(verify(
        "west2/root-cert.pem",
        "west/cert-chain.pem",
        "west/leaf.pem"
    ));
    let (ok, text) = meshfleet(d, &["ca", "rotate", "--ca-dir", "ca", "--finish"]);
    assert!(!ok && text.contains("no rotation to finish"), "{text}");
}
