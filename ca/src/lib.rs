//! meshfleet's certificate authority: one root and trust domain for the whole fleet, one
//! intermediate per member cluster in Istio's plug-in CA format, workload certificates with
//! SPIFFE identities. It never sees Kubernetes, and it links no OpenSSL: keys and certificates
//! are made with rcgen (on aws-lc-rs) and read with x509-parser.
//!
//! ```text
//!  Root (generated: ECDSA P-256, RSA 2048/4096; or imported PEM: PKCS#8, PKCS#1, SEC1)
//!    └─ intermediate per cluster: CA, path length 0, `L=<cluster>` ──> Istio's plug-in files
//!         └─ workload: spiffe://<trust-domain>/ns/<ns>/sa/<sa>, 24 h by default
//! ```
//!
//! Every input is checked before it is used ([`check`]): a chain that does not lead to its
//! root, a key that does not match its certificate, a CA without the CA flag, a certificate
//! outside its validity window, an identity outside the trust domain. Errors name the file (or
//! the part) and never quote key material.
#![forbid(unsafe_code)]

mod authority;
pub mod check;
pub mod istio;
mod pem;
pub mod store;

pub use authority::{
    Algorithm, Authority, INTERMEDIATE_VALIDITY, Issued, ROOT_VALIDITY, SpiffeId, WORKLOAD_VALIDITY,
};
pub use pem::{Certificate, parse_certificates};

/// What went wrong, and where.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// A file or input could not be read or decoded.
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
    /// A check failed.
    #[error("{what}: {message}")]
    Refused { what: String, message: String },
    /// Generating or signing failed.
    #[error("{what}: {message}")]
    Crypto { what: String, message: String },
    #[error("{what}: {error}")]
    Io {
        what: String,
        #[source]
        error: std::io::Error,
    },
}

impl CaError {
    pub(crate) fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            what: what.into(),
            message: message.into(),
        }
    }

    pub(crate) fn refused(what: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Refused {
            what: what.into(),
            message: message.into(),
        }
    }

    pub(crate) fn crypto(what: impl Into<String>, error: impl std::fmt::Display) -> Self {
        Self::Crypto {
            what: what.into(),
            message: error.to_string(),
        }
    }

    pub(crate) fn io(what: impl Into<String>, error: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            error,
        }
    }
}

#[cfg(test)]
mod tests;
