//! The DNS server: hickory-server's UDP and TCP transport, answers from the current
//! [`NameTable`] for meshfleet's zones (authoritative), everything else forwarded through
//! hickory-resolver (with its cache) to upstream resolvers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::Record;
use hickory_resolver::Resolver;
pub use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_server::net::runtime::{Time, TokioTime};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

use crate::table::{Answer, NameTable};
use crate::zones::ClientZones;

/// How long a TCP client may stay idle between queries.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one upstream query may take (tried twice).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// EDNS payload size meshfleet advertises (the DNS flag day's 1232 bytes).
pub(crate) const EDNS_PAYLOAD: u16 = 1232;
/// Forwarded queries waiting for an upstream, over all clients and per client address: a
/// flood of names outside the mesh is refused beyond these, instead of holding a task and a
/// lookup per query for seconds. Answers from the table are never limited.
const MAX_FORWARDS: usize = 1024;
const MAX_FORWARDS_PER_SOURCE: usize = 64;

/// A resolver for names outside meshfleet's zones: `upstreams` (address and port), or the
/// system's (`/etc/resolv.conf`) when none are given.
///
/// # Errors
/// The system configuration cannot be read, or the resolver cannot be built.
pub fn forwarder(upstreams: &[SocketAddr]) -> Result<TokioResolver, String> {
    resolver(upstreams, |_| {})
}

/// A resolver for east-west gateway hostnames, against the same upstreams as [`forwarder`]:
/// both A and AAAA, as Istio resolves gateway names.
///
/// # Errors
/// As [`forwarder`].
pub fn gateway_resolver(upstreams: &[SocketAddr]) -> Result<TokioResolver, String> {
    resolver(upstreams, |options| {
        options.ip_strategy = hickory_resolver::config::LookupIpStrategy::Ipv4AndIpv6;
    })
}

fn resolver(
    upstreams: &[SocketAddr],
    configure: impl FnOnce(&mut hickory_resolver::config::ResolverOpts),
) -> Result<TokioResolver, String> {
    let mut builder = if upstreams.is_empty() {
        Resolver::builder_tokio().map_err(|e| format!("reading /etc/resolv.conf: {e}"))?
    } else {
        let servers = upstreams
            .iter()
            .map(|addr| {
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut server.connections {
                    connection.port = addr.port();
                }
                server
            })
            .collect();
        Resolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        )
    };
    let options = builder.options_mut();
    // A client's own resolver gives up after a few seconds: answer before it does.
    options.timeout = UPSTREAM_TIMEOUT;
    options.attempts = 2;
    configure(options);
    builder
        .build()
        .map_err(|e| format!("building the resolver: {e}"))
}

/// Answers queries from the latest table, and forwards the rest.
pub struct DnsHandler {
    table: watch::Receiver<Arc<NameTable>>,
    upstream: Option<TokioResolver>,
    /// A client's zone from its address: headless answers put its zone's endpoints first.
    zones: ClientZones,
    /// Forwarded queries in flight, per client address.
    forwards: Arc<InFlight>,
}

/// Forwarded queries in flight, per client address; bounded by [`MAX_FORWARDS`] and
/// [`MAX_FORWARDS_PER_SOURCE`].
#[derive(Default)]
struct InFlight {
    by_source: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// One forwarded query counted in [`InFlight`] until dropped.
struct Forwarding {
    of: Arc<InFlight>,
    source: std::net::IpAddr,
}

impl InFlight {
    /// Counts a query from `source`, unless it or everyone has too many in flight.
    fn admit(self: &Arc<Self>, source: std::net::IpAddr) -> Option<Forwarding> {
        let mut by = self.by_source.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = by.values().sum();
        let mine = by.get(&source).copied().unwrap_or(0);
        if total >= MAX_FORWARDS || mine >= MAX_FORWARDS_PER_SOURCE {
            return None;
        }
        by.insert(source, mine + 1);
        Some(Forwarding {
            of: self.clone(),
            source,
        })
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        let mut by = self.of.by_source.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = by.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                by.remove(&self.source);
            }
        }
    }
}

impl DnsHandler {
    /// `upstream`: where other names go; `None` refuses them.
    pub fn new(table: watch::Receiver<Arc<NameTable>>, upstream: Option<TokioResolver>) -> Self {
        Self {
            table,
            upstream,
            zones: ClientZones::default(),
            forwards: Arc::default(),
        }
    }

    /// Tells clients' zones apart by their source addresses.
    pub fn with_zones(mut self, zones: ClientZones) -> Self {
        self.zones = zones;
        self
    }
}

/// Serves `handler` on `udp` and `tcp` until the process ends: UDP in meshfleet's own receive
/// loops (`crate::udp`), TCP through hickory-server.
pub async fn serve(udp: UdpSocket, tcp: TcpListener, handler: DnsHandler) {
    let handler = Arc::new(handler);
    let mut server = hickory_server::Server::new(Shared(handler.clone()));
    server.register_listener(tcp, TCP_TIMEOUT, 64);
    tokio::select! {
        () = crate::udp::serve_udp(udp, handler) => tracing::error!("DNS over UDP stopped"),
        done = server.block_until_done() => if let Err(error) = done {
            tracing::error!(%error, "DNS over TCP stopped");
        },
    }
}

/// The handler, shared by the UDP loops and hickory-server's TCP side.
struct Shared(Arc<DnsHandler>);

#[async_trait::async_trait]
impl RequestHandler for Shared {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        self.0
            .handle_request::<R, T>(request, response_handle)
            .await
    }
}

impl DnsHandler {
    /// The zone of a client at `ip`, if known.
    pub(crate) fn zone_of(&self, ip: std::net::IpAddr) -> Option<&str> {
        self.zones.zone_of(ip)
    }

    /// The table as it is now.
    pub(crate) fn table(&self) -> Arc<NameTable> {
        self.table.borrow().clone()
    }

    /// Whether names outside the mesh are forwarded.
    pub(crate) fn recursion_available(&self) -> bool {
        self.upstream.is_some()
    }
}

/// One datagram through the handler, without sockets: `packet` decoded as the server decodes
/// it, answered as the handler answers it, and the response encoded as it would be sent over
/// UDP (512 bytes, or the size the response's EDNS allows; truncated beyond). `None` where the
/// server sends nothing, or leaves the answer to hickory (a header without a valid body gets
/// its FORMERR there). The fuzz target (`controller/dns/fuzz`) and tests drive this.
pub async fn answer_datagram(
    handler: &DnsHandler,
    packet: &[u8],
    src: SocketAddr,
) -> Option<Vec<u8>> {
    use hickory_proto::op::MessageType;
    let request = Request::from_bytes(packet.to_vec(), src, Protocol::Udp).ok()?;
    if request.metadata.message_type == MessageType::Response {
        return None;
    }
    // The client's size, within 512..=1232 (the response's own EDNS says 1232 to everyone).
    let max = request
        .edns
        .as_ref()
        .map_or(512, |e| e.max_payload().clamp(512, EDNS_PAYLOAD));
    let capture = Captured {
        max,
        ..Captured::default()
    };
    handler
        .handle_request::<_, TokioTime>(&request, capture.clone())
        .await;
    capture
        .bytes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
}

/// A response handler that keeps the encoded response, encoded for `max` bytes.
#[derive(Clone, Default)]
struct Captured {
    bytes: Arc<std::sync::Mutex<Option<Vec<u8>>>>,
    max: u16,
}

#[async_trait::async_trait]
impl ResponseHandler for Captured {
    async fn send_response<'a>(
        &mut self,
        response: hickory_server::zone_handler::MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, hickory_server::net::NetError> {
        use hickory_proto::serialize::binary::BinEncoder;
        let max = self.max.max(512);
        let mut buf = Vec::with_capacity(512);
        let info = {
            let mut encoder = BinEncoder::new(&mut buf);
            encoder.set_max_size(max);
            response.destructive_emit(&mut encoder)?
        };
        *self.bytes.lock().unwrap_or_else(|e| e.into_inner()) = Some(buf);
        Ok(info)
    }
}

/// What one response holds.
struct Reply {
    code: ResponseCode,
    authoritative: bool,
    answers: Vec<Record>,
    soa: Vec<Record>,
}

impl Reply {
    fn error(code: ResponseCode) -> Self {
        Self {
            code,
            authoritative: false,
            answers: Vec::new(),
            soa: Vec::new(),
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let reply = self.reply(request).await;
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = reply.code;
        metadata.authoritative = reply.authoritative;
        metadata.recursion_available = self.upstream.is_some();
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if request.edns.is_some() {
            builder.edns(&edns);
        }
        let response = builder.build(metadata, reply.answers.iter(), [], reply.soa.iter(), []);
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, src = %request.src(), "cannot send a DNS response");
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

impl DnsHandler {
    async fn reply(&self, request: &Request) -> Reply {
        if request.metadata.op_code != OpCode::Query {
            return Reply::error(ResponseCode::NotImp);
        }
        let Ok(info) = request.request_info() else {
            // Not exactly one question.
            return Reply::error(ResponseCode::FormErr);
        };
        let ty = info.query.query_type();
        let zone = self.zones.zone_of(request.src().ip());
        let answer = self.table.borrow().answer(info.query.name(), ty, zone);
        match answer {
            Answer::Records(answers) => Reply {
                code: ResponseCode::NoError,
                authoritative: true,
                answers,
                soa: Vec::new(),
            },
            Answer::NoData { soa } => Reply {
                code: ResponseCode::NoError,
                authoritative: true,
                answers: Vec::new(),
                soa: vec![soa],
            },
            Answer::NxDomain { soa } => Reply {
                code: ResponseCode::NXDomain,
                authoritative: true,
                answers: Vec::new(),
                soa: vec![soa],
            },
            Answer::NotOurs => {
                let name = info.query.name().to_string();
                self.forward(&name, ty, request.src().ip()).await
            }
        }
    }

    async fn forward(
        &self,
        name: &str,
        ty: hickory_proto::rr::RecordType,
        source: std::net::IpAddr,
    ) -> Reply {
        let Some(upstream) = &self.upstream else {
            return Reply::error(ResponseCode::Refused);
        };
        let Some(_counted) = self.forwards.admit(source) else {
            tracing::debug!(name, %source, "too many forwarded queries in flight: refused");
            return Reply::error(ResponseCode::Refused);
        };
        match upstream.lookup(name, ty).await {
            Ok(lookup) => Reply {
                code: ResponseCode::NoError,
                authoritative: false,
                answers: lookup.answers().to_vec(),
                soa: Vec::new(),
            },
            Err(error) if error.is_nx_domain() => Reply {
                code: ResponseCode::NXDomain,
                authoritative: false,
                answers: Vec::new(),
                soa: error
                    .into_soa()
                    .map(|soa| vec![soa.into_record_of_rdata()])
                    .unwrap_or_default(),
            },
            Err(error) if error.is_no_records_found() => Reply {
                code: ResponseCode::NoError,
                authoritative: false,
                answers: Vec::new(),
                soa: Vec::new(),
            },
            Err(error) => {
                tracing::debug!(name, %ty, %error, "forwarding failed");
                Reply::error(ResponseCode::ServFail)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};

    fn handler() -> DnsHandler {
        let (table, _) = crate::table::tests::table(&crate::table::tests::two_services());
        let (_tx, rx) = watch::channel(Arc::new(table));
        DnsHandler::new(rx, None)
    }

    fn query(name: &str, ty: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 7;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), ty));
        m.to_vec().unwrap()
    }

    const SRC: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 5353);

    #[tokio::test]
    async fn a_datagram_is_answered_as_the_server_answers_it() {
        let handler = handler();
        let bytes = answer_datagram(&handler, &query("echo.demo.global.", RecordType::A), SRC)
            .await
            .expect("a response");
        let response = Message::from_vec(&bytes).unwrap();
        assert_eq!(response.metadata.id, 7);
        assert_eq!(response.metadata.response_code, ResponseCode::NoError);
        assert!(response.metadata.authoritative);
        assert_eq!(response.answers.len(), 1);

        let bytes = answer_datagram(&handler, &query("nope.demo.global.", RecordType::A), SRC)
            .await
            .unwrap();
        let response = Message::from_vec(&bytes).unwrap();
        assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
        // Outside the mesh without an upstream: refused.
        let bytes = answer_datagram(&handler, &query("example.com.", RecordType::A), SRC)
            .await
            .unwrap();
        let response = Message::from_vec(&bytes).unwrap();
        assert_eq!(response.metadata.response_code, ResponseCode::Refused);
    }

    #[tokio::test]
    async fn bytes_that_are_no_query_get_nothing_here() {
        let handler = handler();
        for packet in [&b""[..], b"\x00\x01", &[0xff; 40]] {
            assert!(answer_datagram(&handler, packet, SRC).await.is_none());
        }
        // A response is never answered (no reflection).
        let mut response = query("echo.demo.global.", RecordType::A);
        response[2] |= 0x80;
        assert!(answer_datagram(&handler, &response, SRC).await.is_none());
    }

    #[test]
    fn forwards_in_flight_are_bounded_per_source_and_in_all() {
        let in_flight = Arc::new(InFlight::default());
        let a: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        let mut held: Vec<Forwarding> = (0..MAX_FORWARDS_PER_SOURCE)
            .map(|_| in_flight.admit(a).expect("under the per-source limit"))
            .collect();
        assert!(
            in_flight.admit(a).is_none(),
            "one more from the same source"
        );
        let b: std::net::IpAddr = "10.0.0.2".parse().unwrap();
        assert!(in_flight.admit(b).is_some(), "another source is admitted");
        held.pop();
        assert!(
            in_flight.admit(a).is_some(),
            "a finished query frees its place"
        );

        // In all: sources beyond the total wait too.
        let mut others = Vec::new();
        for i in 0..=(MAX_FORWARDS / MAX_FORWARDS_PER_SOURCE) as u8 {
            let source = std::net::IpAddr::from([10, 1, 0, i]);
            while let Some(f) = in_flight.admit(source) {
                others.push(f);
            }
        }
        assert_eq!(others.len() + held.len(), MAX_FORWARDS);
        drop(others);
        drop(held);
        assert!(
            in_flight.by_source.lock().unwrap().is_empty(),
            "nothing left counted"
        );
    }
}
