//! DNS over UDP without a task per query: a query the table answers (the common case) is
//! decoded, answered and encoded in the receive loop itself, and sent back at once. Everything
//! else (names to forward, opcodes other than QUERY, questions that do not decode) goes to the
//! handler on a task of its own, as hickory-server would treat it.
//!
//! ```text
//!  recv_from ──> answer_from_table ──Some──> send_to
//!                        └──None──> spawn: answer_datagram (hickory's path) or FORMERR
//! ```
//!
//! One receive loop per core shares the socket: the kernel hands each datagram to one of them.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName};
use tokio::net::UdpSocket;

use crate::server::{DnsHandler, answer_datagram};
use crate::table::{Answer, NameTable};

/// The largest datagram read: EDNS allows up to 64 KiB, but a query is a few hundred bytes.
const MAX_QUERY: usize = 4096;
/// Queries on the slow path at once (each a task, some waiting seconds for an upstream);
/// beyond this a datagram is dropped, as a full socket buffer would drop it.
const MAX_SLOW: usize = 4096;

/// Serves `handler` on `socket` until the socket fails.
pub(crate) async fn serve_udp(socket: UdpSocket, handler: Arc<DnsHandler>) {
    let socket = Arc::new(socket);
    let slow = Arc::new(tokio::sync::Semaphore::new(MAX_SLOW));
    let loops = std::thread::available_parallelism().map_or(1, usize::from);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..loops {
        tasks.spawn(receive_loop(socket.clone(), handler.clone(), slow.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

async fn receive_loop(
    socket: Arc<UdpSocket>,
    handler: Arc<DnsHandler>,
    slow: Arc<tokio::sync::Semaphore>,
) {
    let mut buf = vec![0u8; MAX_QUERY];
    loop {
        let (n, src) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(error) => {
                // ICMP errors from earlier sends surface here on some systems: keep going, but
                // never spin on an error that repeats.
                tracing::debug!(%error, "DNS: receiving over UDP");
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                continue;
            }
        };
        let packet = &buf[..n];
        let zone = handler.zone_of(src.ip());
        if let Some(response) = answer_from_table(
            &handler.table(),
            packet,
            zone,
            handler.recursion_available(),
        ) {
            let _ = socket.send_to(&response, src).await;
            continue;
        }
        let Ok(permit) = slow.clone().try_acquire_owned() else {
            tracing::debug!(%src, "DNS: too many queries on the slow path, one dropped");
            continue;
        };
        let (socket, handler, packet) = (socket.clone(), handler.clone(), packet.to_vec());
        tokio::spawn(async move {
            let _permit = permit;
            if let Some(response) = slow_path(&handler, &packet, src).await {
                let _ = socket.send_to(&response, src).await;
            }
        });
    }
}

/// hickory-server's treatment: the handler's answer, else FORMERR when the header decodes
/// but the rest does not (nothing for a response or fewer than 12 bytes).
async fn slow_path(handler: &DnsHandler, packet: &[u8], src: SocketAddr) -> Option<Vec<u8>> {
    if let Some(response) = answer_datagram(handler, packet, src).await {
        return Some(response);
    }
    if packet.len() < 12 || packet[2] & 0x80 != 0 {
        return None;
    }
    if Message::from_vec(packet).is_ok() {
        // It decoded: the handler chose to send nothing.
        return None;
    }
    // Header of the query, QR set, RCODE FORMERR, no sections.
    let mut header = packet[..12].to_vec();
    header[2] = (header[2] & 0x79) | 0x80;
    header[3] = (header[3] & 0xf0) | 1;
    header[4..12].fill(0);
    Some(header)
}

/// The response to `packet` when it is a plain query the table answers (one question, class
/// IN, opcode QUERY, a name under meshfleet's zones), encoded for UDP: truncated (TC, no
/// records) beyond 512 bytes, or the client's EDNS size up to 1232. `None`: anything else.
pub fn answer_from_table(
    table: &NameTable,
    packet: &[u8],
    zone: Option<&str>,
    recursion_available: bool,
) -> Option<Vec<u8>> {
    let request = Message::from_vec(packet).ok()?;
    let meta = &request.metadata;
    if meta.message_type != MessageType::Query
        || meta.op_code != OpCode::Query
        || request.queries.len() != 1
        || !request.answers.is_empty()
        || !request.authorities.is_empty()
    {
        return None;
    }
    let query = &request.queries[0];
    if query.query_class() != DNSClass::IN {
        return None;
    }
    let name = LowerName::from(query.name());
    let (code, answers, soa) = match table.answer(&name, query.query_type(), zone) {
        Answer::Records(records) => (ResponseCode::NoError, records, None),
        Answer::NoData { soa } => (ResponseCode::NoError, Vec::new(), Some(soa)),
        Answer::NxDomain { soa } => (ResponseCode::NXDomain, Vec::new(), Some(soa)),
        Answer::NotOurs => return None,
    };
    let mut metadata = Metadata::response_from_request(meta);
    metadata.response_code = code;
    metadata.authoritative = true;
    metadata.recursion_available = recursion_available;
    let max = request.edns.as_ref().map_or(512, |e| {
        e.max_payload().clamp(512, crate::server::EDNS_PAYLOAD)
    });
    let mut response = Message::new(meta.id, MessageType::Response, OpCode::Query);
    response.metadata = metadata;
    response.queries = request.queries;
    response.answers = answers;
    response.authorities = soa.into_iter().collect();
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(crate::server::EDNS_PAYLOAD);
        response.edns = Some(edns);
    }
    let bytes = response.to_vec().ok()?;
    if bytes.len() <= usize::from(max) {
        return Some(bytes);
    }
    response.metadata.truncation = true;
    response.answers.clear();
    response.authorities.clear();
    response.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::{Name, RecordType};

    fn table() -> NameTable {
        crate::table::tests::table(&crate::table::tests::two_services()).0
    }

    fn query(name: &str, ty: RecordType, edns: Option<u16>) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 42;
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), ty));
        if let Some(size) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            m.edns = Some(e);
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn the_table_answers_in_place_as_the_handler_would() {
        let table = table();
        let bytes = answer_from_table(
            &table,
            &query("echo.demo.global.", RecordType::A, None),
            None,
            true,
        )
        .unwrap();
        let r = Message::from_vec(&bytes).unwrap();
        assert_eq!(r.metadata.id, 42);
        assert_eq!(r.metadata.message_type, MessageType::Response);
        assert!(r.metadata.authoritative && r.metadata.recursion_desired);
        assert!(r.metadata.recursion_available);
        assert_eq!(r.answers.len(), 1);
        assert!(r.edns.is_none(), "no EDNS in the query, none in the answer");

        let bytes = answer_from_table(
            &table,
            &query("nope.demo.global.", RecordType::A, Some(4096)),
            None,
            false,
        )
        .unwrap();
        let r = Message::from_vec(&bytes).unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(r.authorities.len(), 1, "the SOA");
        assert_eq!(r.edns.as_ref().map(Edns::max_payload), Some(1232));
    }

    #[test]
    fn anything_else_goes_the_slow_way() {
        let table = table();
        // Not ours: forwarded by the handler.
        let q = query("example.com.", RecordType::A, None);
        assert!(answer_from_table(&table, &q, None, true).is_none());
        // Not a query, or not a valid one.
        let mut response = query("echo.demo.global.", RecordType::A, None);
        response[2] |= 0x80;
        assert!(answer_from_table(&table, &response, None, true).is_none());
        assert!(answer_from_table(&table, &[0u8; 5], None, true).is_none());
        let mut status = query("echo.demo.global.", RecordType::A, None);
        status[2] = (status[2] & 0x87) | (2 << 3);
        assert!(answer_from_table(&table, &status, None, true).is_none());
    }

    #[test]
    fn too_big_for_the_clients_size_is_truncated() {
        let mut svc = crate::table::tests::two_services();
        let mut db = meshfleet_model::GlobalService::clone(&svc.services["db.shop.global"]);
        let template = db.ports[0].endpoints[0].clone();
        db.ports[0].endpoints = (0..60)
            .map(|i| {
                let mut e = template.clone();
                e.address = format!("10.9.0.{i}");
                e
            })
            .collect();
        svc.services
            .insert("db.shop.global".to_owned(), Arc::new(db));
        let table = crate::table::tests::table(&svc).0;
        let q = query("db.shop.global.", RecordType::A, None);
        let r = Message::from_vec(&answer_from_table(&table, &q, None, false).unwrap()).unwrap();
        assert!(r.metadata.truncation);
        assert!(r.answers.is_empty());
        let q = query("db.shop.global.", RecordType::A, Some(4096));
        let bytes = answer_from_table(&table, &q, None, false).unwrap();
        assert!(bytes.len() <= 1232);
        let r = Message::from_vec(&bytes).unwrap();
        assert!(
            !r.metadata.truncation,
            "62 A records (16 bytes each) fit in 1232 bytes"
        );
        assert_eq!(r.answers.len(), 62, "the 60, and the two of the other port");
    }
}
