//! DNS under bad input: malformed and oversized queries, ANY, answers too big for UDP, and a
//! flood from one source. Each gets a correct response code (or, for bytes that are no DNS
//! message at all, nothing), the server keeps answering others, and memory stays bounded.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use crate::dns::{FLEET, dig, header, serve, short};

/// A query: header (id, RD, one question) and the question `labels` of type `qtype`, IN.
fn query(id: u16, labels: &[&[u8]], qtype: u16) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in labels {
        q.push(label.len() as u8);
        q.extend_from_slice(label);
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    q
}

/// Sends `packet` and returns the response's (id, rcode), or `None` if none came in 1 s.
async fn ask(dns: SocketAddr, packet: &[u8]) -> Option<(u16, u8)> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(packet, dns).await.unwrap();
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf))
        .await
        .ok()?
        .unwrap();
    assert!(n >= 12, "a response shorter than a header: {n} bytes");
    assert_eq!(buf[2] & 0x80, 0x80, "QR set: a response");
    Some((u16::from_be_bytes([buf[0], buf[1]]), buf[3] & 0x0f))
}

const FORMERR: u8 = 1;
const NOTIMP: u8 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_queries_get_formerr_and_harm_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fleet.yaml"), FLEET).unwrap();
    let (_controller, dns) = serve(dir.path(), &[]).await;
    assert_eq!(short(dns, "echo.demo.global", "A").len(), 1);

    // A header that promises a question that is not there.
    let mut no_question = query(0x1111, &[b"echo", b"demo", b"global"], 1);
    no_question.truncate(12);
    // A label of 64 bytes (at most 63).
    let long_label = query(0x2222, &[&[b'a'; 64], b"global"], 1);
    // A name of more than 255 bytes, in labels of 63.
    let label = [b'b'; 63];
    let long_name = query(0x3333, &[&label, &label, &label, &label, b"global"], 1);
    // A compression pointer to itself.
    let mut pointer_loop = query(0x4444, &[], 1);
    pointer_loop.truncate(12);
    pointer_loop.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    // Two questions (one is all a query may hold).
    let mut two = query(0x5555, &[b"echo", b"demo", b"global"], 1);
    two[5] = 2;
    two.extend_from_within(12..);
    for (what, packet, id) in [
        ("no question", &no_question, 0x1111),
        ("a 64-byte label", &long_label, 0x2222),
        ("a 260-byte name", &long_name, 0x3333),
        ("a compression loop", &pointer_loop, 0x4444),
        ("two questions", &two, 0x5555),
    ] {
        assert_eq!(ask(dns, packet).await, Some((id, FORMERR)), "{what}");
    }
    // An opcode other than QUERY (STATUS).
    let mut status = query(0x6666, &[b"echo", b"demo", b"global"], 1);
    status[2] = 0x10;
    assert_eq!(ask(dns, &status).await, Some((0x6666, NOTIMP)), "STATUS");

    // Bytes that are no DNS message at all: shorter than a header, random. At most an
    // error comes back; nothing else changes.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for len in [0usize, 1, 5, 11, 40, 300, 512, 1400] {
        let packet: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        if let Some((_, rcode)) = ask(dns, &packet).await {
            assert!(
                rcode == FORMERR || rcode == NOTIMP,
                "{len} random bytes: rcode {rcode}"
            );
        }
    }
    // Still answering, the same answer.
    assert_eq!(short(dns, "echo.demo.global", "A").len(), 1);
    let (status, flags, _, _) = header(&dig(dns, &["echo.demo.global", "A"]));
    assert_eq!(status, "NOERROR");
    assert!(flags.contains("aa"));
}

/// A headless service with `n` ready endpoints.
fn big_headless(n: usize) -> String {
    let mut yaml = String::from(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: big\n  namespace: demo\n  \
         annotations: { meshfleet.io/global: \"true\" }\n\
         spec:\n  clusterIP: None\n  ports: [{ name: http, port: 80 }]\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: big-east-1\n  \
         namespace: demo\n  labels: { kubernetes.io/service-name: big, \
         multicluster.kubernetes.io/source-cluster: east-1 }\naddressType: IPv4\n\
         ports: [{ name: http, port: 80 }]\nendpoints:\n",
    );
    for i in 0..n {
        yaml.push_str(&format!(
            "  - addresses: [\"10.30.{}.{}\"]\n",
            i / 200,
            i % 200 + 1
        ));
    }
    yaml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_queries_and_answers_too_big_for_udp_are_retried_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fleet.yaml"), FLEET).unwrap();
    std::fs::write(dir.path().join("big.yaml"), big_headless(300)).unwrap();
    let (_controller, dns) = serve(dir.path(), &[]).await;

    // ANY: every record the name holds.
    let out = dig(dns, &["echo.demo.global", "ANY"]);
    let (status, flags, answers, _) = header(&out);
    assert_eq!((status.as_str(), answers), ("NOERROR", 1), "{out}");
    assert!(flags.contains("aa"), "{out}");
    let out = dig(dns, &["dual.demo.svc.clusterset.local", "ANY"]);
    assert_eq!(header(&out).2, 2, "A and AAAA: {out}");

    // 300 A records do not fit in 512 bytes (no EDNS) nor in 1232 (EDNS): truncated over UDP.
    let name = "big.demo.global";
    let deadline = Instant::now() + Duration::from_secs(10);
    while short(dns, name, "A").len() < 300 {
        assert!(
            Instant::now() < deadline,
            "the big service is never answered in full"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for edns in ["+noedns", "+edns=0"] {
        let udp_only = dig(dns, &[edns, "+ignore", name, "A"]);
        let (status, flags, answers, _) = header(&udp_only);
        assert_eq!(status, "NOERROR", "{udp_only}");
        assert!(
            flags.contains("tc"),
            "truncated over UDP ({edns}): {udp_only}"
        );
        assert!(answers < 300, "{udp_only}");
        // dig retries over TCP on a truncated answer, as a stub resolver does.
        let retried = dig(dns, &[edns, name, "A"]);
        assert!(retried.contains("retrying in TCP mode"), "{retried}");
        let (status, flags, answers, _) = header(&retried);
        assert_eq!((status.as_str(), answers), ("NOERROR", 300), "{retried}");
        assert!(!flags.contains("tc"), "{retried}");
    }
}

/// One source sends 20,000 queries at about 10,000 a second, half for names outside the mesh sent
/// to an upstream that never answers: those beyond what may wait for an upstream are
/// refused at once; the mesh's names are answered; another client is answered meanwhile; the
/// controller's memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_source_is_bounded_and_others_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fleet.yaml"), FLEET).unwrap();
    // An upstream that reads nothing and answers nothing.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let upstream = silent.local_addr().unwrap().to_string();
    let (controller, dns) = serve(dir.path(), &["--dns-upstream", &upstream]).await;
    let pid = controller.id().unwrap();
    assert_eq!(short(dns, "echo.demo.global", "A").len(), 1);
    let before = meshfleet_testkit::rss_mib(pid);

    let flood = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let flood = std::sync::Arc::new(flood);
    let receiver = {
        let flood = flood.clone();
        tokio::spawn(async move {
            let mut rcodes = [0u32; 16];
            let mut buf = [0u8; 4096];
            // Until the forwarded queries admitted have failed (2 tries of 2 s each).
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_secs(6), flood.recv(&mut buf)).await
            {
                if n >= 12 {
                    rcodes[(buf[3] & 0x0f) as usize] += 1;
                }
            }
            rcodes
        })
    };
    let started = Instant::now();
    for i in 0..10_000u32 {
        let outside = format!("n{i}");
        let q = query(i as u16, &[outside.as_bytes(), b"outside", b"example"], 1);
        flood.send_to(&q, dns).await.unwrap();
        let q = query(i as u16, &[b"echo", b"demo", b"global"], 1);
        flood.send_to(&q, dns).await.unwrap();
        // About 10,000 queries a second: a flood, not a loss test of the socket buffers.
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let sent_in = started.elapsed();
    // Meanwhile, another client (another source address) is answered at once.
    let out = dig(dns, &["-b", "127.0.0.2", "echo.demo.global", "A"]);
    assert_eq!(header(&out).0, "NOERROR", "{out}");
    let during = meshfleet_testkit::rss_mib(pid);
    let rcodes = receiver.await.unwrap();
    let (noerror, servfail, refused) = (rcodes[0], rcodes[2], rcodes[5]);
    eprintln!(
        "20,000 queries sent in {sent_in:?}: {noerror} NOERROR, {refused} REFUSED, {servfail} \
         SERVFAIL; RSS {before} MiB before, {during} MiB during"
    );
    // UDP may drop some under a flood; most come back, each with the right code.
    assert!(
        noerror >= 9_000,
        "the mesh's names are answered: {rcodes:?}"
    );
    assert!(
        refused >= 9_000,
        "forwards beyond the limit are refused: {rcodes:?}"
    );
    assert!(
        (1..=64).contains(&servfail),
        "at most 64 wait for the silent upstream, then fail: {rcodes:?}"
    );
    assert!(
        during <= before + 64,
        "memory bounded: {before} MiB before, {during} MiB during"
    );
    // And the source itself is answered again once the flood is over.
    assert_eq!(short(dns, "echo.demo.global", "A").len(), 1);
}
