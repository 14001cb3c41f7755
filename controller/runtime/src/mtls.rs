//! `--xds-tls-addr` (15012): ADS with SDS, and Istio's CA API, over mutual TLS.
//!
//! ```text
//!  TCP ──rustls: a client certificate that chains to a mesh root──> Verified { Peer } ──> tonic
//!        ├─ ADS, as on the plaintext port, plus SDS: `default`, `ROOTCA` of the caller only
//!        └─ istio.v1.auth.IstioCertificateService/CreateCertificate: a CSR in, a chain out
//!  MeshCa (the CA directory) ──> serving certificate, client roots, workload certificates
//! ```
//!
//! The caller's identity is the one SPIFFE ID of its certificate, and its cluster the `L=` of
//! the intermediate that issued it: never what a request or its node metadata claims. A
//! connection whose certificate names no identity in the trust domain is closed after the
//! handshake. The serving certificate and the trusted roots are looked at again every
//! `--ca-check-interval` (a minute), so a root rotation (`meshfleet ca rotate`) reaches new
//! connections and every client's trust bundle without a restart.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use meshfleet_ca::store::RootDir;
use meshfleet_ca::{Authority, Certificate, SpiffeId, check};
use meshfleet_xds::pb::envoy::config::core::v3::{DataSource, data_source::Specifier};
use meshfleet_xds::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, Secret, TlsCertificate, secret,
};
use meshfleet_xds::resource::{Resource, SECRET};
use meshfleet_xds::server::{AdsServer, MessageCodec, Peer, SecretSource, Secrets};
use meshfleet_xds::translate::{SDS_DEFAULT, SDS_ROOT};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tonic::codegen::{BoxFuture, Service, StdError, http};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often issued workload certificates are checked for renewal (at most).
const RENEW_TICK: Duration = Duration::from_secs(10);
/// The DNS names of meshfleet's serving certificate: istiod's, so that istio-agent can use
/// meshfleet as its discovery and CA address, and meshfleet's own.
const SERVER_NAMES: [&str; 3] = [
    "istiod.istio-system.svc",
    "meshfleet.istio-system.svc",
    "localhost",
];
/// Istio's CA API.
const CREATE_CERTIFICATE_PATH: &str = "/istio.v1.auth.IstioCertificateService/CreateCertificate";

/// The mesh CA as the mTLS port uses it: the CA directory's root and each cluster's CA,
/// looked at again every `recheck` (`--ca-check-interval`: a rotation is picked up within it).
pub struct MeshCa {
    dir: PathBuf,
    recheck: Duration,
    state: Mutex<CaCache>,
}

#[derive(Default)]
struct CaCache {
    root: Option<(Arc<RootDir>, Instant)>,
    clusters: HashMap<String, (Arc<Authority>, Instant)>,
}

impl MeshCa {
    /// The CA in `dir` (made by `meshfleet ca init`); checked now, so that a broken directory
    /// fails `run` at start.
    ///
    /// # Errors
    /// The directory does not hold a usable root.
    pub fn load(dir: PathBuf, recheck: Duration) -> Result<Self, String> {
        let ca = Self {
            dir,
            recheck,
            state: Mutex::default(),
        };
        ca.root()?;
        Ok(ca)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CaCache> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn root(&self) -> Result<Arc<RootDir>, String> {
        let mut state = self.lock();
        if let Some((root, at)) = &state.root
            && at.elapsed() < self.recheck
        {
            return Ok(root.clone());
        }
        let root = Arc::new(
            RootDir::load(&self.dir)
                .map_err(|e| format!("CA directory {}: {e}", self.dir.display()))?,
        );
        state.root = Some((root.clone(), Instant::now()));
        Ok(root)
    }

    /// The CA of `cluster`, issued from the root if it has none yet.
    fn cluster(&self, cluster: &str) -> Result<Arc<Authority>, String> {
        if let Some((ca, at)) = self.lock().clusters.get(cluster)
            && at.elapsed() < self.recheck
        {
            return Ok(ca.clone());
        }
        let ca = Arc::new(
            self.root()?
                .cluster_authority(cluster, SystemTime::now())
                .map_err(|e| format!("the CA of cluster {cluster}: {e}"))?,
        );
        let mut state = self.lock();
        state
            .clusters
            .insert(cluster.to_owned(), (ca.clone(), Instant::now()));
        Ok(ca)
    }

    /// The roots workloads trust, as PEM.
    fn roots_pem(&self) -> Result<String, String> {
        Ok(self
            .root()?
            .trusted_roots()
            .iter()
            .map(Certificate::pem)
            .collect())
    }

    /// The TLS configuration of the port: a serving certificate from the root, client
    /// certificates required and verified against every trusted root.
    fn server_config(&self) -> Result<Arc<ServerConfig>, String> {
        let root = self.root()?;
        let mut store = rustls::RootCertStore::empty();
        for cert in root.trusted_roots() {
            store
                .add(CertificateDer::from(cert.der))
                .map_err(|e| format!("trusted root: {e}"))?;
        }
        let verifier = WebPkiClientVerifier::builder(Arc::new(store))
            .build()
            .map_err(|e| format!("client verifier: {e}"))?;
        let id = SpiffeId::new(root.root.trust_domain(), "istio-system", "meshfleet");
        let issued = root
            .root
            .issue_server(&id, &SERVER_NAMES, 2 * meshfleet_ca::WORKLOAD_VALIDITY)
            .map_err(|e| e.to_string())?;
        let chain = std::iter::once(&issued.certificate)
            .chain(&issued.chain)
            .map(|c| CertificateDer::from(c.der.clone()))
            .collect();
        let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())
            .map_err(|_| "the serving key does not parse".to_owned())?;
        let mut config = ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| format!("serving certificate: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// A workload certificate for `peer` from its cluster's CA, and the chain above it.
    fn issue_for(&self, peer: &Peer, ttl: Duration) -> Result<meshfleet_ca::Issued, String> {
        let id = SpiffeId::parse(&peer.identity).map_err(|e| e.to_string())?;
        self.cluster(&peer.cluster)?
            .issue_workload(&id, ttl)
            .map_err(|e| e.to_string())
    }
}

/// The SDS secrets of verified clients, issued from their cluster's CA on first use, renewed
/// when two thirds of their life have passed, and forgotten when no stream watches them.
///
/// When the trusted roots change (`meshfleet ca rotate`), every client gets the new trust
/// bundle first, with the certificate it has; certificates from the new root follow a grace
/// period later (two CA checks), once every peer trusts them: no handshake fails in between.
pub struct CaSecrets {
    ca: Arc<MeshCa>,
    ttl: Duration,
    issued: Mutex<HashMap<Peer, Issued>>,
}

struct Issued {
    tx: watch::Sender<Secrets>,
    /// `default` as last sent.
    default: Arc<Resource>,
    /// The trust bundle last sent as `ROOTCA`.
    roots: String,
    renew_at: SystemTime,
}

impl CaSecrets {
    pub fn new(ca: Arc<MeshCa>, ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            ca,
            ttl,
            issued: Mutex::default(),
        })
    }

    /// A new `default` for `peer`, and when to renew it.
    fn certificate(&self, peer: &Peer) -> Result<(Arc<Resource>, SystemTime), String> {
        let issued = self.ca.issue_for(peer, self.ttl)?;
        // The leaf and its intermediates; the roots travel as `ROOTCA`.
        let intermediates = &issued.chain[..issued.chain.len().saturating_sub(1)];
        let chain: String = std::iter::once(&issued.certificate)
            .chain(intermediates)
            .map(Certificate::pem)
            .collect();
        let default = Secret {
            name: SDS_DEFAULT.to_owned(),
            r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
                certificate_chain: Some(inline(chain.into_bytes())),
                private_key: Some(inline(issued.key_pem.clone().into_bytes())),
                ..Default::default()
            })),
        };
        let renew_at = SystemTime::now() + self.ttl * 2 / 3;
        Ok((
            Arc::new(Resource::new(SDS_DEFAULT, SECRET, &default)),
            renew_at,
        ))
    }

    /// Renews what is due and forgets what nobody watches; runs until the process ends.
    pub async fn renew_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.ca.recheck.min(RENEW_TICK));
        loop {
            tick.tick().await;
            let this = self.clone();
            // Signing is CPU work: off the runtime.
            if tokio::task::spawn_blocking(move || this.renew_due())
                .await
                .is_err()
            {
                tracing::error!("renewing workload certificates panicked");
            }
        }
    }

    fn renew_due(&self) {
        let roots = match self.ca.roots_pem() {
            Ok(roots) => roots,
            Err(error) => {
                tracing::warn!(%error, "cannot read the trusted roots; certificates stay as they are");
                return;
            }
        };
        let now = SystemTime::now();
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        issued.retain(|_, entry| entry.tx.receiver_count() > 0);
        for (peer, entry) in issued.iter_mut() {
            if entry.roots != roots {
                // The bundle first; the certificate once every peer trusts the new root.
                entry.roots.clone_from(&roots);
                entry.renew_at = entry.renew_at.min(now + self.ca.recheck * 2);
                entry.tx.send_replace(secrets(&entry.default, &roots));
                tracing::info!(identity = %peer.identity, "sent the new trust bundle");
                continue;
            }
            if now < entry.renew_at {
                continue;
            }
            match self.certificate(peer) {
                Ok((default, renew_at)) => {
                    entry.tx.send_replace(secrets(&default, &roots));
                    entry.default = default;
                    entry.renew_at = renew_at;
                    tracing::info!(identity = %peer.identity, cluster = %peer.cluster, "renewed a workload certificate");
                }
                Err(error) => {
                    tracing::warn!(identity = %peer.identity, %error, "cannot renew a workload certificate; the current one stays");
                }
            }
        }
    }
}

/// `default` and `ROOTCA` (`roots`, PEM).
fn secrets(default: &Arc<Resource>, roots: &str) -> Secrets {
    let root_ca = Secret {
        name: SDS_ROOT.to_owned(),
        r#type: Some(secret::Type::ValidationContext(
            CertificateValidationContext {
                trusted_ca: Some(inline(roots.as_bytes().to_vec())),
                ..Default::default()
            },
        )),
    };
    Arc::from(vec![
        default.clone(),
        Arc::new(Resource::new(SDS_ROOT, SECRET, &root_ca)),
    ])
}

impl SecretSource for CaSecrets {
    fn watch(&self, peer: &Peer) -> Result<watch::Receiver<Secrets>, String> {
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = issued.get(peer) {
            return Ok(entry.tx.subscribe());
        }
        let roots = self.ca.roots_pem()?;
        let (default, renew_at) = self.certificate(peer)?;
        let (tx, rx) = watch::channel(secrets(&default, &roots));
        issued.insert(
            peer.clone(),
            Issued {
                tx,
                default,
                roots,
                renew_at,
            },
        );
        Ok(rx)
    }
}

fn inline(bytes: Vec<u8>) -> DataSource {
    DataSource {
        specifier: Some(Specifier::InlineBytes(bytes)),
        ..Default::default()
    }
}

/// A connection whose client certificate was verified, with who it is.
struct Verified {
    io: TlsStream<TcpStream>,
    peer: Peer,
}

impl tonic::transport::server::Connected for Verified {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl AsyncRead for Verified {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Verified {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The caller a verified connection speaks for: the one SPIFFE ID of its certificate, in the
/// mesh's trust domain, and the cluster of the CA that issued it.
fn peer_of(conn: &rustls::ServerConnection, trust_domain: &str) -> Result<Peer, String> {
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("no client certificate")?;
    let cert = Certificate {
        der: leaf.to_vec(),
        name: "client certificate".to_owned(),
    };
    let id = check::workload(&cert, trust_domain).map_err(|e| e.to_string())?;
    let cluster = check::issuing_cluster(&cert)
        .ok_or("the issuing CA names no cluster (L=) in its subject")?;
    Ok(Peer {
        identity: id.to_string(),
        cluster,
    })
}

/// Serves ADS (with SDS) and the CA API on `listener` until the process ends.
pub async fn serve(
    listener: TcpListener,
    ads: AdsServer,
    ca: Arc<MeshCa>,
    ttl: Duration,
    streams_per_connection: u32,
) {
    let (tx, rx) = mpsc::channel::<Verified>(64);
    tokio::spawn(accept_loop(listener, ca.clone(), tx));
    let incoming =
        tokio_stream::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(rx), |v| {
            Ok::<_, io::Error>(v)
        });
    let result = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .max_concurrent_streams(Some(streams_per_connection))
        .add_service(ads.into_service())
        .add_service(CertificateService { ca, max_ttl: ttl })
        .serve_with_incoming(incoming)
        .await;
    if let Err(error) = result {
        tracing::error!(%error, "mTLS xDS server stopped");
    }
}

/// The TLS configuration new connections get, and when it was made.
struct Held {
    acceptor: TlsAcceptor,
    trust_domain: String,
    made: Instant,
}

/// Accepts connections, runs their handshakes concurrently, and hands on the verified ones.
async fn accept_loop(listener: TcpListener, ca: Arc<MeshCa>, tx: mpsc::Sender<Verified>) {
    let mut held = None;
    loop {
        let (tcp, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "mTLS accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // As tonic sets it on the connections it accepts itself: without it, the handshake's
        // last flight and each small xDS response wait for a delayed ACK (40 ms).
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%from, %error, "cannot set TCP_NODELAY");
        }
        refresh(&ca, &mut held).await;
        let Some(Held {
            acceptor,
            trust_domain,
            ..
        }) = &held
        else {
            continue;
        };
        let (acceptor, trust_domain, tx) = (acceptor.clone(), trust_domain.clone(), tx.clone());
        tokio::spawn(async move {
            match handshake(acceptor, tcp, &trust_domain).await {
                Ok(verified) => {
                    tracing::debug!(%from, identity = %verified.peer.identity, "mTLS client verified");
                    let _ = tx.send(verified).await;
                }
                Err(reason) => tracing::info!(%from, %reason, "mTLS client refused"),
            }
        });
    }
}

/// Makes the configuration again when it is older than the CA's check interval (a rotated
/// root, a renewed serving certificate). A CA that cannot be used keeps the last configuration.
async fn refresh(ca: &Arc<MeshCa>, held: &mut Option<Held>) {
    if held.as_ref().is_some_and(|h| h.made.elapsed() < ca.recheck) {
        return;
    }
    let ca = ca.clone();
    let made = tokio::task::spawn_blocking(move || {
        let trust_domain = ca.root()?.root.trust_domain().to_owned();
        Ok::<_, String>((ca.server_config()?, trust_domain))
    })
    .await;
    match made {
        Ok(Ok((config, trust_domain))) => {
            *held = Some(Held {
                acceptor: TlsAcceptor::from(config),
                trust_domain,
                made: Instant::now(),
            });
        }
        Ok(Err(error)) => tracing::error!(%error, "the mTLS port keeps its last configuration"),
        Err(_) => tracing::error!("making the mTLS configuration panicked"),
    }
}

async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    trust_domain: &str,
) -> Result<Verified, String> {
    let io = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
        .await
        .map_err(|_| "TLS handshake timed out".to_owned())?
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let peer = peer_of(io.get_ref().1, trust_domain)?;
    Ok(Verified { io, peer })
}

/// Istio's `IstioCertificateRequest` (`security/proto/providers/istio/v1/auth/ca.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct IstioCertificateRequest {
    /// PEM-encoded PKCS#10 request.
    #[prost(string, tag = "1")]
    pub csr: String,
    /// Requested validity, in seconds.
    #[prost(int64, tag = "3")]
    pub validity_duration: i64,
}

/// Istio's `IstioCertificateResponse`: the leaf first, the root last.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IstioCertificateResponse {
    #[prost(string, repeated, tag = "1")]
    pub cert_chain: Vec<String>,
}

/// `istio.v1.auth.IstioCertificateService`, for callers the port verified.
#[derive(Clone)]
struct CertificateService {
    ca: Arc<MeshCa>,
    /// The longest validity granted (and the default).
    max_ttl: Duration,
}

impl NamedService for CertificateService {
    const NAME: &'static str = "istio.v1.auth.IstioCertificateService";
}

impl<B> Service<http::Request<B>> for CertificateService
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let service = self.clone();
        if req.uri().path() != CREATE_CERTIFICATE_PATH {
            return Box::pin(async { Ok(Status::unimplemented("").into_http()) });
        }
        Box::pin(async move {
            let codec =
                MessageCodec::<IstioCertificateResponse, IstioCertificateRequest>::default();
            Ok(Grpc::new(codec).unary(service, req).await)
        })
    }
}

impl UnaryService<IstioCertificateRequest> for CertificateService {
    type Response = IstioCertificateResponse;
    type Future = BoxFuture<Response<IstioCertificateResponse>, Status>;

    fn call(&mut self, request: Request<IstioCertificateRequest>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move {
            let peer = request
                .extensions()
                .get::<Peer>()
                .cloned()
                .ok_or_else(|| Status::unauthenticated("no verified client certificate"))?;
            let req = request.into_inner();
            tokio::task::spawn_blocking(move || service.create(&peer, &req))
                .await
                .map_err(|_| Status::internal("signing panicked"))?
                .map(Response::new)
        })
    }
}

impl CertificateService {
    /// Signs `req` for `peer`'s own identity, as Istio's CA signs an istio-agent's CSR.
    fn create(
        &self,
        peer: &Peer,
        req: &IstioCertificateRequest,
    ) -> Result<IstioCertificateResponse, Status> {
        let caller =
            SpiffeId::parse(&peer.identity).map_err(|e| Status::unauthenticated(e.to_string()))?;
        let ttl = u64::try_from(req.validity_duration)
            .ok()
            .filter(|s| *s > 0)
            .map_or(self.max_ttl, |s| Duration::from_secs(s).min(self.max_ttl));
        let ca = self
            .ca
            .cluster(&peer.cluster)
            .map_err(Status::failed_precondition)?;
        let issued = ca.sign_csr(&req.csr, &caller, ttl).map_err(|e| match e {
            meshfleet_ca::CaError::Refused { .. } => Status::permission_denied(e.to_string()),
            _ => Status::invalid_argument(e.to_string()),
        })?;
        tracing::info!(identity = %peer.identity, cluster = %peer.cluster, "signed a certificate request");
        let cert_chain = std::iter::once(&issued.certificate)
            .chain(&issued.chain)
            .map(Certificate::pem)
            .collect();
        Ok(IstioCertificateResponse { cert_chain })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshfleet_ca::Algorithm;
    use meshfleet_xds::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
    use prost::Message;

    fn peer() -> Peer {
        Peer {
            identity: "spiffe://cluster.local/ns/shop/sa/client".to_owned(),
            cluster: "east-1".to_owned(),
        }
    }

    fn root() -> Authority {
        Authority::generate_root(
            "cluster.local",
            Algorithm::EcdsaP256,
            Duration::from_secs(3600),
        )
        .unwrap()
    }

    /// (`default`'s certificate chain, `ROOTCA`'s bundle) of `secrets`, as PEM.
    fn decoded(secrets: &Secrets) -> (String, String) {
        let mut out = (String::new(), String::new());
        for r in secrets.iter() {
            let secret = Secret::decode(r.body.to_vec().as_slice()).unwrap();
            let text = |d: Option<DataSource>| match d.and_then(|d| d.specifier) {
                Some(Specifier::InlineBytes(b)) => String::from_utf8(b).unwrap(),
                other => panic!("inline bytes: {other:?}"),
            };
            match secret.r#type.unwrap() {
                secret::Type::TlsCertificate(c) => out.0 = text(c.certificate_chain),
                secret::Type::ValidationContext(v) => out.1 = text(v.trusted_ca),
                other => panic!("{other:?}"),
            }
        }
        out
    }

    #[test]
    fn a_new_root_is_trusted_everywhere_before_certificates_come_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let old = root();
        RootDir::create(dir.path(), &old).unwrap();
        let recheck = Duration::from_millis(100);
        let ca = Arc::new(MeshCa::load(dir.path().to_owned(), recheck).unwrap());
        let secrets = CaSecrets::new(ca, Duration::from_secs(3600));
        let mut rx = secrets.watch(&peer()).unwrap();
        let (first_cert, first_roots) = decoded(&rx.borrow_and_update());
        assert_eq!(first_roots, old.certificate().pem());

        let new = root();
        RootDir::rotate(dir.path(), &new).unwrap();
        std::thread::sleep(recheck);
        secrets.renew_due();
        assert!(rx.has_changed().unwrap());
        let (cert, roots) = decoded(&rx.borrow_and_update());
        assert_eq!(
            cert, first_cert,
            "the certificate stays while the bundle spreads"
        );
        assert_eq!(roots, new.certificate().pem() + &old.certificate().pem());

        // Within the grace period nothing more; after it, a certificate from the new root.
        secrets.renew_due();
        assert!(!rx.has_changed().unwrap());
        std::thread::sleep(recheck * 2);
        secrets.renew_due();
        let (cert, roots) = decoded(&rx.borrow_and_update());
        assert_ne!(cert, first_cert);
        assert_eq!(roots, new.certificate().pem() + &old.certificate().pem());
        let chain = meshfleet_ca::parse_certificates("chain", &cert).unwrap();
        let root = [new.certificate().clone()];
        check::chain(&[chain, root.to_vec()].concat(), None).unwrap();
    }

    #[test]
    fn a_callers_cluster_is_the_one_its_issuing_ca_names() {
        let dir = tempfile::tempdir().unwrap();
        RootDir::create(dir.path(), &root()).unwrap();
        let store = RootDir::load(dir.path()).unwrap();
        let east = store
            .cluster_authority("east-1", SystemTime::now())
            .unwrap();
        let id = SpiffeId::parse("spiffe://cluster.local/ns/shop/sa/client").unwrap();
        let leaf = east
            .issue_workload(&id, Duration::from_secs(60))
            .unwrap()
            .certificate;
        assert_eq!(check::issuing_cluster(&leaf).as_deref(), Some("east-1"));
        assert_eq!(check::workload(&leaf, "cluster.local").unwrap(), id);
        // Signed by the root itself: no cluster to serve it from.
        let server = store
            .root
            .issue_server(&id, &["localhost"], Duration::from_secs(60))
            .unwrap()
            .certificate;
        assert_eq!(check::issuing_cluster(&server), None);
    }
}
