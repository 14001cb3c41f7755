//! The checks every certificate and key goes through before meshfleet uses or writes it. Each
//! failure names the certificate or file and says what is wrong; none quotes key material.

use x509_parser::prelude::*;

use crate::pem::Certificate;
use crate::{CaError, SpiffeId};

/// A SPIFFE trust domain: lowercase letters, digits, `.`, `-` and `_`.
///
/// # Errors
/// Empty, or another character.
pub fn trust_domain(td: &str) -> Result<(), CaError> {
    let valid = !td.is_empty()
        && td
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'));
    if valid {
        Ok(())
    } else {
        Err(CaError::invalid(
            "trust domain",
            format!(
                "{td:?} is not a SPIFFE trust domain (lowercase letters, digits, '.', '-', '_')"
            ),
        ))
    }
}

/// The key (its SubjectPublicKeyInfo, DER) is the certificate's.
///
/// # Errors
/// It is another key.
pub fn key_matches(
    cert: &Certificate,
    public_key_info: &[u8],
    key_what: &str,
) -> Result<(), CaError> {
    if cert.parsed().public_key().raw == public_key_info {
        Ok(())
    } else {
        Err(CaError::refused(
            key_what,
            format!("the key does not match the certificate in {}", cert.name),
        ))
    }
}

/// The certificate may sign certificates: the CA flag, and `keyCertSign` when key usage is
/// given.
///
/// # Errors
/// It may not.
pub fn is_ca(cert: &Certificate) -> Result<(), CaError> {
    let parsed = cert.parsed();
    let ca = parsed
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca);
    if !ca {
        return Err(CaError::refused(
            &cert.name,
            format!(
                "{} is not a CA certificate (basicConstraints CA:TRUE missing)",
                subject(&parsed)
            ),
        ));
    }
    if let Ok(Some(usage)) = parsed.key_usage()
        && !usage.value.key_cert_sign()
    {
        return Err(CaError::refused(
            &cert.name,
            format!(
                "{} may not sign certificates (keyUsage without keyCertSign)",
                subject(&parsed)
            ),
        ));
    }
    Ok(())
}

/// `path` is a valid chain: each certificate is within its validity window and signed by the
/// next, which is a CA whose path length allows it; the last is signed by `root`, or, without
/// one, is a self-signed root.
///
/// # Errors
/// The first link that fails, named.
pub fn chain(path: &[Certificate], root: Option<&Certificate>) -> Result<(), CaError> {
    let now = ASN1Time::now();
    for cert in path.iter().chain(root) {
        let parsed = cert.parsed();
        if !parsed.validity().is_valid_at(now) {
            let validity = parsed.validity();
            return Err(CaError::refused(
                &cert.name,
                format!(
                    "{} is valid from {} to {}, not now",
                    subject(&parsed),
                    validity.not_before,
                    validity.not_after
                ),
            ));
        }
    }
    let mut links: Vec<(&Certificate, &Certificate)> =
        path.windows(2).map(|w| (&w[0], &w[1])).collect();
    let last = path
        .last()
        .ok_or_else(|| CaError::invalid("chain", "no certificate"))?;
    match root {
        Some(root) if root.der != last.der => links.push((last, root)),
        Some(_) => {}
        None => links.push((last, last)),
    }
    for (depth, (child, parent)) in links.into_iter().enumerate() {
        let (c, p) = (child.parsed(), parent.parsed());
        if !std::ptr::eq(child, parent) {
            is_ca(parent)?;
            if let Ok(Some(bc)) = p.basic_constraints()
                && let Some(limit) = bc.value.path_len_constraint
            {
                // CAs below `parent` in this chain.
                let below = u32::try_from(depth).unwrap_or(u32::MAX);
                if below > limit {
                    return Err(CaError::refused(
                        &parent.name,
                        format!("its path length {limit} does not allow {below} CA(s) below it"),
                    ));
                }
            }
        }
        if c.issuer() != p.subject() {
            let message = if std::ptr::eq(child, parent) {
                format!(
                    "{} is not self-signed: it is not a root (issuer {})",
                    subject(&c),
                    c.issuer()
                )
            } else {
                format!(
                    "{} was issued by {}, not by {}",
                    subject(&c),
                    c.issuer(),
                    subject(&p)
                )
            };
            return Err(CaError::refused(&child.name, message));
        }
        if c.verify_signature(Some(p.public_key())).is_err() {
            return Err(CaError::refused(
                &child.name,
                format!(
                    "the signature of {} does not verify with the key of {}",
                    subject(&c),
                    parent.name
                ),
            ));
        }
    }
    Ok(())
}

/// The workload identities (SPIFFE URI SANs) of a certificate.
pub fn identities(cert: &Certificate) -> Vec<SpiffeId> {
    let parsed = cert.parsed();
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => SpiffeId::parse(uri).ok(),
            _ => None,
        })
        .collect()
}

/// The member cluster whose CA issued `cert`: the `L=` of its issuer, as meshfleet's and
/// Istio's `tools/certs` intermediates name their cluster.
pub fn issuing_cluster(cert: &Certificate) -> Option<String> {
    let parsed = cert.parsed();
    let cluster = parsed
        .issuer()
        .iter_locality()
        .next()?
        .as_str()
        .ok()?
        .to_owned();
    Some(cluster)
}

/// A workload certificate names exactly one identity, in `trust_domain`.
///
/// # Errors
/// No SPIFFE identity, several, or one of another trust domain.
pub fn workload(cert: &Certificate, trust_domain: &str) -> Result<SpiffeId, CaError> {
    let ids = identities(cert);
    match ids.as_slice() {
        [id] if id.trust_domain == trust_domain => Ok(id.clone()),
        [id] => Err(CaError::refused(
            &cert.name,
            format!("{id} is not in trust domain {trust_domain}"),
        )),
        [] => Err(CaError::refused(&cert.name, "no SPIFFE identity (URI SAN)")),
        _ => Err(CaError::refused(
            &cert.name,
            "more than one SPIFFE identity",
        )),
    }
}

fn subject(cert: &X509Certificate<'_>) -> String {
    format!("\"{}\"", cert.subject())
}
