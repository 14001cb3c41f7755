use std::path::Path;
use std::process::Command;

use super::*;

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

/// `openssl` with the arguments of `command` (split at whitespace); fails the test if it fails.
fn run_openssl(dir: &Path, command: &str) {
    let args: Vec<&str> = command.split_whitespace().collect();
    let (ok, text) = openssl(dir, &args);
    assert!(ok, "openssl {command}: {text}");
}

/// A self-signed certificate made by openssl for an EC key in SEC1, a CA or not.
fn openssl_self_signed(dir: &Path, key: &str, cert: &str, subject: &str, ca: bool) {
    run_openssl(
        dir,
        &format!("ecparam -name prime256v1 -genkey -noout -out {key}"),
    );
    let ca = if ca { "TRUE" } else { "FALSE" };
    run_openssl(
        dir,
        &format!(
            "req -x509 -new -key {key} -days 30 -subj {subject} -addext basicConstraints=critical,CA:{ca} -out {cert}"
        ),
    );
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// `openssl verify` of `leaf` (a file) against the root, with `untrusted` intermediates.
fn openssl_verifies(dir: &Path, root: &str, untrusted: Option<&str>, leaf: &str) -> (bool, String) {
    let mut args = vec!["verify", "-CAfile", root];
    if let Some(chain) = untrusted {
        args.extend(["-untrusted", chain]);
    }
    args.push(leaf);
    openssl(dir, &args)
}

#[test]
fn a_generated_root_issues_intermediates_and_workloads_that_openssl_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let root =
        Authority::generate_root("fleet.example", Algorithm::EcdsaP256, ROOT_VALIDITY).unwrap();
    let east = root
        .issue_intermediate("east-1", Algorithm::EcdsaP256, INTERMEDIATE_VALIDITY)
        .unwrap();
    let out = dir.path().join("east-1");
    istio::write_files(&out, &istio::plugin_files(&east, &[])).unwrap();
    let verified = istio::verify_dir(&out).unwrap();
    assert!(verified.subject.contains("L=east-1"), "{verified:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = |name: &str| {
        std::fs::metadata(out.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(istio::CA_KEY), 0o600);
    assert_eq!(mode(istio::SECRET), 0o600);
    assert_eq!(mode(istio::CA_CERT), 0o644);
    let (ok, text) = openssl_verifies(&out, "root-cert.pem", None, "ca-cert.pem");
    assert!(ok, "{text}");
    let (ok, text) = openssl(&out, &["x509", "-in", "ca-cert.pem", "-noout", "-text"]);
    assert!(ok && text.contains("CA:TRUE, pathlen:0"), "{text}");

    // A workload of the cluster, through the plug-in CA as istiod would load it.
    let intermediate = Authority::from_pem(
        "fleet.example",
        "cert-chain.pem",
        &std::fs::read_to_string(out.join("cert-chain.pem")).unwrap(),
        "ca-key.pem",
        &std::fs::read_to_string(out.join("ca-key.pem")).unwrap(),
    )
    .unwrap();
    let id = SpiffeId::new("fleet.example", "shop", "cart");
    let leaf = intermediate.issue_workload(&id, WORKLOAD_VALIDITY).unwrap();
    write(&out, "leaf.pem", &leaf.certificate.pem());
    let (ok, text) = openssl_verifies(&out, "root-cert.pem", Some("cert-chain.pem"), "leaf.pem");
    assert!(ok, "{text}");
    let (_, text) = openssl(
        &out,
        &[
            "x509",
            "-in",
            "leaf.pem",
            "-noout",
            "-ext",
            "subjectAltName",
        ],
    );
    assert!(
        text.contains("URI:spiffe://fleet.example/ns/shop/sa/cart"),
        "{text}"
    );
    let mut path = vec![leaf.certificate.clone()];
    path.extend(leaf.chain.iter().cloned());
    check::chain(&path, None).unwrap();
    assert_eq!(
        check::workload(&leaf.certificate, "fleet.example").unwrap(),
        id
    );

    // Under a foreign root, the same leaf is refused by openssl and by meshfleet.
    let foreign =
        Authority::generate_root("fleet.example", Algorithm::EcdsaP256, ROOT_VALIDITY).unwrap();
    write(&out, "foreign.pem", &foreign.certificate().pem());
    let (ok, _) = openssl_verifies(&out, "foreign.pem", Some("cert-chain.pem"), "leaf.pem");
    assert!(!ok);
    let error = check::chain(&path[..2], Some(foreign.certificate())).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("does not verify with the key of root certificate"),
        "{error}"
    );

    // Another trust domain's identity is refused.
    let error = intermediate
        .issue_workload(
            &SpiffeId::new("other.example", "shop", "cart"),
            WORKLOAD_VALIDITY,
        )
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "spiffe://other.example/ns/shop/sa/cart: not in trust domain fleet.example"
    );
}

#[test]
fn a_root_made_by_openssl_with_its_key_in_sec1_is_adopted() {
    // (A PKCS#1 RSA root as Istio's tools/certs make it is adopted through the CLI, in the
    // end-to-end tests.)
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl_self_signed(d, "ec-key.pem", "ec-cert.pem", "/CN=EC-root", true);
    let read = |name: &str| std::fs::read_to_string(d.join(name)).unwrap();
    assert!(read("ec-key.pem").starts_with("-----BEGIN EC PRIVATE KEY-----"));
    let root = Authority::from_pem(
        "cluster.local",
        "ec-cert.pem",
        &read("ec-cert.pem"),
        "ec-key.pem",
        &read("ec-key.pem"),
    )
    .unwrap();
    let issued = root
        .issue_intermediate("c2", Algorithm::Rsa2048, INTERMEDIATE_VALIDITY)
        .unwrap();
    let out = d.join("c2");
    istio::write_files(&out, &istio::plugin_files(&issued, &[])).unwrap();
    istio::verify_dir(&out).unwrap();
    let (ok, text) = openssl_verifies(&out, "root-cert.pem", None, "ca-cert.pem");
    assert!(ok, "{text}");
}

#[test]
fn bad_roots_are_refused_with_the_file_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let read = |name: &str| std::fs::read_to_string(d.join(name)).unwrap();
    let adopt = |cert: &str, key: &str| {
        Authority::from_pem("cluster.local", cert, &read(cert), key, &read(key))
            .unwrap_err()
            .to_string()
    };
    let good =
        Authority::generate_root("cluster.local", Algorithm::EcdsaP256, ROOT_VALIDITY).unwrap();
    let other =
        Authority::generate_root("cluster.local", Algorithm::EcdsaP256, ROOT_VALIDITY).unwrap();
    write(d, "good-cert.pem", &good.certificate().pem());
    write(d, "good-key.pem", good.key_pem());
    write(d, "other-key.pem", other.key_pem());
    assert_eq!(
        adopt("good-cert.pem", "other-key.pem"),
        "other-key.pem: the key does not match the certificate in good-cert.pem"
    );

    // Not a CA.
    openssl_self_signed(d, "leaf-key.pem", "leaf-cert.pem", "/CN=not-a-ca", false);
    assert_eq!(
        adopt("leaf-cert.pem", "leaf-key.pem"),
        "leaf-cert.pem: \"CN=not-a-ca\" is not a CA certificate (basicConstraints CA:TRUE missing)"
    );

    // Expired.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    write(d, "old-cert.pem", &cert.pem());
    write(d, "old-key.pem", &key.serialize_pem());
    let error = adopt("old-cert.pem", "old-key.pem");
    assert!(
        error.starts_with("old-cert.pem: \"CN=rcgen self signed cert\" is valid from"),
        "{error}"
    );
    assert!(error.ends_with("not now"), "{error}");

    // Truncated PEM; a key file that is not a key; a wrong trust domain.
    let text = read("good-cert.pem");
    write(d, "cut-cert.pem", &text[..text.len() / 2]);
    let error = adopt("cut-cert.pem", "good-key.pem");
    assert!(error.starts_with("cut-cert.pem: "), "{error}");
    assert_eq!(
        adopt("good-cert.pem", "good-cert.pem"),
        "good-cert.pem: not a private key in PEM (PKCS#8 \"PRIVATE KEY\", PKCS#1 \"RSA PRIVATE KEY\" or SEC1 \"EC PRIVATE KEY\"; RSA, ECDSA P-256/P-384 or Ed25519)"
    );
    let error = Authority::from_pem(
        "Bad Domain",
        "good-cert.pem",
        &read("good-cert.pem"),
        "good-key.pem",
        &read("good-key.pem"),
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("trust domain: \"Bad Domain\" is not"),
        "{error}"
    );
    // No error or debug output ever carries the key.
    let key_body: String = good.key_pem().lines().nth(1).unwrap().to_owned();
    for text in [format!("{good:?}"), adopt("good-cert.pem", "other-key.pem")] {
        assert!(!text.contains(&key_body));
    }
}

#[test]
fn a_damaged_plugin_directory_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let root =
        Authority::generate_root("cluster.local", Algorithm::EcdsaP256, ROOT_VALIDITY).unwrap();
    let east = root
        .issue_intermediate("east", Algorithm::EcdsaP256, INTERMEDIATE_VALIDITY)
        .unwrap();
    let west = root
        .issue_intermediate("west", Algorithm::EcdsaP256, INTERMEDIATE_VALIDITY)
        .unwrap();
    let out = dir.path();
    istio::write_files(out, &istio::plugin_files(&east, &[])).unwrap();
    istio::write_files(&out.join("w"), &istio::plugin_files(&west, &[])).unwrap();
    istio::verify_dir(out).unwrap();

    std::fs::copy(out.join("w/ca-key.pem"), out.join("ca-key.pem")).unwrap();
    assert_eq!(
        istio::verify_dir(out).unwrap_err().to_string(),
        "ca-key.pem: the key does not match the certificate in ca-cert.pem"
    );
    istio::write_files(out, &istio::plugin_files(&east, &[])).unwrap();
    let foreign =
        Authority::generate_root("cluster.local", Algorithm::EcdsaP256, ROOT_VALIDITY).unwrap();
    write(out, istio::ROOT_CERT, &foreign.certificate().pem());
    let error = istio::verify_dir(out).unwrap_err().to_string();
    assert!(error.starts_with("cert-chain.pem[1]: "), "{error}");
    std::fs::remove_file(out.join(istio::CERT_CHAIN)).unwrap();
    assert!(
        istio::verify_dir(out)
            .unwrap_err()
            .to_string()
            .starts_with("cert-chain.pem: No such file")
    );
}

#[test]
fn a_csr_is_signed_for_the_callers_identity_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root =
        Authority::generate_root("cluster.local", Algorithm::EcdsaP256, ROOT_VALIDITY).unwrap();
    let issued = root
        .issue_intermediate("east", Algorithm::EcdsaP256, INTERMEDIATE_VALIDITY)
        .unwrap();
    let ca = Authority::from_pem(
        "cluster.local",
        "chain",
        &issued.chain_pem(),
        "key",
        &issued.key_pem,
    )
    .unwrap();
    write(d, "chain.pem", &issued.chain_pem());
    write(d, "root.pem", &root.certificate().pem());
    let caller = SpiffeId::new("cluster.local", "shop", "cart");
    // istio-agent's request names its own identity; openssl makes it here.
    run_openssl(d, "ecparam -name prime256v1 -genkey -noout -out key.pem");
    run_openssl(
        d,
        "req -new -key key.pem -subj /O=shop -addext subjectAltName=URI:spiffe://cluster.local/ns/shop/sa/cart -out own.csr",
    );
    let signed = ca
        .sign_csr(
            &std::fs::read_to_string(d.join("own.csr")).unwrap(),
            &caller,
            WORKLOAD_VALIDITY,
        )
        .unwrap();
    assert!(signed.key_pem.is_empty());
    write(d, "leaf.pem", &signed.certificate.pem());
    let (ok, text) = openssl_verifies(d, "root.pem", Some("chain.pem"), "leaf.pem");
    assert!(ok, "{text}");
    assert_eq!(
        check::workload(&signed.certificate, "cluster.local").unwrap(),
        caller
    );
    // The certificate is for the request's key.
    let (_, from_key) = openssl(d, &["pkey", "-in", "key.pem", "-pubout"]);
    let (_, from_cert) = openssl(d, &["x509", "-in", "leaf.pem", "-noout", "-pubkey"]);
    assert_eq!(from_key, from_cert);

    // Another identity is refused, naming the caller; so is a request that is not one.
    run_openssl(
        d,
        "req -new -key key.pem -subj /O=shop -addext subjectAltName=URI:spiffe://cluster.local/ns/bank/sa/vault -out other.csr",
    );
    let error = ca
        .sign_csr(
            &std::fs::read_to_string(d.join("other.csr")).unwrap(),
            &caller,
            WORKLOAD_VALIDITY,
        )
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "spiffe://cluster.local/ns/shop/sa/cart: the certificate request asks for spiffe://cluster.local/ns/bank/sa/vault, not the caller's identity"
    );
    let error = ca
        .sign_csr("not a csr", &caller, WORKLOAD_VALIDITY)
        .unwrap_err();
    assert!(error.to_string().contains("not a PKCS#10 CSR"), "{error}");
}
