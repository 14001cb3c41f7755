//! A certificate authority (the root, or a cluster's intermediate) and what it issues.

use std::fmt;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
};
use time::OffsetDateTime;

use crate::CaError;
use crate::check;
use crate::pem::{Certificate, parse_certificates};

/// The key algorithm of a new CA or workload key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256: small and fast, what istiod issues by default for workloads.
    #[default]
    EcdsaP256,
    /// RSA 2048, as istiod's self-signed CA.
    Rsa2048,
    /// RSA 4096, as Istio's `tools/certs` roots.
    Rsa4096,
}

impl Algorithm {
    /// `ecdsa-p256`, `rsa-2048` or `rsa-4096`.
    ///
    /// # Errors
    /// Any other name.
    pub fn parse(text: &str) -> Result<Self, CaError> {
        match text {
            "ecdsa-p256" | "ecdsa" | "ec-p256" => Ok(Self::EcdsaP256),
            "rsa-2048" | "rsa" => Ok(Self::Rsa2048),
            "rsa-4096" => Ok(Self::Rsa4096),
            _ => Err(CaError::invalid(
                "key algorithm",
                format!("{text:?} is not one of ecdsa-p256, rsa-2048, rsa-4096"),
            )),
        }
    }

    fn generate(self, what: &str) -> Result<KeyPair, CaError> {
        let key = match self {
            Self::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            Self::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            }
            Self::Rsa4096 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_4096)
            }
        };
        key.map_err(|e| CaError::crypto(what, e))
    }
}

/// A workload identity: `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpiffeId {
    pub trust_domain: String,
    pub namespace: String,
    pub service_account: String,
}

impl SpiffeId {
    pub fn new(trust_domain: &str, namespace: &str, service_account: &str) -> Self {
        Self {
            trust_domain: trust_domain.to_owned(),
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
        }
    }

    /// Parses Istio's form of a SPIFFE ID.
    ///
    /// # Errors
    /// Any other URI.
    pub fn parse(uri: &str) -> Result<Self, CaError> {
        let refuse = || {
            CaError::invalid(
                "SPIFFE ID",
                format!(
                    "{uri:?} is not spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>"
                ),
            )
        };
        let rest = uri.strip_prefix("spiffe://").ok_or_else(refuse)?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            [td, "ns", ns, "sa", sa] if !td.is_empty() && !ns.is_empty() && !sa.is_empty() => {
                Ok(Self::new(td, ns, sa))
            }
            _ => Err(refuse()),
        }
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spiffe://{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service_account
        )
    }
}

/// What an authority issued: the certificate, its new key (PKCS#8 PEM; empty when the key stayed
/// with the requester, who sent a CSR), and the chain above it up to and including the root.
pub struct Issued {
    pub certificate: Certificate,
    pub key_pem: String,
    pub chain: Vec<Certificate>,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("Issued")
            .field("certificate", &self.certificate.name)
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Issued {
    /// The certificate then its chain, as PEM (Istio's `cert-chain.pem`).
    pub fn chain_pem(&self) -> String {
        std::iter::once(&self.certificate)
            .chain(&self.chain)
            .map(Certificate::pem)
            .collect()
    }

    /// The root the chain ends with.
    pub fn root(&self) -> &Certificate {
        self.chain.last().unwrap_or(&self.certificate)
    }
}

/// A CA that can issue: its certificate, its key, the chain above it, the trust domain.
pub struct Authority {
    trust_domain: String,
    certificate: Certificate,
    chain: Vec<Certificate>,
    key: KeyPair,
    key_pem: String,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("trust_domain", &self.trust_domain)
            .field("certificate", &self.certificate.name)
            .finish_non_exhaustive()
    }
}

/// Root certificates live 10 years, intermediates 1, workloads 24 hours, unless asked otherwise.
pub const ROOT_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
pub const INTERMEDIATE_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
pub const WORKLOAD_VALIDITY: Duration = Duration::from_secs(24 * 3600);
/// Certificates start a little in the past: clocks of a fleet are not exactly in step.
const BACKDATE: time::Duration = time::Duration::minutes(5);

impl Authority {
    /// A new self-signed root for `trust_domain`.
    ///
    /// # Errors
    /// An invalid trust domain; key generation or signing failed.
    pub fn generate_root(
        trust_domain: &str,
        algorithm: Algorithm,
        validity: Duration,
    ) -> Result<Self, CaError> {
        check::trust_domain(trust_domain)?;
        let key = algorithm.generate("root key")?;
        let mut params = ca_params(validity, None)?;
        params.distinguished_name = name(&[
            (DnType::OrganizationName, "meshfleet"),
            (DnType::OrganizationalUnitName, trust_domain),
            (DnType::CommonName, "meshfleet root CA"),
        ]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params
            .self_signed(&key)
            .map_err(|e| CaError::crypto("root certificate", e))?;
        Ok(Self {
            trust_domain: trust_domain.to_owned(),
            certificate: Certificate {
                der: cert.der().to_vec(),
                name: "root certificate".to_owned(),
            },
            chain: Vec::new(),
            key_pem: key.serialize_pem(),
            key,
        })
    }

    /// A CA from PEM: its certificate first, then the chain above it up to its root (none for
    /// a root); its key in PKCS#8, PKCS#1 or SEC1. `cert_what` and `key_what` name the inputs
    /// in errors (file names).
    ///
    /// # Errors
    /// What does not parse; a certificate that is not a CA; a key that does not match it; a
    /// chain that does not lead to a self-signed root; a certificate outside its validity.
    pub fn from_pem(
        trust_domain: &str,
        cert_what: &str,
        cert_pem: &str,
        key_what: &str,
        key_pem: &str,
    ) -> Result<Self, CaError> {
        check::trust_domain(trust_domain)?;
        let mut certificates = parse_certificates(cert_what, cert_pem)?;
        let key = KeyPair::from_pem(key_pem).map_err(|_| {
            CaError::invalid(
                key_what,
                "not a private key in PEM (PKCS#8 \"PRIVATE KEY\", PKCS#1 \"RSA PRIVATE KEY\" or SEC1 \"EC PRIVATE KEY\"; RSA, ECDSA P-256/P-384 or Ed25519)",
            )
        })?;
        let certificate = certificates.remove(0);
        check::key_matches(&certificate, &key.subject_public_key_info(), key_what)?;
        check::is_ca(&certificate)?;
        let mut path = vec![certificate.clone()];
        path.extend(certificates.iter().cloned());
        check::chain(&path, None)?;
        Ok(Self {
            trust_domain: trust_domain.to_owned(),
            certificate,
            chain: certificates,
            key,
            key_pem: key_pem.to_owned(),
        })
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The chain above this CA, up to and including the root (empty for a root).
    pub fn chain(&self) -> &[Certificate] {
        &self.chain
    }

    /// The root this CA chains to (itself for a root).
    pub fn root(&self) -> &Certificate {
        self.chain.last().unwrap_or(&self.certificate)
    }

    /// The key, as PEM: to be written to a file readable by its owner only.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The intermediate CA of member cluster `cluster`: a CA with path length 0 (it issues only
    /// workload certificates), the cluster named in its subject (`L=<cluster>`, as Istio's
    /// `tools/certs` name it), valid for `validity` but never beyond this CA.
    ///
    /// # Errors
    /// An invalid cluster name; key generation or signing failed.
    pub fn issue_intermediate(
        &self,
        cluster: &str,
        algorithm: Algorithm,
        validity: Duration,
    ) -> Result<Issued, CaError> {
        if cluster.is_empty() || cluster.chars().any(|c| c.is_control() || c == '/') {
            return Err(CaError::invalid(
                "cluster name",
                format!("{cluster:?} is not a cluster name"),
            ));
        }
        let key = algorithm.generate("intermediate key")?;
        let mut params = ca_params(validity, Some(self.not_after()))?;
        params.distinguished_name = name(&[
            (DnType::OrganizationName, "meshfleet"),
            (DnType::OrganizationalUnitName, &self.trust_domain),
            (DnType::LocalityName, cluster),
            (
                DnType::CommonName,
                &format!("meshfleet intermediate CA {cluster}"),
            ),
        ]);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.subject_alt_names = vec![SanType::DnsName(
            "istiod.istio-system.svc"
                .try_into()
                .map_err(|e| CaError::crypto("intermediate certificate", e))?,
        )];
        self.issue(
            &params,
            key,
            format!("intermediate certificate of {cluster}"),
        )
    }

    /// A workload certificate for `caller` on the public key of `csr_pem` (PKCS#10), as Istio's
    /// CA signs an istio-agent's request: the identity is the caller's, never one the request
    /// asks for; a request naming another identity is refused.
    ///
    /// # Errors
    /// The request does not parse or its signature does not verify; it asks for an identity
    /// other than `caller`'s; `caller` is outside this CA's trust domain.
    pub fn sign_csr(
        &self,
        csr_pem: &str,
        caller: &SpiffeId,
        ttl: Duration,
    ) -> Result<Issued, CaError> {
        let who = caller.to_string();
        let request = rcgen::CertificateSigningRequestParams::from_pem(csr_pem).map_err(|_| {
            CaError::invalid(
                &who,
                "the certificate request is not a PKCS#10 CSR in PEM with a valid signature",
            )
        })?;
        for san in &request.params.subject_alt_names {
            let asked = match san {
                SanType::URI(uri) => uri.as_str().to_owned(),
                SanType::DnsName(name) => name.as_str().to_owned(),
                other => format!("{other:?}"),
            };
            if asked != who {
                return Err(CaError::refused(
                    &who,
                    format!("the certificate request asks for {asked}, not the caller's identity"),
                ));
            }
        }
        let params = self.workload_params(caller, ttl)?;
        self.sign(&params, &request.public_key, String::new(), who)
    }

    /// A workload certificate for `id` with a new ECDSA P-256 key, valid for `ttl` (never
    /// beyond this CA).
    ///
    /// # Errors
    /// `id` is outside this CA's trust domain; signing failed.
    pub fn issue_workload(&self, id: &SpiffeId, ttl: Duration) -> Result<Issued, CaError> {
        let params = self.workload_params(id, ttl)?;
        let key = Algorithm::EcdsaP256.generate("workload key")?;
        self.issue(&params, key, id.to_string())
    }

    /// A serving certificate for meshfleet itself: the workload identity `id`, and `names` as
    /// DNS names (the names clients dial, such as `istiod.istio-system.svc`).
    ///
    /// # Errors
    /// As [`Authority::issue_workload`]; a name that is not a DNS name.
    pub fn issue_server(
        &self,
        id: &SpiffeId,
        names: &[&str],
        ttl: Duration,
    ) -> Result<Issued, CaError> {
        let mut params = self.workload_params(id, ttl)?;
        for name in names {
            let dns = (*name).try_into().map_err(|_| {
                CaError::invalid("server name", format!("{name:?} is not a DNS name"))
            })?;
            params.subject_alt_names.push(SanType::DnsName(dns));
        }
        let key = Algorithm::EcdsaP256.generate("server key")?;
        self.issue(&params, key, format!("serving certificate {id}"))
    }

    /// A workload certificate's parameters: the SPIFFE ID as URI SAN, client and server use.
    fn workload_params(&self, id: &SpiffeId, ttl: Duration) -> Result<CertificateParams, CaError> {
        if id.trust_domain != self.trust_domain {
            return Err(CaError::refused(
                id.to_string(),
                format!("not in trust domain {}", self.trust_domain),
            ));
        }
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.not_before = now - BACKDATE;
        params.not_after = (now + ttl).min(self.not_after());
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![SanType::URI(
            id.to_string()
                .try_into()
                .map_err(|e| CaError::crypto(id.to_string(), e))?,
        )];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        Ok(params)
    }

    fn issue(
        &self,
        params: &CertificateParams,
        key: KeyPair,
        name: String,
    ) -> Result<Issued, CaError> {
        self.sign(params, &key, key.serialize_pem(), name)
    }

    /// Signs `params` for `public_key`; `key_pem` is the new key, if this CA made it.
    fn sign(
        &self,
        params: &CertificateParams,
        public_key: &impl PublicKeyData,
        key_pem: String,
        name: String,
    ) -> Result<Issued, CaError> {
        let issuer = Issuer::from_ca_cert_der(&self.certificate.der.as_slice().into(), &self.key)
            .map_err(|e| CaError::crypto(&self.certificate.name, e))?;
        let cert = params
            .signed_by(public_key, &issuer)
            .map_err(|e| CaError::crypto(&name, e))?;
        let mut chain = vec![self.certificate.clone()];
        chain.extend(self.chain.iter().cloned());
        Ok(Issued {
            certificate: Certificate {
                der: cert.der().to_vec(),
                name,
            },
            key_pem,
            chain,
        })
    }

    fn not_after(&self) -> OffsetDateTime {
        self.certificate.parsed().validity().not_after.to_datetime()
    }
}

fn name(parts: &[(DnType, &str)]) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    for (kind, value) in parts {
        name.push(kind.clone(), *value);
    }
    name
}

/// A CA certificate's parameters: valid from a little before now for `validity`, capped at
/// `until`.
fn ca_params(
    validity: Duration,
    until: Option<OffsetDateTime>,
) -> Result<CertificateParams, CaError> {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.not_before = now - BACKDATE;
    let wanted = now + validity;
    params.not_after = until.map_or(wanted, |until| wanted.min(until));
    if params.not_after <= now {
        return Err(CaError::refused(
            "CA certificate",
            "the issuing CA has expired",
        ));
    }
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}
