//! meshfleet's DNS against bind9 and dnsmasq serving the same names, measured by `dnsperf`
//! on the same machine in the same run: `cargo bench -p meshfleet-dns --bench dnsperf
//! [-- SERVICES [SECONDS]]`. Needs Debian's `dnsperf`, `bind9` and `dnsmasq-base`.
//!
//! SERVICES ClusterSetIP services (10,000 by default) are answered under both names
//! (`<svc>.<ns>.svc.clusterset.local` and `<svc>.<ns>.global`), each A record the virtual IP
//! meshfleet allocates; bind9 serves the two zones from zone files, dnsmasq from `host-record`
//! lines. dnsperf asks every server the same queries (both names of every service, shuffled)
//! for SECONDS (10) with up to 100 queries outstanding; it and the servers share the machine.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use meshfleet_catalog::vip::{DEFAULT_V4, Range};
use meshfleet_dns::NameTable;
use meshfleet_dns::server::{DnsHandler, serve};
use meshfleet_model::{GlobalService, LocalityPolicy, Mesh, ServiceDns, TierWeights};

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<u64>().ok());
    let services = args.next().unwrap_or(10_000) as usize;
    let seconds = args.next().unwrap_or(10);
    for tool in ["dnsperf", "named", "dnsmasq"] {
        let found = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(tool).exists());
        assert!(
            found,
            "{tool} is missing: apt-get install dnsperf bind9 dnsmasq-base"
        );
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let mesh = mesh(services);
    let table = NameTable::build(&mesh);
    let records: Vec<(String, String)> = mesh
        .services
        .values()
        .flat_map(|s| {
            let ip = s.dns.vip.expect("a virtual IP").to_string();
            [
                (
                    format!("{}.{}.svc.clusterset.local", s.name, s.namespace),
                    ip.clone(),
                ),
                (s.host.clone(), ip),
            ]
        })
        .collect();
    let queries = dir.path().join("queries");
    let mut text = String::new();
    let mut order: Vec<usize> = (0..records.len()).collect();
    // A fixed shuffle: every server gets the same sequence.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for i in (1..order.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        order.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    for i in order {
        let _ = writeln!(text, "{} A", records[i].0);
    }
    std::fs::write(&queries, text).expect("query file");
    println!(
        "DNS bench: {services} services, {} names, {seconds} s per server, dnsperf with 100 queries outstanding",
        records.len()
    );

    // One worker thread, as bind9 runs here (`-n 1`): the servers get the same share of the
    // machine, and dnsperf the rest.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let meshfleet = free_port();
    runtime.spawn(async move {
        let addr = SocketAddr::from(([127, 0, 0, 1], meshfleet));
        let udp = tokio::net::UdpSocket::bind(addr).await.expect("udp");
        let tcp = tokio::net::TcpListener::bind(addr).await.expect("tcp");
        let (_tx, rx) = tokio::sync::watch::channel(Arc::new(table));
        serve(udp, tcp, DnsHandler::new(rx, None)).await;
        drop(_tx);
    });
    std::thread::sleep(Duration::from_millis(300));
    let ours = dnsperf(&queries, meshfleet, seconds);

    let bind_port = free_port();
    let _named = start_named(dir.path(), bind_port, &records);
    let bind = dnsperf(&queries, bind_port, seconds);

    let dnsmasq_port = free_port();
    let _dnsmasq = start_dnsmasq(dir.path(), dnsmasq_port, &records);
    let dnsmasq = dnsperf(&queries, dnsmasq_port, seconds);

    println!("| server | queries/s | average latency | lost |");
    println!("|---|---|---|---|");
    for (name, r) in [
        ("meshfleet", &ours),
        ("bind9", &bind),
        ("dnsmasq", &dnsmasq),
    ] {
        println!(
            "| {name} | {:.0} | {:.3} ms | {} |",
            r.qps,
            r.latency_s * 1e3,
            r.lost
        );
    }
    println!(
        "meshfleet / bind9: {:.2}x queries/s; meshfleet / dnsmasq: {:.2}x",
        ours.qps / bind.qps,
        ours.qps / dnsmasq.qps
    );
}

/// `services` ClusterSetIP services with the virtual IPs the catalog would give them.
fn mesh(services: usize) -> Mesh {
    let hosts: Vec<(String, String, String)> = (0..services)
        .map(|i| {
            let (name, namespace) = (format!("svc-{i}"), format!("ns-{}", i % 100));
            (format!("{name}.{namespace}.global"), name, namespace)
        })
        .collect();
    let range: Range = DEFAULT_V4.parse().expect("range");
    let vips = range.allocate(hosts.iter().map(|(h, _, _)| h.as_str()));
    let services = hosts.into_iter().map(|(host, name, namespace)| {
        let vip = match vips[&host] {
            std::net::IpAddr::V4(ip) => Some(ip),
            std::net::IpAddr::V6(_) => None,
        };
        GlobalService {
            host,
            aliases: Vec::new(),
            ports: Vec::new(),
            locality: LocalityPolicy::Tiers(TierWeights::default()),
            outlier_detection: None,
            dns: ServiceDns {
                vip,
                ..ServiceDns::default()
            },
            name,
            namespace,
        }
    });
    Mesh {
        services: services.map(|s| (s.host.clone(), Arc::new(s))).collect(),
    }
}

struct Result {
    qps: f64,
    latency_s: f64,
    lost: u64,
}

fn dnsperf(queries: &Path, port: u16, seconds: u64) -> Result {
    let out = Command::new("dnsperf")
        .args(["-s", "127.0.0.1", "-p", &port.to_string()])
        .args(["-d", queries.to_str().expect("path")])
        .args(["-l", &seconds.to_string(), "-q", "100"])
        .stdin(Stdio::null())
        .output()
        .expect("dnsperf runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let number = |label: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("dnsperf printed no {label:?}:\n{text}"))
    };
    let lost = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Queries lost:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Result {
        qps: number("Queries per second:"),
        latency_s: number("Average Latency (s):"),
        lost,
    }
}

/// bind9 authoritative for both zones, from zone files.
fn start_named(dir: &Path, port: u16, records: &[(String, String)]) -> Child {
    let mut zones = String::new();
    for zone in ["clusterset.local", "global"] {
        let mut file = format!(
            "$TTL 5\n@ IN SOA ns.dns.{zone}. hostmaster.{zone}. 1 7200 1800 86400 5\n@ IN NS ns.dns.{zone}.\nns.dns IN A 127.0.0.1\n"
        );
        for (name, ip) in records {
            if let Some(label) = name.strip_suffix(&format!(".{zone}")) {
                let _ = writeln!(file, "{label} IN A {ip}");
            }
        }
        let path = dir.join(format!("{zone}.zone"));
        std::fs::write(&path, file).expect("zone file");
        let _ = writeln!(
            zones,
            "zone \"{zone}\" {{ type primary; file \"{}\"; }};",
            path.display()
        );
    }
    let conf = dir.join("named.conf");
    std::fs::write(
        &conf,
        format!(
            "options {{ directory \"{}\"; listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }}; recursion no; pid-file none; }};\n{zones}",
            dir.display()
        ),
    )
    .expect("named.conf");
    let child =
        spawn(Command::new("named").args(["-g", "-n", "1", "-c", conf.to_str().expect("path")]));
    wait_for(port);
    child
}

/// dnsmasq answering `host-record`s.
fn start_dnsmasq(dir: &Path, port: u16, records: &[(String, String)]) -> Child {
    let mut conf = String::new();
    for (name, ip) in records {
        let _ = writeln!(conf, "host-record={name},{ip}");
    }
    let path = dir.join("dnsmasq.conf");
    std::fs::write(&path, conf).expect("dnsmasq.conf");
    let child = spawn(
        Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
            ])
            .args(["--listen-address", "127.0.0.1", "--port", &port.to_string()])
            .args(["--pid-file=", "--user=root", "--local-ttl=5"])
            .arg(format!("--conf-file={}", path.display())),
    );
    wait_for(port);
    child
}

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(command: &mut Command) -> Child {
    Child(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts"),
    )
}

/// Waits until a server answers on `port` (dig for its SOA).
fn wait_for(port: u16) {
    for _ in 0..100 {
        let out = Command::new("dig")
            .args(["@127.0.0.1", "-p", &port.to_string(), "+time=1", "+tries=1"])
            .args(["svc-0.ns-0.global", "A", "+short"])
            .output();
        if out.is_ok_and(|o| !o.stdout.is_empty()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no server answers on port {port}");
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
