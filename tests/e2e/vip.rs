//! Virtual IPs end to end, in network namespaces the tests create: a client resolves a global
//! name through meshfleet's DNS and connects to `<VIP>:<port>`; a real Envoy takes the
//! connection (TCP through a TCP proxy, HTTP through the routes) to a backend, 99% of them in
//! the client's zone.
//!
//! Two ways to reach the VIP listeners, each in its own namespace:
//! - captured, as an Istio sidecar: iptables REDIRECTs the VIP range to Envoy's outbound port,
//!   which hands each connection to the listener of its original destination;
//! - without capture (`INTERCEPTION_MODE: NONE`): the VIP range is routed to the namespace's
//!   loopback (`ip route add local`), and Envoy binds the VIP listeners themselves.
//!
//! Everything (backends, `meshfleet run`, Envoy, the client) runs inside the namespace, from a
//! thread that entered it; the namespace goes away with the thread.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use meshfleet_demo::envoy::{AdsApi, EnvoyConfig, eventually, free_port, spawn};
use meshfleet_demo::fleet::{self, Fleet};
use meshfleet_demo::traffic;
use meshfleet_model::Locality;
use meshfleet_testkit::{EAST, WEST};
use tokio::io::AsyncReadExt;

/// The TCP service: `db.demo` on port 9000; its backends answer their zone and close.
const DB_PORT: u16 = 9000;

/// Runs `body` on a thread in a new network namespace (loopback up), on a runtime of its own.
///
/// The namespace is made by `unshare -n sleep` (which holds it while the test runs) and the
/// thread enters it with `setns`: processes it starts and sockets it opens are in it.
fn in_network_namespace<F>(body: impl FnOnce() -> F + Send + 'static)
where
    F: Future<Output = ()>,
{
    let mut holder = Command::new("unshare")
        .args(["--net", "sleep", "600"])
        .spawn()
        .expect("unshare (util-linux)");
    let ours = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
    let path = format!("/proc/{}/ns/net", holder.id());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let namespace = loop {
        let now = std::fs::metadata(&path).map(|m| m.ino());
        if now.as_ref().is_ok_and(|ino| *ino != ours) {
            break std::fs::File::open(&path).unwrap();
        }
        if let Some(status) = holder.try_wait().unwrap() {
            panic!(
                "`unshare --net` failed ({status}): creating a network namespace needs \
                 CAP_SYS_ADMIN (run the tests as root)"
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no namespace from unshare"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let thread = std::thread::spawn(move || {
        use std::os::fd::AsFd;
        rustix::thread::move_into_link_name_space(
            namespace.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("entering the network namespace (setns needs CAP_SYS_ADMIN)");
        sh(&["ip", "link", "set", "lo", "up"]);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(body());
    });
    let joined = thread.join();
    let _ = holder.kill();
    let _ = holder.wait();
    if let Err(panic) = joined {
        std::panic::resume_unwind(panic);
    }
}

/// Runs a command (in the calling thread's namespace) and requires success.
fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (tests/setup.sh installs it)", args[0]));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The TCP service's Service and EndpointSlices, one backend per cluster of `fleet`.
async fn start_db(fleet: &Fleet, dir: &Path) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let mut yaml = String::from(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: db\n  namespace: demo\n  \
         annotations: { meshfleet.io/global: \"true\" }\n\
         spec:\n  ports: [{ name: tcp-db, port: 9000, appProtocol: tcp }]\n",
    );
    for (i, cluster) in fleet.clusters.iter().enumerate() {
        let ip = format!("127.0.{}.100", 10 + i);
        let listener = tokio::net::TcpListener::bind((ip.as_str(), DB_PORT))
            .await
            .unwrap();
        let zone = cluster.zone.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let zone = zone.clone();
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    let _ = conn.write_all(format!("{zone}\n").as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        }));
        yaml.push_str(&format!(
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  \
             name: db-{c}\n  namespace: demo\n  labels:\n    kubernetes.io/service-name: db\n    \
             multicluster.kubernetes.io/source-cluster: {c}\naddressType: IPv4\n\
             ports: [{{ name: tcp-db, port: {DB_PORT} }}]\nendpoints: [{{ addresses: [\"{ip}\"] }}]\n",
            c = cluster.name
        ));
    }
    std::fs::write(dir.join("db.yaml"), yaml).unwrap();
    tasks
}

/// The virtual IP of `name`, asked of meshfleet's DNS with `dig`.
fn resolve(dns: SocketAddr, name: &str) -> Option<IpAddr> {
    let out = Command::new("dig")
        .args([
            &format!("@{}", dns.ip()),
            "-p",
            &dns.port().to_string(),
            "+short",
            "+time=1",
            "+tries=1",
            name,
            "A",
        ])
        .output()
        .expect("dig is installed (tests/setup.sh)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().parse().ok())
}

/// One TCP connection to `addr`: the zone its backend answered.
async fn tcp_zone(addr: SocketAddr) -> anyhow::Result<String> {
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    if read.is_err() {
        anyhow::bail!("no end of answer through {addr} within 5 s, after {answer:?}");
    }
    let zone = answer.trim();
    anyhow::ensure!(!zone.is_empty(), "no answer through {addr}");
    Ok(zone.to_owned())
}

/// The scenario, captured (`capture`) or with the VIP range routed locally.
async fn reach_virtual_ips(capture: bool) {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::start(dir.path(), fleet::two_zones()).await.unwrap();
    let _db = start_db(&fleet, dir.path()).await;
    let dns = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let dns_flag = dns.to_string();
    let (_controller, xds, _admin) =
        meshfleet_testkit::serve_with(dir.path(), &["--dns-addr", &dns_flag]).await;

    let listener_port = free_port().unwrap();
    let range = "240.240.0.0/16";
    if capture {
        // As istio-init does for a sidecar: the mesh's addresses go to Envoy's outbound port.
        // (A pod routes them by its default route; here loopback, with a source address.)
        sh(&["ip", "route", "add", range, "dev", "lo", "src", "127.0.0.1"]);
        let port = listener_port.to_string();
        sh(&[
            "iptables",
            "-t",
            "nat",
            "-A",
            "OUTPUT",
            "-p",
            "tcp",
            "-d",
            range,
            "-j",
            "REDIRECT",
            "--to-ports",
            &port,
        ]);
    } else {
        sh(&["ip", "route", "add", "local", range, "dev", "lo"]);
    }

    let config = EnvoyConfig {
        node_id: format!("vip-{}", if capture { "redirect" } else { "none" }),
        locality: Locality::new("us-east", EAST, ""),
        network: String::new(),
        xds_addr: xds,
        listener_port,
        admin_port: free_port().unwrap(),
        api: AdsApi::Delta,
        certs: None,
    };
    let mut bootstrap: serde_norway::Value =
        serde_norway::from_str(&config.bootstrap().unwrap()).unwrap();
    let mode = if capture { "REDIRECT" } else { "NONE" };
    bootstrap["node"]["metadata"]["INTERCEPTION_MODE"] = mode.into();
    let envoy_dir = tempfile::tempdir().unwrap();
    let file = envoy_dir.path().join("bootstrap.yaml");
    std::fs::write(&file, serde_norway::to_string(&bootstrap).unwrap()).unwrap();
    let log = std::env::temp_dir().join(format!("{}-{}.log", config.node_id, listener_port));
    let _envoy = spawn(&file, Some(&log)).unwrap();

    // The client resolves the names through meshfleet's DNS.
    let db_vip = eventually(Duration::from_secs(20), || async {
        resolve(dns, "db.demo.global").ok_or_else(|| anyhow::anyhow!("no answer yet"))
    })
    .await
    .unwrap();
    let echo_vip = resolve(dns, "echo.demo.svc.clusterset.local").expect("echo's VIP");
    assert!(db_vip.to_string().starts_with("240.240."), "{db_vip}");

    // TCP: new connections to the VIP, each balanced anew.
    let db = SocketAddr::new(db_vip, DB_PORT);
    if let Err(e) = eventually(Duration::from_secs(30), || tcp_zone(db)).await {
        let admin = SocketAddr::from(([127, 0, 0, 1], config.admin_port));
        let listeners = traffic::get(admin, "localhost", "/listeners").await;
        let stats = traffic::get(
            admin,
            "localhost",
            "/stats?filter=(downstream_cx|upstream_cx|membership)",
        )
        .await;
        panic!(
            "{db} never answered (envoy log: {}): {e:#}\nlisteners: {listeners:?}\n{stats:?}",
            log.display()
        );
    }
    let mut zones = std::collections::BTreeMap::<String, u32>::new();
    for _ in 0..1000 {
        let zone = tcp_zone(db).await.unwrap();
        *zones.entry(zone).or_default() += 1;
    }
    let east = zones.get(EAST).copied().unwrap_or(0);
    let west = zones.get(WEST).copied().unwrap_or(0);
    assert_eq!(east + west, 1000, "{zones:?}");
    assert!(
        (980..=999).contains(&east),
        "TCP to {db} ({mode}): 99% should stay in {EAST}: {zones:?}"
    );

    // HTTP: requests to the VIP (as their authority) through the routes.
    let echo = SocketAddr::new(echo_vip, 80);
    let host = echo_vip.to_string();
    let tally = traffic::send(echo, &host, 1000).await;
    assert_eq!(
        tally.failed, 0,
        "HTTP to {echo} ({mode}): {:?}",
        tally.failures
    );
    let share = tally.share(EAST);
    assert!(
        (98.0..100.0).contains(&share),
        "HTTP to {echo} ({mode}): 99% should stay in {EAST}: {:?}",
        tally.zones
    );
    // And by name, as a client that resolved it sends it.
    let by_name = traffic::send(echo, "echo.demo.global", 100).await;
    assert_eq!(by_name.failed, 0, "{:?}", by_name.failures);
    eprintln!("{mode}: TCP {zones:?}, HTTP {:?}", tally.zones);
}

/// Istio's sidecar path: iptables captures the VIP range; Envoy hands each connection to the
/// listener of its original destination.
#[test]
fn a_captured_client_reaches_virtual_ips_through_envoy() {
    in_network_namespace(|| reach_virtual_ips(true));
}

/// No capture: the VIP range routed to loopback, Envoy binding the VIP listeners.
#[test]
fn a_client_without_capture_reaches_virtual_ips_through_envoy() {
    in_network_namespace(|| reach_virtual_ips(false));
}
