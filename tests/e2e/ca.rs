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

/// `meshfleet` or `openssl` (`program`) with the arguments of `command`, split at whitespace;
/// fails the test if it fails, and returns what it printed.
fn must(dir: &Path, program: &str, command: &str) -> String {
    let args: Vec<&str> = command.split_whitespace().collect();
    let (ok, text) = match program {
        "meshfleet" => meshfleet(dir, &args),
        _ => openssl(dir, &args),
    };
    assert!(ok, "{program} {command}: {text}");
    text
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
    must(
        d,
        "meshfleet",
        "ca init --trust-domain fleet.example --out root",
    );
    for cluster in ["east-1", "west-1"] {
        must(
            d,
            "meshfleet",
            &format!("ca issue --ca-dir root --cluster {cluster} --out {cluster}"),
        );
        let text = must(d, "meshfleet", &format!("ca verify {cluster}"));
        assert!(text.starts_with("ok: "), "{text}");
        must(
            d,
            "openssl",
            &format!("verify -CAfile root/root-cert.pem {cluster}/ca-cert.pem"),
        );
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
    let init = "ca init --trust-domain fleet.example --out root";
    let (ok, text) = meshfleet(d, &init.split_whitespace().collect::<Vec<_>>());
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
    // Istio's tools/certs: RSA 4096, O=Istio, CN=Root CA; the key in PKCS#1.
    must(d, "openssl", "genrsa -traditional -out root-key.pem 4096");
    let mut req: Vec<&str> = "req -x509 -new -key root-key.pem -sha256 -days 3650 -addext basicConstraints=critical,CA:TRUE -out root-cert.pem -subj".split_whitespace().collect();
    req.push("/O=Istio/CN=Root CA");
    let (ok, text) = openssl(d, &req);
    assert!(ok, "{text}");
    must(
        d,
        "meshfleet",
        "ca init --trust-domain cluster.local --out ca --import-root root-cert.pem root-key.pem",
    );
    must(
        d,
        "meshfleet",
        "ca issue --ca-dir ca --cluster cluster1 --out cluster1",
    );
    must(
        d,
        "openssl",
        "verify -CAfile root-cert.pem cluster1/ca-cert.pem",
    );
    let text = must(d, "openssl", "x509 -in cluster1/ca-cert.pem -noout -issuer");
    assert!(text.contains("O = Istio, CN = Root CA"), "{text}");
}

/// A workload certificate signed by a cluster's intermediate, made with openssl as a workload's
/// CSR would be signed: `<cluster>/leaf.pem`.
fn openssl_leaf(d: &Path, cluster: &str) {
    must(
        d,
        "openssl",
        &format!("ecparam -name prime256v1 -genkey -noout -out {cluster}/leaf-key.pem"),
    );
    must(
        d,
        "openssl",
        &format!("req -new -key {cluster}/leaf-key.pem -subj /O=shop -out {cluster}/leaf.csr"),
    );
    must(
        d,
        "openssl",
        &format!(
            "x509 -req -in {cluster}/leaf.csr -CA {cluster}/ca-cert.pem -CAkey {cluster}/ca-key.pem -CAcreateserial -days 1 -out {cluster}/leaf.pem"
        ),
    );
}

#[test]
fn a_root_rotation_keeps_old_and_new_trusted_until_it_is_finished() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |command: &str| must(d, "meshfleet", command);
    run("ca init --trust-domain cluster.local --out ca");
    run("ca issue --ca-dir ca --cluster east --out east");
    openssl_leaf(d, "east");

    // A new root signs west; west trusts the old root too, so east's workloads still pass.
    let text = run("ca rotate --ca-dir ca");
    assert!(text.contains("the previous one stays trusted"), "{text}");
    run("ca issue --ca-dir ca --cluster west --out west");
    let text = run("ca verify west");
    assert!(text.contains("2 roots trusted"), "{text}");
    let text = run("ca verify ca");
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
    run("ca issue --ca-dir ca --cluster east --out east2");
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
    run("ca rotate --ca-dir ca --finish");
    run("ca issue --ca-dir ca --cluster west --out west2");
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

/// The files of a `cacerts` Secret manifest, decoded into `out`.
fn unpack_secret(secret: &Path, out: &Path) {
    let text = std::fs::read_to_string(secret).unwrap();
    let value: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    std::fs::create_dir_all(out).unwrap();
    let data = value["data"].as_mapping().expect("data");
    for (name, encoded) in data {
        let bytes = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            encoded.as_str().unwrap(),
        )
        .unwrap();
        std::fs::write(out.join(name.as_str().unwrap()), bytes).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_gives_every_cluster_its_cacerts_and_keeps_it_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = d.join("config");
    std::fs::create_dir_all(&config).unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/karmada");
    std::fs::copy(examples.join("clusters.yaml"), config.join("clusters.yaml")).unwrap();
    let (ok, text) = meshfleet(
        d,
        &[
            "ca",
            "init",
            "--trust-domain",
            "cluster.local",
            "--out",
            "ca",
        ],
    );
    assert!(ok, "{text}");
    let (state, ca) = (d.join("state"), d.join("ca"));
    let flags = [
        "--state-dir",
        state.to_str().unwrap(),
        "--ca-dir",
        ca.to_str().unwrap(),
    ];
    let secret = |cluster: &str| {
        state.join(format!(
            "clusters/{cluster}/istio-system/secret-cacerts.yaml"
        ))
    };
    let wait_for_secrets = || async {
        meshfleet_demo::envoy::eventually(std::time::Duration::from_secs(20), || async {
            for cluster in ["member1", "member2", "member3"] {
                anyhow::ensure!(secret(cluster).exists(), "no Secret for {cluster} yet");
            }
            Ok(())
        })
        .await
        .unwrap();
    };
    let (mut controller, _, _) = meshfleet_testkit::serve_with(&config, &flags).await;
    wait_for_secrets().await;
    for cluster in ["member1", "member2", "member3"] {
        let out = d.join("unpacked").join(cluster);
        unpack_secret(&secret(cluster), &out);
        let (ok, text) = meshfleet(d, &["ca", "verify", out.to_str().unwrap()]);
        assert!(ok && text.contains(&format!("L={cluster}")), "{text}");
        let (ok, text) = openssl(
            d,
            &[
                "verify",
                "-CAfile",
                "ca/root-cert.pem",
                out.join("ca-cert.pem").to_str().unwrap(),
            ],
        );
        assert!(ok, "{text}");
    }
    let first = std::fs::read_to_string(secret("member1")).unwrap();
    controller.kill().await.unwrap();

    // A restart reuses each cluster's CA.
    let (mut controller, _, _) = meshfleet_testkit::serve_with(&config, &flags).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(std::fs::read_to_string(secret("member1")).unwrap(), first);
    controller.kill().await.unwrap();

    // After a root rotation, each cluster gets a CA of the new root trusting both.
    let (ok, text) = meshfleet(d, &["ca", "rotate", "--ca-dir", "ca"]);
    assert!(ok, "{text}");
    let (_controller, _, admin) = meshfleet_testkit::serve_with(&config, &flags).await;
    meshfleet_demo::envoy::eventually(std::time::Duration::from_secs(20), || async {
        let now = std::fs::read_to_string(secret("member1"))?;
        anyhow::ensure!(now != first, "not issued again yet");
        Ok(())
    })
    .await
    .unwrap();
    let out = d.join("unpacked/rotated");
    unpack_secret(&secret("member1"), &out);
    let (ok, text) = meshfleet(d, &["ca", "verify", out.to_str().unwrap()]);
    assert!(ok && text.contains("2 roots trusted"), "{text}");
    // Keys never reach the admin port, and the Secret's file is its owner's alone.
    let key = std::fs::read_to_string(out.join("ca-key.pem")).unwrap();
    let key_line = key.lines().nth(1).unwrap().to_owned();
    let secret_text = std::fs::read_to_string(secret("member1")).unwrap();
    let encoded_key = secret_text
        .lines()
        .find_map(|l| l.trim().strip_prefix("ca-key.pem: "))
        .unwrap()
        .to_owned();
    for path in [
        "/debug/bindings",
        "/debug/problems",
        "/debug/catalog",
        "/metrics",
    ] {
        let body = meshfleet_testkit::admin(admin, path).await.unwrap();
        assert!(
            !body.contains(&key_line) && !body.contains(&encoded_key[..40]),
            "{path}"
        );
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(secret("member1")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o077, 0, "{mode:o}");
}
