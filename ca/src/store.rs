//! A CA directory, as `meshfleet ca init` makes it and `ca rotate` changes it: the root
//! (`root-cert.pem`, `root-key.pem` 0600), the trust domain (`trust-domain`), the roots being
//! rotated out (`previous-roots.pem`); and the plug-in CAs issued from it for member clusters,
//! kept under `clusters/<cluster>/` and issued again before they expire.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::istio::Files;
use crate::pem::{Certificate, parse_certificates};
use crate::{Algorithm, Authority, CaError, INTERMEDIATE_VALIDITY, check, istio};

pub const ROOT_CERT: &str = "root-cert.pem";
pub const ROOT_KEY: &str = "root-key.pem";
pub const TRUST_DOMAIN: &str = "trust-domain";
/// Roots rotated out and still trusted, until the rotation is finished.
pub const PREVIOUS_ROOTS: &str = "previous-roots.pem";

fn read(path: &Path) -> Result<String, CaError> {
    std::fs::read_to_string(path).map_err(|e| CaError::io(path.display().to_string(), e))
}

/// The root of a CA directory and the roots still trusted beside it.
#[derive(Debug)]
pub struct RootDir {
    pub dir: PathBuf,
    pub root: Authority,
    pub previous: Vec<Certificate>,
}

impl RootDir {
    /// Makes a CA directory in `dir` (created if needed) holding `root` (key 0600). A root key
    /// already there is never overwritten: losing a root key is losing the mesh's trust.
    ///
    /// # Errors
    /// `dir` holds a root key; `root` is not a root; writing failed.
    pub fn create(dir: &Path, root: &Authority) -> Result<(), CaError> {
        let key = dir.join(ROOT_KEY);
        if key.exists() {
            return Err(CaError::refused(
                dir.display().to_string(),
                "already holds a root key; refusing to overwrite it",
            ));
        }
        if !root.chain().is_empty() {
            return Err(CaError::refused(
                "root certificate",
                "not a root (it has a chain above it)",
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| CaError::io(dir.display().to_string(), e))?;
        istio::write_atomic(&key, root.key_pem().as_bytes(), 0o600)?;
        istio::write_atomic(
            &dir.join(ROOT_CERT),
            root.certificate().pem().as_bytes(),
            0o644,
        )?;
        istio::write_atomic(
            &dir.join(TRUST_DOMAIN),
            format!("{}\n", root.trust_domain()).as_bytes(),
            0o644,
        )
    }

    /// Starts a root rotation in `dir`: `new` signs from now on, and the current root stays
    /// trusted (in `previous-roots.pem`) until [`RootDir::finish_rotation`]. The old root is
    /// made trusted first, and both new files are written whole before either replaces the old
    /// one: a crash leaves either the old root signing and trusted, or the new one.
    ///
    /// # Errors
    /// The directory does not load; `new` is of another trust domain; writing failed.
    pub fn rotate(dir: &Path, new: &Authority) -> Result<(), CaError> {
        let Self {
            root: current,
            mut previous,
            ..
        } = Self::load(dir)?;
        if new.trust_domain() != current.trust_domain() {
            return Err(CaError::refused(
                "new root",
                format!(
                    "trust domain {} is not the mesh's ({})",
                    new.trust_domain(),
                    current.trust_domain()
                ),
            ));
        }
        if !previous.iter().any(|r| r.der == current.certificate().der) {
            previous.push(current.certificate().clone());
        }
        let bundle: String = previous.iter().map(Certificate::pem).collect();
        istio::write_atomic(&dir.join(PREVIOUS_ROOTS), bundle.as_bytes(), 0o644)?;
        let (key_next, cert_next) = (
            dir.join(".root-key.pem.next"),
            dir.join(".root-cert.pem.next"),
        );
        istio::write_atomic(&key_next, new.key_pem().as_bytes(), 0o600)?;
        istio::write_atomic(&cert_next, new.certificate().pem().as_bytes(), 0o644)?;
        let rename = |from: &Path, to: &str| {
            std::fs::rename(from, dir.join(to))
                .map_err(|e| CaError::io(dir.join(to).display().to_string(), e))
        };
        rename(&key_next, ROOT_KEY)?;
        rename(&cert_next, ROOT_CERT)
    }

    /// Ends a rotation: the previous roots are no longer trusted. Returns how many were.
    ///
    /// # Errors
    /// No rotation is under way; removing the file failed.
    pub fn finish_rotation(dir: &Path) -> Result<usize, CaError> {
        let previous = Self::load(dir)?.previous.len();
        if previous == 0 {
            return Err(CaError::refused(
                dir.display().to_string(),
                "no rotation to finish",
            ));
        }
        let path = dir.join(PREVIOUS_ROOTS);
        std::fs::remove_file(&path).map_err(|e| CaError::io(path.display().to_string(), e))?;
        Ok(previous)
    }

    /// Reads and checks a CA directory.
    ///
    /// # Errors
    /// A file missing or unreadable, or what [`Authority::from_pem`] refuses.
    pub fn load(dir: &Path) -> Result<Self, CaError> {
        let trust_domain = read(&dir.join(TRUST_DOMAIN))?.trim().to_owned();
        let (cert, key) = (dir.join(ROOT_CERT), dir.join(ROOT_KEY));
        let root = Authority::from_pem(
            &trust_domain,
            &cert.display().to_string(),
            &read(&cert)?,
            &key.display().to_string(),
            &read(&key)?,
        )?;
        let previous_path = dir.join(PREVIOUS_ROOTS);
        let previous = if previous_path.exists() {
            let previous =
                parse_certificates(&previous_path.display().to_string(), &read(&previous_path)?)?;
            for old in &previous {
                check::chain(std::slice::from_ref(old), None)?;
            }
            previous
        } else {
            Vec::new()
        };
        Ok(Self {
            dir: dir.to_owned(),
            root,
            previous,
        })
    }

    /// The plug-in CA of `cluster`, kept under `clusters/<cluster>/`: the one issued before
    /// while it is valid, chains to the current root, trusts the current roots and has more
    /// than a third of its life left; else a new one (ECDSA P-256, [`INTERMEDIATE_VALIDITY`]),
    /// written there first. Returns the files and whether they are new.
    ///
    /// # Errors
    /// Issuing or writing failed.
    pub fn cluster_ca(&self, cluster: &str, now: SystemTime) -> Result<(Files, bool), CaError> {
        let dir = self.dir.join("clusters").join(cluster);
        if let Some(files) = self.still_good(&dir, now) {
            return Ok((files, false));
        }
        let issued =
            self.root
                .issue_intermediate(cluster, Algorithm::EcdsaP256, INTERMEDIATE_VALIDITY)?;
        let files = istio::plugin_files(&issued, &self.previous);
        istio::write_files(&dir, &files)?;
        Ok((files, true))
    }

    /// The CA of `cluster` (as [`RootDir::cluster_ca`] keeps it), able to issue workload
    /// certificates.
    ///
    /// # Errors
    /// As [`RootDir::cluster_ca`]; the files do not make a CA.
    pub fn cluster_authority(&self, cluster: &str, now: SystemTime) -> Result<Authority, CaError> {
        let (files, _) = self.cluster_ca(cluster, now)?;
        let file = |name: &str| {
            files
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, text)| text.as_str())
                .ok_or_else(|| CaError::invalid(name, "missing"))
        };
        Authority::from_pem(
            self.root.trust_domain(),
            istio::CERT_CHAIN,
            file(istio::CERT_CHAIN)?,
            istio::CA_KEY,
            file(istio::CA_KEY)?,
        )
    }

    /// Every root workloads trust now: the current one, then those being rotated out.
    pub fn trusted_roots(&self) -> Vec<Certificate> {
        let mut roots = vec![self.root.certificate().clone()];
        for old in &self.previous {
            if !roots.iter().any(|r| r.der == old.der) {
                roots.push(old.clone());
            }
        }
        roots
    }

    /// The files under `dir`, when they can still be used.
    fn still_good(&self, dir: &Path, now: SystemTime) -> Option<Files> {
        istio::verify_dir(dir).ok()?;
        let names = [
            istio::CA_CERT,
            istio::CA_KEY,
            istio::ROOT_CERT,
            istio::CERT_CHAIN,
            istio::SECRET,
        ];
        let mut files = Vec::new();
        for name in names {
            files.push((name, std::fs::read_to_string(dir.join(name)).ok()?));
        }
        // Trusts exactly the current roots, and its chain ends at the current root.
        let trusted = parse_certificates(istio::ROOT_CERT, &files[2].1).ok()?;
        let mut wanted = vec![self.root.certificate().der.clone()];
        wanted.extend(self.previous.iter().map(|c| c.der.clone()));
        wanted.dedup();
        if trusted.iter().map(|c| c.der.clone()).collect::<Vec<_>>() != wanted {
            return None;
        }
        let chain = parse_certificates(istio::CERT_CHAIN, &files[3].1).ok()?;
        if chain.last()?.der != self.root.certificate().der {
            return None;
        }
        let ca = parse_certificates(istio::CA_CERT, &files[0].1).ok()?;
        let validity = ca[0].parsed().validity().clone();
        let (from, until) = (
            system_time(validity.not_before.timestamp())?,
            system_time(validity.not_after.timestamp())?,
        );
        let life = until.duration_since(from).ok()?;
        let renew_at = until.checked_sub(life / 3)?;
        (now < renew_at).then_some(files)
    }
}

fn system_time(unix: i64) -> Option<SystemTime> {
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(unix).ok()?))
}
