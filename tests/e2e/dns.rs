//! DNS with real peers: `dig` (Debian `bind9-dnsutils`) asks `meshfleet run` for every record
//! type and every negative case, over UDP and TCP; names outside the mesh are forwarded to a
//! dnsmasq the test runs on loopback.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use meshfleet_demo::envoy::free_port;

pub(crate) const FLEET: &str = r#"
apiVersion: meshfleet.io/v1alpha1
kind: Cluster
metadata: { name: east-1 }
spec: { region: us-east, zone: us-east-1a }
status: { conditions: [{ type: Ready, status: "True" }] }
---
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: demo
  annotations: { meshfleet.io/global: "true" }
spec:
  ports: [{ name: http, port: 80, targetPort: 8080 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: echo-east-1
  namespace: demo
  labels: { kubernetes.io/service-name: echo, multicluster.kubernetes.io/source-cluster: east-1 }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints: [{ addresses: ["10.10.1.1"] }]
---
apiVersion: v1
kind: Service
metadata:
  name: dual
  namespace: demo
  annotations: { meshfleet.io/global: "true" }
spec:
  ipFamilies: [IPv4, IPv6]
  ports: [{ name: http, port: 80 }]
---
apiVersion: v1
kind: Service
metadata:
  name: db
  namespace: shop
  annotations: { meshfleet.io/global: "true" }
spec:
  clusterIP: None
  ports: [{ name: postgres, port: 5432 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-east-1
  namespace: shop
  labels: { kubernetes.io/service-name: db, multicluster.kubernetes.io/source-cluster: east-1 }
addressType: IPv4
ports: [{ name: postgres, port: 5432 }]
endpoints:
  - { addresses: ["10.20.0.5"], hostname: db-0 }
  - { addresses: ["10.20.0.6"], hostname: db-1 }
  - { addresses: ["10.20.0.7"], hostname: db-2, conditions: { ready: false } }
"#;

/// `dig` against `server` with `args`; its whole output.
pub(crate) fn dig(server: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+time=2", "+tries=1"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("dig is installed (tests/setup.sh)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `dig +short`: the answers' data, sorted.
pub(crate) fn short(server: SocketAddr, name: &str, ty: &str) -> Vec<String> {
    let mut lines: Vec<String> = dig(server, &["+short", name, ty])
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// (status, flags, answer count, authority count) from dig's header lines.
pub(crate) fn header(output: &str) -> (String, String, u32, u32) {
    let status = output
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_default()
        .to_owned();
    let flags = output
        .split("flags: ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap_or_default()
        .to_owned();
    let count = |what: &str| {
        output
            .split(&format!("{what}: "))
            .nth(1)
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(u32::MAX)
    };
    (status, flags, count("ANSWER"), count("AUTHORITY"))
}

/// [`FLEET`]'s echo service and its endpoints under the name `added`.
fn added_service() -> String {
    FLEET
        .replace("name: echo\n", "name: added\n")
        .replace("name: echo-east-1", "name: added-east-1")
        .replace(
            "kubernetes.io/service-name: echo",
            "kubernetes.io/service-name: added",
        )
}

/// dnsmasq answering on `addr` (loopback) from `records` (its `--address=/name/ip` flags)
/// alone: no resolv.conf, no hosts file. Killed when dropped.
pub(crate) fn dnsmasq(addr: SocketAddr, records: &[&str]) -> tokio::process::Child {
    let dnsmasq = ["dnsmasq", "/usr/sbin/dnsmasq"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok())
        .expect("dnsmasq is installed (tests/setup.sh)");
    tokio::process::Command::new(dnsmasq)
        .args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
        ])
        .args(["--listen-address", &addr.ip().to_string()])
        .args(["--port", &addr.port().to_string()])
        .args(records)
        .args(["--pid-file=", "--user=root"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

pub(crate) async fn serve(dir: &Path, extra: &[&str]) -> (tokio::process::Child, SocketAddr) {
    let (child, _, dns) = serve_xds(dir, extra).await;
    (child, dns)
}

/// [`serve`], with the plaintext xDS address too: (controller, xDS, DNS).
async fn serve_xds(dir: &Path, extra: &[&str]) -> (tokio::process::Child, SocketAddr, SocketAddr) {
    let dns = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let dns_text = dns.to_string();
    let mut flags = vec!["--dns-addr", dns_text.as_str()];
    flags.extend_from_slice(extra);
    let (child, xds, _) = meshfleet_testkit::serve_with(dir, &flags).await;
    (child, xds, dns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_gets_every_record_type_and_every_negative_answer() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fleet.yaml"), FLEET).unwrap();
    // Forwarding goes to a loopback port where nothing answers: nothing leaves the machine.
    let nowhere = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap())).to_string();
    let (_controller, dns) = serve(dir.path(), &["--dns-upstream", &nowhere]).await;

    // A ClusterSetIP service: one virtual IP in 240.240.0.0/16, under both names.
    let vip = short(dns, "echo.demo.svc.clusterset.local", "A");
    assert_eq!(vip.len(), 1, "{vip:?}");
    assert!(vip[0].starts_with("240.240."), "{vip:?}");
    assert_eq!(short(dns, "echo.demo.global", "A"), vip);
    assert_eq!(
        short(dns, "ECHO.Demo.Global.", "A"),
        vip,
        "names are case-insensitive"
    );
    let full = dig(dns, &["echo.demo.svc.clusterset.local", "A"]);
    let (status, flags, answers, _) = header(&full);
    assert_eq!((status.as_str(), answers), ("NOERROR", 1), "{full}");
    assert!(flags.contains("aa"), "authoritative: {full}");
    let answer_line = full
        .split(";; ANSWER SECTION:\n")
        .nth(1)
        .and_then(|a| a.lines().next())
        .unwrap_or_default();
    let fields: Vec<&str> = answer_line.split_whitespace().collect();
    assert_eq!(fields[1..4], ["5", "IN", "A"], "a 5 s TTL: {full}");
    // Over TCP the same.
    assert_eq!(
        dig(dns, &["+tcp", "+short", "echo.demo.global", "A"]).trim(),
        vip[0]
    );
    // IPv6 only where the service has it.
    let v6 = short(dns, "dual.demo.svc.clusterset.local", "AAAA");
    assert!(v6.len() == 1 && v6[0].starts_with("2001:2:0:"), "{v6:?}");
    assert_eq!(short(dns, "dual.demo.svc.clusterset.local", "A").len(), 1);
    let nodata = dig(dns, &["echo.demo.svc.clusterset.local", "AAAA"]);
    let (status, _, answers, authority) = header(&nodata);
    assert_eq!(
        (status.as_str(), answers, authority),
        ("NOERROR", 0, 1),
        "NODATA with the SOA: {nodata}"
    );
    assert!(nodata.contains("SOA"), "{nodata}");
    // SRV per named port.
    assert_eq!(
        short(dns, "_http._tcp.echo.demo.svc.clusterset.local", "SRV"),
        ["0 50 80 echo.demo.svc.clusterset.local."]
    );

    // A headless service: its ready endpoints, each named one under its cluster, SRV to them.
    assert_eq!(
        short(dns, "db.shop.svc.clusterset.local", "A"),
        ["10.20.0.5", "10.20.0.6"]
    );
    assert_eq!(
        short(dns, "db-1.east-1.db.shop.svc.clusterset.local", "A"),
        ["10.20.0.6"]
    );
    assert_eq!(
        short(dns, "_postgres._tcp.db.shop.svc.clusterset.local", "SRV"),
        [
            "0 50 5432 db-0.east-1.db.shop.svc.clusterset.local.",
            "0 50 5432 db-1.east-1.db.shop.svc.clusterset.local."
        ]
    );

    // NXDOMAIN where nothing exists, with the zone's SOA; NODATA between zone and names.
    for name in [
        "missing.demo.svc.clusterset.local",
        "echo.nowhere.global",
        "db-2.east-1.db.shop.svc.clusterset.local",
        "_http._udp.echo.demo.svc.clusterset.local",
    ] {
        let out = dig(dns, &[name, "A"]);
        let (status, flags, answers, authority) = header(&out);
        assert_eq!(
            (status.as_str(), answers, authority),
            ("NXDOMAIN", 0, 1),
            "{name}: {out}"
        );
        assert!(flags.contains("aa") && out.contains("SOA"), "{name}: {out}");
    }
    for name in [
        "demo.svc.clusterset.local",
        "svc.clusterset.local",
        "shop.global",
        "east-1.db.shop.svc.clusterset.local",
    ] {
        let (status, _, answers, _) = header(&dig(dns, &[name, "A"]));
        assert_eq!((status.as_str(), answers), ("NOERROR", 0), "{name}");
    }
    assert_eq!(short(dns, "clusterset.local", "SOA").len(), 1);
    // Other names are forwarded, not invented: with no upstream answering, SERVFAIL.
    let (status, flags, _, _) = header(&dig(dns, &["+time=10", "www.example.org", "A"]));
    assert_eq!(status, "SERVFAIL", "{flags}");
    assert!(!flags.contains("aa"), "{status} {flags}");
}

/// Two zones of one headless service: a client's zone answers first, or alone.
const ZONED: &str = r#"
apiVersion: meshfleet.io/v1alpha1
kind: Cluster
metadata: { name: east-1 }
spec: { region: us-east, zone: us-east-1a }
status: { conditions: [{ type: Ready, status: "True" }] }
---
apiVersion: meshfleet.io/v1alpha1
kind: Cluster
metadata: { name: west-1 }
spec: { region: us-west, zone: us-west-2a }
status: { conditions: [{ type: Ready, status: "True" }] }
---
apiVersion: v1
kind: Service
metadata: { name: db, namespace: shop, annotations: { meshfleet.io/global: "true" } }
spec: { clusterIP: None, ports: [{ name: postgres, port: 5432 }] }
---
apiVersion: v1
kind: Service
metadata:
  name: cache
  namespace: shop
  annotations: { meshfleet.io/global: "true", meshfleet.io/dns-answers: local-only }
spec: { clusterIP: None, ports: [{ name: redis, port: 6379 }] }
"#;

fn zoned_slices() -> String {
    let mut out = String::new();
    for (service, port) in [
        ("db", "postgres, port: 5432"),
        ("cache", "redis, port: 6379"),
    ] {
        for (cluster, ip) in [("east-1", "10.1.0.1"), ("west-1", "10.2.0.1")] {
            out.push_str(&format!(
                "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {service}-{cluster}\n  namespace: shop\n  labels: {{ kubernetes.io/service-name: {service}, multicluster.kubernetes.io/source-cluster: {cluster} }}\naddressType: IPv4\nports: [{{ name: {port} }}]\nendpoints: [{{ addresses: [\"{ip}\"] }}]\n"
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_answers_follow_the_clients_zone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fleet.yaml"),
        format!("{ZONED}{}", zoned_slices()),
    )
    .unwrap();
    let (_controller, dns) = serve(
        dir.path(),
        &[
            "--dns-client-zone",
            "us-east-1a=127.0.0.2/32",
            "--dns-client-zone",
            "us-west-2a=127.0.0.3/32,10.2.0.0/16",
        ],
    )
    .await;
    // dig from a source address of each zone (`-b`); the order of the answer is kept by +short.
    let from = |source: &str, name: &str| -> Vec<String> {
        dig(dns, &["-b", source, "+short", name, "A"])
            .lines()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        from("127.0.0.2", "db.shop.global"),
        ["10.1.0.1", "10.2.0.1"]
    );
    assert_eq!(
        from("127.0.0.3", "db.shop.global"),
        ["10.2.0.1", "10.1.0.1"]
    );
    assert_eq!(
        from("127.0.0.2", "cache.shop.svc.clusterset.local"),
        ["10.1.0.1"]
    );
    assert_eq!(
        from("127.0.0.3", "cache.shop.svc.clusterset.local"),
        ["10.2.0.1"]
    );
    // A client whose zone is not known gets every endpoint.
    assert_eq!(from("127.0.0.1", "cache.shop.global").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_reaches_dns_and_two_instances_answer_alike() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fleet.yaml"), FLEET).unwrap();
    let (_a, dns_a) = serve(dir.path(), &[]).await;
    let (_b, dns_b) = serve(dir.path(), &[]).await;
    for name in ["echo.demo.global", "dual.demo.global"] {
        assert_eq!(short(dns_a, name, "A"), short(dns_b, name, "A"), "{name}");
        assert_eq!(
            short(dns_a, name, "AAAA"),
            short(dns_b, name, "AAAA"),
            "{name}"
        );
    }

    // A new service in the directory is answered within moments.
    let added = added_service();
    let started = Instant::now();
    std::fs::write(dir.path().join("added.yaml"), added).unwrap();
    loop {
        let answer = short(dns_a, "added.demo.svc.clusterset.local", "A");
        if answer.len() == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not answered: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "a new service answered over DNS {:?} after its file was written",
        started.elapsed()
    );
    let echo = short(dns_a, "echo.demo.global", "A");
    assert_eq!(
        short(dns_b, "echo.demo.global", "A"),
        echo,
        "an unrelated change moved no address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_names_are_forwarded_to_the_upstream_resolver() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fleet.yaml"), FLEET).unwrap();
    let upstream = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let _upstream = dnsmasq(
        upstream,
        &[
            "--address=/outside.example/192.0.2.77",
            "--address=/gone.example/",
        ],
    );
    let up = upstream.to_string();
    let (_controller, dns) = serve(dir.path(), &["--dns-upstream", &up]).await;

    let answer = meshfleet_demo::envoy::eventually(Duration::from_secs(10), || async {
        let a = short(dns, "www.outside.example", "A");
        anyhow::ensure!(a == ["192.0.2.77"], "{a:?}");
        Ok(a)
    })
    .await
    .unwrap();
    assert_eq!(answer, ["192.0.2.77"]);
    let out = dig(dns, &["www.outside.example", "A"]);
    let (_, flags, _, _) = header(&out);
    assert!(
        flags.contains("ra") && !flags.contains("aa"),
        "a forwarded answer: {out}"
    );
    let (status, _, _, _) = header(&dig(dns, &["x.gone.example", "A"]));
    assert_eq!(status, "NXDOMAIN");
    // The mesh's names are still meshfleet's own.
    assert_eq!(short(dns, "echo.demo.global", "A").len(), 1);
}

/// `tests/grpc/nds.py` subscribed to the name table as istio-agent is, on `network`: each
/// response as a JSON line.
struct NdsSubscriber {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl NdsSubscriber {
    fn start(xds: SocketAddr, network: &str) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/grpc/nds.py");
        let mut child = tokio::process::Command::new(crate::grpc::find_python())
            .arg(script)
            .args([&xds.to_string(), network])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        use tokio::io::AsyncBufReadExt;
        let stdout = child.stdout.take().unwrap();
        let lines = tokio::io::BufReader::new(stdout).lines();
        Self { child, lines }
    }

    /// The next response's table: host → its addresses, sorted.
    async fn next(&mut self) -> std::collections::BTreeMap<String, Vec<String>> {
        let line = tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
            .await
            .expect("a name table within 10 s")
            .unwrap()
            .expect("the subscriber is running");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(v.get("error").is_none(), "the stream failed: {line}");
        assert_eq!(v["resources"], 1, "one name table: {line}");
        v["table"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(host, info)| {
                assert_eq!(info["registry"], "Kubernetes", "{line}");
                let mut ips: Vec<String> = info["ips"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|ip| ip.as_str().unwrap().to_owned())
                    .collect();
                ips.sort();
                (host.clone(), ips)
            })
            .collect()
    }

    /// The first table from now on for which `done` holds (a write may be seen in steps).
    async fn until(
        &mut self,
        done: impl Fn(&std::collections::BTreeMap<String, Vec<String>>) -> bool,
    ) -> std::collections::BTreeMap<String, Vec<String>> {
        loop {
            let table = self.next().await;
            if done(&table) {
                return table;
            }
        }
    }
}

impl Drop for NdsSubscriber {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// An NDS subscriber (grpcio, as istio-agent subscribes) gets the name table with the virtual
/// IPs DNS answers, and its updates when the directory changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nds_subscriber_gets_the_name_table_and_its_updates() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fleet.yaml"), FLEET).unwrap();
    let (_controller, xds, dns) = serve_xds(dir.path(), &[]).await;
    let mut nds = NdsSubscriber::start(xds, "");
    let table = nds.next().await;
    for name in [
        "echo.demo.global",
        "echo.demo.svc.clusterset.local",
        "dual.demo.global",
        "db.shop.svc.clusterset.local",
        "db-0.east-1.db.shop.svc.clusterset.local",
    ] {
        let mut over_dns = short(dns, name, "A");
        over_dns.extend(short(dns, name, "AAAA"));
        over_dns.sort();
        assert_eq!(table.get(name), Some(&over_dns), "{name}: {table:?}");
    }
    assert_eq!(table["dual.demo.global"].len(), 2, "IPv4 and IPv6");
    assert_eq!(
        table["db.shop.global"],
        vec!["10.20.0.5", "10.20.0.6"],
        "ready endpoints only"
    );
    assert!(!table.contains_key("db-2.east-1.db.shop.svc.clusterset.local"));

    // A new service appears in the next table.
    let added = added_service();
    std::fs::write(dir.path().join("added.yaml"), added).unwrap();
    let table = nds.until(|t| t.contains_key("added.demo.global")).await;
    let vip = short(dns, "added.demo.global", "A");
    assert_eq!(vip.len(), 1);
    assert_eq!(table.get("added.demo.global"), Some(&vip), "{table:?}");

    // A headless endpoint turns unready: the table follows.
    let fewer = FLEET.replace(
        "{ addresses: [\"10.20.0.6\"], hostname: db-1 }",
        "{ addresses: [\"10.20.0.6\"], hostname: db-1, conditions: { ready: false } }",
    );
    assert_ne!(fewer, FLEET);
    std::fs::write(dir.path().join("fleet.yaml.tmp"), fewer).unwrap();
    std::fs::rename(
        dir.path().join("fleet.yaml.tmp"),
        dir.path().join("fleet.yaml"),
    )
    .unwrap();
    let table = nds
        .until(|t| t.get("db.shop.global").is_some_and(|ips| ips.len() == 1))
        .await;
    assert_eq!(table["db.shop.global"], vec!["10.20.0.5"]);
    assert!(!table.contains_key("db-1.east-1.db.shop.svc.clusterset.local"));
}
