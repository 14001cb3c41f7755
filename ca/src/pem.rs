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
        let block = ::pem::Pem::new("CERTIFICATE", self.der.clone());
        ::pem::encode_config(
            &block,
            ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF),
        )
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

/// Base64 (standard, padded), for Secret data.
pub(crate) fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
