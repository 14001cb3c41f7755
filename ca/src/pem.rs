//! Certificates in PEM, as read from files: each keeps its DER and the facts the checks need.

use x509_parser::pem::Pem;
use x509_parser::prelude::*;

use crate::CaError;

/// One certificate, owned (its DER), with a name for errors (`ca-cert.pem`, `cert-chain.pem[1]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    pub der: Vec<u8>,
    pub name: String,
}

impl Certificate {
    /// The parsed certificate (parsing was checked when it was read).
    pub fn parsed(&self) -> X509Certificate<'_> {
        X509Certificate::from_der(&self.der)
            .map(|(_, cert)| cert)
            .expect("checked when read")
    }

    /// PEM text of this certificate.
    pub fn pem(&self) -> String {
        let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
        let encoded = base64(&self.der);
        for line in encoded.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
        out
    }
}

/// Every certificate of `text`, in order; `what` names the input in errors.
///
/// # Errors
/// No certificate at all, a block that is not valid PEM, a certificate that does not parse.
pub fn parse_certificates(what: &str, text: &str) -> Result<Vec<Certificate>, CaError> {
    let mut out = Vec::new();
    for (i, block) in Pem::iter_from_buffer(text.as_bytes()).enumerate() {
        let block = block.map_err(|e| CaError::invalid(what, format!("block {i}: {e}")))?;
        if block.label != "CERTIFICATE" {
            continue;
        }
        let name = if i == 0 {
            what.to_owned()
        } else {
            format!("{what}[{i}]")
        };
        X509Certificate::from_der(&block.contents)
            .map_err(|e| CaError::invalid(&name, format!("not a valid X.509 certificate: {e}")))?;
        out.push(Certificate {
            der: block.contents,
            name,
        });
    }
    if out.is_empty() {
        return Err(CaError::invalid(
            what,
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
        ));
    }
    Ok(out)
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Base64 (standard, padded), for Secret data.
pub(crate) fn base64_of(bytes: &[u8]) -> String {
    base64(bytes)
}
