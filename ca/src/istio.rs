//! Istio's plug-in CA files: what istiod reads from the `cacerts` Secret in `istio-system`
//! (`ca-cert.pem`, `ca-key.pem`, `root-cert.pem`, `cert-chain.pem`), written to a directory and
//! as that Secret's manifest (`cacerts.yaml`); and their verification.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rcgen::{KeyPair, PublicKeyData};

use crate::pem::{Certificate, base64_of, parse_certificates};
use crate::{CaError, Issued, check};

pub const CA_CERT: &str = "ca-cert.pem";
pub const CA_KEY: &str = "ca-key.pem";
pub const ROOT_CERT: &str = "root-cert.pem";
pub const CERT_CHAIN: &str = "cert-chain.pem";
pub const SECRET: &str = "cacerts.yaml";

/// Files by name, with their contents.
pub type Files = Vec<(&'static str, String)>;

/// The four files of a cluster's plug-in CA, by name, and the Secret holding them.
/// `root-cert.pem` holds the issuing root and `also_trusted` (roots being rotated out, which
/// workloads keep trusting until every cluster has moved), each once.
pub fn plugin_files(issued: &Issued, also_trusted: &[Certificate]) -> Files {
    let mut roots = vec![issued.root()];
    for root in also_trusted {
        if !roots.iter().any(|r| r.der == root.der) {
            roots.push(root);
        }
    }
    let files = vec![
        (CA_CERT, issued.certificate.pem()),
        (CA_KEY, issued.key_pem.clone()),
        (ROOT_CERT, roots.iter().map(|r| r.pem()).collect()),
        (CERT_CHAIN, issued.chain_pem()),
    ];
    let secret = secret_yaml(&files);
    let mut files = files;
    files.push((SECRET, secret));
    files
}

/// The `cacerts` Secret, as `kubectl create secret generic cacerts -n istio-system
/// --from-file=...` makes it.
fn secret_yaml(files: &[(&str, String)]) -> String {
    let mut out = String::from(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cacerts\n  namespace: istio-system\ntype: Opaque\ndata:\n",
    );
    for (name, text) in files {
        out.push_str(&format!("  {name}: {}\n", base64_of(text.as_bytes())));
    }
    out
}

/// Writes `files` into `dir` (created if needed), each whole or not at all (a temporary file
/// renamed over it); keys (`*key*`) and the Secret readable by their owner only.
///
/// # Errors
/// A file cannot be written.
pub fn write_files(dir: &Path, files: &[(&str, String)]) -> Result<(), CaError> {
    std::fs::create_dir_all(dir).map_err(|e| CaError::io(dir.display().to_string(), e))?;
    for (name, text) in files {
        let secret = name.contains("key") || *name == SECRET;
        write_atomic(
            &dir.join(name),
            text.as_bytes(),
            if secret { 0o600 } else { 0o644 },
        )?;
    }
    Ok(())
}

/// Writes `bytes` to `path` with `mode`, whole or not at all.
///
/// # Errors
/// It cannot be written.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    let what = path.display().to_string();
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        // The mode of an existing temporary file is not changed by open.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(error) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(CaError::io(what, error));
    }
    Ok(())
}

/// What a plug-in CA directory holds, once verified.
#[derive(Debug)]
pub struct Verified {
    /// The intermediate's subject.
    pub subject: String,
    /// Its root's subject.
    pub root: String,
    /// How many roots `root-cert.pem` trusts (more than one while a root is rotated).
    pub trusted_roots: usize,
    /// When the intermediate expires (RFC 2822-like, as x509-parser prints it).
    pub not_after: String,
}

/// Checks a plug-in CA directory as istiod would rely on it: every file present and readable,
/// `ca-key.pem` the key of `ca-cert.pem`, `ca-cert.pem` a CA within its validity, `cert-chain.pem`
/// starting with `ca-cert.pem` and leading, link by link, to `root-cert.pem`, a self-signed root.
///
/// # Errors
/// The first problem found, naming the file.
pub fn verify_dir(dir: &Path) -> Result<Verified, CaError> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).map_err(|e| CaError::io(name.to_owned(), e))
    };
    let ca_cert = parse_certificates(CA_CERT, &read(CA_CERT)?)?;
    let root = parse_certificates(ROOT_CERT, &read(ROOT_CERT)?)?;
    let chain = parse_certificates(CERT_CHAIN, &read(CERT_CHAIN)?)?;
    let key_text = read(CA_KEY)?;
    let key = KeyPair::from_pem(&key_text).map_err(|_| {
        CaError::invalid(CA_KEY, "not a private key in PEM (PKCS#8, PKCS#1 or SEC1)")
    })?;
    let ca = &ca_cert[0];
    check::key_matches(ca, &key.subject_public_key_info(), CA_KEY)?;
    check::is_ca(ca)?;
    if chain[0].der != ca.der {
        return Err(CaError::refused(
            CERT_CHAIN,
            format!("does not start with the certificate of {CA_CERT}"),
        ));
    }
    // Every root trusted is a root; the chain leads to one of them.
    for root_cert in &root {
        check::chain(std::slice::from_ref(root_cert), None)?;
    }
    let last = chain
        .last()
        .expect("parse_certificates returns at least one");
    let root_cert: &Certificate = root
        .iter()
        .find(|r| r.der == last.der)
        .or_else(|| root.iter().find(|r| check::chain(&chain, Some(r)).is_ok()))
        .unwrap_or(&root[0]);
    check::chain(&chain, Some(root_cert))?;
    let trusted_roots = root.len();
    let (ca, root) = (ca.parsed(), root_cert.parsed());
    Ok(Verified {
        subject: ca.subject().to_string(),
        root: root.subject().to_string(),
        trusted_roots,
        not_after: ca.validity().not_after.to_string(),
    })
}
