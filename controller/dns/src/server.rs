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
use hickory_server::net::runtime::Time;
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
const EDNS_PAYLOAD: u16 = 1232;

/// A resolver for names outside meshfleet's zones: `upstreams` (address and port), or the
/// system's (`/etc/resolv.conf`) when none are given.
///
/// # Errors
/// The system configuration cannot be read, or the resolver cannot be built.
pub fn forwarder(upstreams: &[SocketAddr]) -> Result<TokioResolver, String> {
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
}

impl DnsHandler {
    /// `upstream`: where other names go; `None` refuses them.
    pub fn new(table: watch::Receiver<Arc<NameTable>>, upstream: Option<TokioResolver>) -> Self {
        Self {
            table,
            upstream,
            zones: ClientZones::default(),
        }
    }

    /// Tells clients' zones apart by their source addresses.
    pub fn with_zones(mut self, zones: ClientZones) -> Self {
        self.zones = zones;
        self
    }
}

/// Serves `handler` on `udp` and `tcp` until the process ends.
pub async fn serve(udp: UdpSocket, tcp: TcpListener, handler: DnsHandler) {
    let mut server = hickory_server::Server::new(handler);
    server.register_socket(udp);
    server.register_listener(tcp, TCP_TIMEOUT, 64);
    if let Err(error) = server.block_until_done().await {
        tracing::error!(%error, "DNS server stopped");
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
            Answer::NotOurs => self.forward(&info.query.name().to_string(), ty).await,
        }
    }

    async fn forward(&self, name: &str, ty: hickory_proto::rr::RecordType) -> Reply {
        let Some(upstream) = &self.upstream else {
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
