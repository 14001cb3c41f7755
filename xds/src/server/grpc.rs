//! The ADS gRPC service, with a SotW response path that writes the cache's encoded bodies
//! straight into the gRPC frame.
//!
//! ```text
//!  Sotw::on_* ──> Prepared { DiscoveryResponse without resources, [Arc<Resource>] }
//!               ──mpsc──> tonic EncodeBody ──PreparedEncoder──> frame:
//!                 [version_info][resources: Any{type_url, value = body chunks}...][rest]
//! ```
//!
//! The generated `AggregatedDiscoveryServiceServer` would need a `DiscoveryResponse`, whose
//! `Any` values are copies of every body; here a body's chunks are copied once, into the frame.
//! Fields are written in tag order, as prost writes them, so the frame is byte for byte the
//! encoding of [`Prepared::into_message`]. Delta streams use plain prost encoding.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use prost::Message;
use prost::bytes::BufMut;
use prost::encoding::{self, WireType};
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{BoxFuture, Context, Poll, Service, StdError, http};
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Request, Response, Status, Streaming};

use crate::resource::Resource;
use crate::server::{AdsServer, Peer, ResponseStream};

const SOTW_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const DELTA_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";
/// `DiscoveryResponse.version_info`, `.resources`; `Any.type_url`, `.value`.
const VERSION_INFO_FIELD: u32 = 1;
const RESOURCES_FIELD: u32 = 2;
const TYPE_URL_FIELD: u32 = 1;
const VALUE_FIELD: u32 = 2;
/// Initial size of a stream's request buffer: requests are small, and the buffer grows for
/// the rare big one (a CDS subscription by name).
const REQUEST_BUFFER: usize = 1024;
/// tonic's default: how much is buffered before it is handed to the transport.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// A SotW response whose resources are still the cache's encoded bodies.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prepared {
    /// The response; `resources` holds only what is not a cache resource (syncz).
    pub message: DiscoveryResponse,
    /// Resources sent after `message.resources`, in order.
    pub bodies: Vec<Arc<Resource>>,
}

impl Prepared {
    /// The response as one message, with copies of the bodies.
    pub fn into_message(self) -> DiscoveryResponse {
        let mut message = self.message;
        message
            .resources
            .extend(self.bodies.iter().map(|r| r.body.to_any()));
        message
    }

    /// Length of the body's `Any` message.
    fn any_len(r: &Resource) -> usize {
        let value = match r.body.len() {
            0 => 0,
            len => encoding::key_len(VALUE_FIELD) + encoding::encoded_len_varint(len as u64) + len,
        };
        str_len(TYPE_URL_FIELD, r.type_url()) + value
    }

    /// Writes what encoding [`Prepared::into_message`] would write into `buf`.
    fn encode_into(self, buf: &mut impl BufMut) -> Result<(), prost::EncodeError> {
        let Self {
            mut message,
            bodies,
        } = self;
        let version = std::mem::take(&mut message.version_info);
        let resources = std::mem::take(&mut message.resources);
        if !version.is_empty() {
            encoding::string::encode(VERSION_INFO_FIELD, &version, buf);
        }
        encoding::message::encode_repeated(RESOURCES_FIELD, &resources, buf);
        for r in &bodies {
            encoding::encode_key(RESOURCES_FIELD, WireType::LengthDelimited, buf);
            encoding::encode_varint(Self::any_len(r) as u64, buf);
            put_str(TYPE_URL_FIELD, r.type_url(), buf);
            if !r.body.is_empty() {
                encoding::encode_key(VALUE_FIELD, WireType::LengthDelimited, buf);
                encoding::encode_varint(r.body.len() as u64, buf);
                for chunk in r.body.chunks() {
                    buf.put_slice(chunk);
                }
            }
        }
        // Every field left has a tag above `resources`.
        message.encode(buf)
    }

    pub(super) fn encoded_len(&self) -> usize {
        let bodies: usize = self
            .bodies
            .iter()
            .map(|r| {
                let len = Self::any_len(r);
                encoding::key_len(RESOURCES_FIELD) + encoding::encoded_len_varint(len as u64) + len
            })
            .sum();
        self.message.encoded_len() + bodies
    }
}

/// Length of string field `tag` holding `value` (never empty here).
fn str_len(tag: u32, value: &str) -> usize {
    encoding::key_len(tag) + encoding::encoded_len_varint(value.len() as u64) + value.len()
}

fn put_str(tag: u32, value: &str, buf: &mut impl BufMut) {
    encoding::encode_key(tag, WireType::LengthDelimited, buf);
    encoding::encode_varint(value.len() as u64, buf);
    buf.put_slice(value.as_bytes());
}

/// SotW: requests decoded by prost, [`Prepared`] responses written as they are.
#[derive(Clone, Copy, Debug, Default)]
struct SotwCodec;

impl Codec for SotwCodec {
    type Encode = Prepared;
    type Decode = DiscoveryRequest;
    type Encoder = PreparedEncoder;
    type Decoder = ProstDecoder<DiscoveryRequest>;

    fn encoder(&mut self) -> PreparedEncoder {
        PreparedEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder(PhantomData)
    }
}

/// Delta: prost both ways.
type DeltaCodec = MessageCodec<DeltaDiscoveryResponse, DeltaDiscoveryRequest>;

/// A gRPC codec of prost messages: responses of `E`, requests of `D` (whose decoding errors
/// are `INVALID_ARGUMENT`).
#[derive(Debug)]
pub struct MessageCodec<E, D>(PhantomData<fn() -> (E, D)>);

impl<E, D> Default for MessageCodec<E, D> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<E, D> Codec for MessageCodec<E, D>
where
    E: Message + Send + 'static,
    D: Message + Default + Send + 'static,
{
    type Encode = E;
    type Decode = D;
    type Encoder = ProstEncoder<E>;
    type Decoder = ProstDecoder<D>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder(PhantomData)
    }
}

struct PreparedEncoder;

impl Encoder for PreparedEncoder {
    type Item = Prepared;
    type Error = Status;

    fn encode(&mut self, item: Prepared, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        // Exactly: the stream's buffer keeps the size of its largest response.
        dst.reserve(item.encoded_len());
        item.encode_into(dst).map_err(encode_error)
    }
}

pub struct ProstEncoder<M>(PhantomData<M>);

impl<M: Message> Encoder for ProstEncoder<M> {
    type Item = M;
    type Error = Status;

    fn encode(&mut self, item: M, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.encoded_len());
        item.encode(dst).map_err(encode_error)
    }
}

fn encode_error(e: prost::EncodeError) -> Status {
    Status::internal(e.to_string())
}

pub struct ProstDecoder<M>(PhantomData<M>);

impl<M: Message + Default> Decoder for ProstDecoder<M> {
    type Item = M;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<M>, Status> {
        M::decode(src)
            .map(Some)
            .map_err(|e| Status::invalid_argument(e.to_string()))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::new(REQUEST_BUFFER, YIELD_THRESHOLD)
    }
}

/// The ADS service as tonic serves it: `StreamAggregatedResources` and
/// `DeltaAggregatedResources`, with the message size limits of its [`crate::server::Limits`].
#[derive(Clone)]
pub struct AdsService {
    /// Streams, status and metrics.
    server: AdsServer,
}

impl AdsService {
    pub(super) fn new(server: AdsServer) -> Self {
        Self { server }
    }
}

impl NamedService for AdsService {
    const NAME: &'static str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
}

impl<B> Service<http::Request<B>> for AdsService
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let server = self.server.clone();
        let (decode, encode) = (
            Some(server.limits().max_request_bytes),
            Some(server.limits().max_response_bytes),
        );
        match req.uri().path() {
            SOTW_PATH => Box::pin(async move {
                let mut grpc = Grpc::new(SotwCodec).apply_max_message_size_config(decode, encode);
                Ok(grpc.streaming(SotwMethod(server), req).await)
            }),
            DELTA_PATH => Box::pin(async move {
                let mut grpc =
                    Grpc::new(DeltaCodec::default()).apply_max_message_size_config(decode, encode);
                Ok(grpc.streaming(DeltaMethod(server), req).await)
            }),
            _ => Box::pin(async { Ok(Status::unimplemented("").into_http()) }),
        }
    }
}

/// `StreamAggregatedResources`.
struct SotwMethod(AdsServer);

impl StreamingService<DiscoveryRequest> for SotwMethod {
    type Response = Prepared;
    type ResponseStream = ResponseStream<Prepared>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<DiscoveryRequest>>) -> Self::Future {
        let peer = request.extensions().get::<Peer>().cloned();
        let responses = self.0.serve_sotw_for(request.into_inner(), peer);
        Box::pin(async move { Ok(Response::new(Box::pin(responses) as ResponseStream<_>)) })
    }
}

/// `DeltaAggregatedResources`.
struct DeltaMethod(AdsServer);

impl StreamingService<DeltaDiscoveryRequest> for DeltaMethod {
    type Response = DeltaDiscoveryResponse;
    type ResponseStream = ResponseStream<DeltaDiscoveryResponse>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<DeltaDiscoveryRequest>>) -> Self::Future {
        let peer = request.extensions().get::<Peer>().cloned();
        let responses = self.0.serve_delta_for(request.into_inner(), peer);
        Box::pin(async move { Ok(Response::new(Box::pin(responses) as ResponseStream<_>)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::SnapshotCache;
    use crate::cache::fixtures::{key, two_services};
    use crate::resource::{CLUSTER, ENDPOINT};
    use envoy_types::pb::envoy::config::core::v3::ControlPlane;
    use envoy_types::pb::google::protobuf::Any;

    #[test]
    fn prepared_responses_encode_as_the_whole_message() {
        let cache = SnapshotCache::new();
        cache.set_mesh(two_services());
        let snapshot = cache.watch(&key("us-east/us-east-1a/")).borrow().clone();
        let bodies: Vec<Arc<Resource>> = snapshot
            .iter(CLUSTER)
            .chain(snapshot.iter(ENDPOINT))
            .cloned()
            .collect();
        let empty = Arc::new(Resource::from_chunks("empty", ENDPOINT, Vec::new()));
        let full = DiscoveryResponse {
            version_info: "v1".to_owned(),
            resources: vec![Any {
                type_url: "istio.io/debug/syncz".to_owned(),
                value: vec![1, 2, 3],
            }],
            type_url: ENDPOINT.to_owned(),
            nonce: "7".to_owned(),
            control_plane: Some(ControlPlane {
                identifier: "meshfleet".to_owned(),
            }),
            ..Default::default()
        };
        let cases = [
            Prepared {
                message: full.clone(),
                bodies: bodies.clone(),
            },
            Prepared {
                message: DiscoveryResponse::default(),
                bodies: vec![empty],
            },
            Prepared {
                message: full,
                bodies: Vec::new(),
            },
            Prepared::default(),
        ];
        for prepared in cases {
            let expected = prepared.clone().into_message().encode_to_vec();
            assert_eq!(prepared.encoded_len(), expected.len());
            let mut buf = Vec::new();
            prepared.encode_into(&mut buf).unwrap();
            assert_eq!(buf, expected);
        }
    }
}
