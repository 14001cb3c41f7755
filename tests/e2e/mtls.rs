//! The mTLS port (`--xds-tls-addr`) with real peers: grpcio calls Istio's CA API with a
//! workload certificate from `meshfleet ca issue --workload`, and a real Envoy connects to ADS
//! over mTLS and serves the certificate it gets over SDS, which `openssl` checks.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use meshfleet_demo::envoy::{eventually, free_port};

const CLIENT: &str = "spiffe://cluster.local/ns/shop/sa/client";

fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let bin = match program {
        "meshfleet" => meshfleet_testkit::meshfleet_bin(),
        other => PathBuf::from(other),
    };
    let out = Command::new(&bin)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} {args:?}: {text}");
    text
}

/// A mesh CA in `ca/`, a workload certificate of [`CLIENT`] from cluster east-1's CA in
/// `client/`, and one from a foreign root in `stranger/`; then `meshfleet run` with its mTLS
/// port. Returns the controller and that port.
async fn mesh_with_ca(d: &Path) -> (tokio::process::Child, SocketAddr, SocketAddr) {
    let m = |args: &str| run(d, "meshfleet", &args.split_whitespace().collect::<Vec<_>>());
    m("ca init --trust-domain cluster.local --out ca");
    m("ca issue --ca-dir ca --cluster east-1 --workload shop/client --out client");
    m("ca init --trust-domain cluster.local --out foreign");
    m("ca issue --ca-dir foreign --cluster east-1 --workload shop/client --out stranger");
    std::fs::create_dir_all(d.join("config")).unwrap();
    let tls = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let ca = d.join("ca");
    let flags = [
        "--ca-dir",
        ca.to_str().unwrap(),
        "--xds-tls-addr",
        &tls.to_string(),
    ];
    let log = d.join("meshfleet.log");
    let (controller, _, admin) =
        meshfleet_testkit::serve_logged(&d.join("config"), &flags, Some(&log)).await;
    (controller, tls, admin)
}

/// `create_certificate.py` as `caller` (a directory of certificates, or `none`) with `csr`.
fn create_certificate(d: &Path, tls: SocketAddr, caller: &str, csr: &str) -> serde_json::Value {
    let python = crate::grpc::find_python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/grpc/create_certificate.py");
    let out = Command::new(python)
        .arg(script)
        .args([&tls.to_string(), caller, csr])
        .env("ROOT_CERT", d.join("ca/root-cert.pem"))
        .current_dir(d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A CSR (made by openssl) for `uri`, its key beside it.
fn csr(d: &Path, name: &str, uri: &str) -> String {
    let file = format!("{name}.csr");
    run(
        d,
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-subj",
            "/O=shop",
            "-addext",
            &format!("subjectAltName=URI:{uri}"),
            "-out",
            &file,
        ],
    );
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_certificate_signs_for_the_caller_only_and_refuses_strangers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_controller, tls, _) = mesh_with_ca(d).await;

    let own = csr(d, "own", CLIENT);
    let answer = create_certificate(d, tls, "client", &own);
    assert_eq!(answer["code"], "OK", "{answer}");
    let chain: Vec<&str> = answer["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(chain.len(), 3, "leaf, cluster CA, root: {answer}");
    std::fs::write(d.join("leaf.pem"), chain[0]).unwrap();
    std::fs::write(d.join("intermediate.pem"), chain[1]).unwrap();
    assert_eq!(
        chain[2],
        std::fs::read_to_string(d.join("ca/root-cert.pem")).unwrap()
    );
    let verified = run(
        d,
        "openssl",
        &[
            "verify",
            "-CAfile",
            "ca/root-cert.pem",
            "-untrusted",
            "intermediate.pem",
            "leaf.pem",
        ],
    );
    assert!(verified.contains("leaf.pem: OK"), "{verified}");
    let san = run(
        d,
        "openssl",
        &[
            "x509",
            "-in",
            "leaf.pem",
            "-noout",
            "-ext",
            "subjectAltName",
        ],
    );
    assert!(san.contains(&format!("URI:{CLIENT}")), "{san}");
    let issuer = run(
        d,
        "openssl",
        &["x509", "-in", "leaf.pem", "-noout", "-issuer"],
    );
    assert!(
        issuer.contains("L=east-1") || issuer.contains("L = east-1"),
        "{issuer}"
    );

    // A request for someone else's identity is refused, naming the caller.
    let other = csr(d, "other", "spiffe://cluster.local/ns/bank/sa/vault");
    let answer = create_certificate(d, tls, "client", &other);
    assert_eq!(answer["code"], "PERMISSION_DENIED", "{answer}");
    assert!(
        answer["details"].as_str().unwrap().contains(CLIENT),
        "{answer}"
    );

    // No client certificate, or one from a foreign root: the handshake fails.
    for caller in ["none", "stranger"] {
        let answer = create_certificate(d, tls, caller, &own);
        assert_eq!(answer["code"], "UNAVAILABLE", "{caller}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_gets_its_certificate_over_sds_on_the_mtls_port() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_controller, tls, admin) = mesh_with_ca(d).await;
    let (envoy_admin, listener) = (free_port().unwrap(), free_port().unwrap());
    let client = d.join("client");
    let bootstrap = BOOTSTRAP
        .replace("ADMIN_PORT", &envoy_admin.to_string())
        .replace("TLS_PORT", &tls.port().to_string())
        .replace("LISTENER_PORT", &listener.to_string())
        .replace("CLIENT_DIR", client.to_str().unwrap());
    let _envoy = start_envoy(d, "envoy", &bootstrap);

    // Envoy holds a certificate for its own identity, from cluster east-1's CA.
    let envoy_admin = SocketAddr::from(([127, 0, 0, 1], envoy_admin));
    let certs = eventually(Duration::from_secs(30), || async {
        let (_, body) = meshfleet_demo::traffic::get(envoy_admin, "localhost", "/certs").await?;
        anyhow::ensure!(
            body.contains(CLIENT),
            "no certificate for {CLIENT} yet: {body}"
        );
        Ok(body)
    })
    .await
    .unwrap_or_else(|e| {
        let log = std::fs::read_to_string(d.join("envoy.log")).unwrap_or_default();
        panic!("{e}\nenvoy log:\n{log}")
    });
    assert!(
        certs.contains("\"ca_cert\""),
        "the ROOTCA bundle too: {certs}"
    );

    // Its listener serves that certificate, and openssl accepts it under the mesh root.
    let shown = eventually(Duration::from_secs(10), || async {
        let out = tokio::process::Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{listener}")])
            .args(["-CAfile", d.join("ca/root-cert.pem").to_str().unwrap()])
            .stdin(Stdio::null())
            .output()
            .await?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        anyhow::ensure!(text.contains("Verify return code: 0 (ok)"), "{text}");
        Ok(text)
    })
    .await
    .unwrap();
    assert!(
        shown.contains("L=east-1") || shown.contains("L = east-1"),
        "{shown}"
    );

    // The controller knows the client by its verified identity.
    let status = meshfleet_testkit::admin(admin, "/debug/syncz")
        .await
        .unwrap();
    assert!(status.contains(CLIENT), "{status}");

    // No key reaches the admin port or the log: neither a PEM key nor a line of the root's
    // or the cluster CA's key.
    let key_lines: Vec<String> = ["ca/root-key.pem", "ca/clusters/east-1/ca-key.pem"]
        .iter()
        .map(|f| std::fs::read_to_string(d.join(f)).unwrap())
        .map(|k| k.lines().nth(1).unwrap().to_owned())
        .collect();
    let mut places = Vec::new();
    for path in [
        "/debug/syncz",
        "/debug/catalog",
        "/debug/problems",
        "/debug/bindings",
        "/metrics",
    ] {
        let body = meshfleet_testkit::admin(admin, path).await.unwrap();
        places.push((path.to_owned(), body));
    }
    let log = std::fs::read_to_string(d.join("meshfleet.log")).unwrap();
    assert!(
        log.contains("ads stream opened"),
        "the log is the controller's: {log}"
    );
    places.push(("the log".to_owned(), log));
    for (place, text) in places {
        assert!(!text.contains("PRIVATE KEY"), "{place}");
        for line in &key_lines {
            assert!(!text.contains(line.as_str()), "{place}");
        }
    }
}

/// Envoy with ADS over mTLS (the workload certificate from files, meshfleet's certificate
/// checked against the mesh root and istiod's name), and a listener whose certificate and
/// trust bundle come over SDS.
const BOOTSTRAP: &str = r#"
node: {id: mtls-client, cluster: shop, locality: {region: us-east, zone: us-east-1a}}
admin: {address: {socket_address: {address: 127.0.0.1, port_value: ADMIN_PORT}}}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services: [{envoy_grpc: {cluster_name: meshfleet-xds-tls}}]
static_resources:
  clusters:
  - name: meshfleet-xds-tls
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: meshfleet-xds-tls
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: TLS_PORT}}}}]}]
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: istiod.istio-system.svc
        common_tls_context:
          alpn_protocols: [h2]
          tls_certificates:
          - certificate_chain: {filename: CLIENT_DIR/cert-chain.pem}
            private_key: {filename: CLIENT_DIR/key.pem}
          validation_context:
            trusted_ca: {filename: CLIENT_DIR/root-cert.pem}
            match_typed_subject_alt_names:
            - san_type: DNS
              matcher: {exact: istiod.istio-system.svc}
  listeners:
  - name: workload
    address: {socket_address: {address: 127.0.0.1, port_value: LISTENER_PORT}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            tls_certificate_sds_secret_configs:
            - name: default
              sds_config: {ads: {}, resource_api_version: V3}
            validation_context_sds_secret_config:
              name: ROOTCA
              sds_config: {ads: {}, resource_api_version: V3}
      filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: workload
          cluster: meshfleet-xds-tls
"#;

/// The two networks of the east-west test: east-1 (the client's) and west-1, whose only
/// entry is its east-west gateway on loopback.
fn two_networks(gateway: SocketAddr) -> String {
    format!(
        r#"apiVersion: meshfleet.io/v1alpha1
kind: Cluster
metadata: {{ name: east-1 }}
spec: {{ region: us-east, zone: us-east-1a, network: net-east }}
status: {{ conditions: [{{ type: Ready, status: "True" }}] }}
---
apiVersion: meshfleet.io/v1alpha1
kind: Cluster
metadata: {{ name: west-1 }}
spec:
  region: us-west
  zone: us-west-2a
  network: net-west
  eastWestGateway: {{ address: {}, port: {} }}
status: {{ conditions: [{{ type: Ready, status: "True" }}] }}
---
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: demo
  annotations: {{ meshfleet.io/global: "true" }}
spec:
  ports: [{{ name: http, port: 80, targetPort: 8080 }}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: echo-west-1
  namespace: demo
  labels:
    kubernetes.io/service-name: echo
    multicluster.kubernetes.io/source-cluster: west-1
addressType: IPv4
ports: [{{ name: http, port: 8080 }}]
endpoints: [{{ addresses: ["10.11.1.1"] }}]
"#,
        gateway.ip(),
        gateway.port()
    )
}

/// West's east-west gateway as Istio's `AUTO_PASSTHROUGH` gateway works: TLS is not
/// terminated; the SNI picks where the connection goes (here, the server-side Envoy).
const GATEWAY: &str = r#"
admin: {address: {socket_address: {address: 127.0.0.1, port_value: ADMIN_PORT}}}
static_resources:
  listeners:
  - name: east-west
    address: {socket_address: {address: 127.0.0.1, port_value: GATEWAY_PORT}}
    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}
    filter_chains:
    - filter_chain_match: {server_names: ["outbound_.80_._.echo.demo.global"]}
      filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: passthrough
          cluster: echo-west
  clusters:
  - name: echo-west
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: echo-west
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: SERVER_PORT}}}}]}]
"#;

/// The server side in west: terminates mTLS with west-1's workload certificate, requires a
/// client certificate under the mesh root, tells the backend who called
/// (`x-forwarded-client-cert`) and the caller too (`x-peer-identity`).
const SERVER_SIDE: &str = r#"
admin: {address: {socket_address: {address: 127.0.0.1, port_value: ADMIN_PORT}}}
static_resources:
  listeners:
  - name: inbound
    address: {socket_address: {address: 127.0.0.1, port_value: SERVER_PORT}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
          common_tls_context:
            tls_certificates:
            - certificate_chain: {filename: CERTS/cert-chain.pem}
              private_key: {filename: CERTS/key.pem}
            validation_context:
              trusted_ca: {filename: CERTS/root-cert.pem}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: inbound
          forward_client_cert_details: SANITIZE_SET
          set_current_client_cert_details: {uri: true}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
          route_config:
            response_headers_to_add:
            - header: {key: x-peer-identity, value: "%DOWNSTREAM_PEER_URI_SAN%"}
            virtual_hosts:
            - name: echo
              domains: ["*"]
              routes: [{match: {prefix: /}, route: {cluster: backend}}]
  clusters:
  - name: backend
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: backend
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: BACKEND_PORT}}}}]}]
"#;

/// Starts Envoy on `bootstrap`; its log goes to `<name>.log` in `d`.
fn start_envoy(d: &Path, name: &str, bootstrap: &str) -> tokio::process::Child {
    let file = d.join(format!("{name}.yaml"));
    std::fs::write(&file, bootstrap).unwrap();
    meshfleet_demo::envoy::spawn(&file, Some(&d.join(format!("{name}.log"))))
        .expect("envoy: run `make setup`")
}

/// One HTTP/1.1 GET through `addr` for `host`; the whole response, headers included.
async fn get_raw(addr: SocketAddr, host: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response)).await??;
    Ok(response)
}

/// East and west on two networks: west's backend, its server side (an Envoy from the
/// `server_side` template) and its east-west gateway; meshfleet with its mTLS port (and
/// `extra` flags); east's client Envoy on that port with `client/`'s certificate. Built once a
/// request from east reaches west; `response` is that request's.
struct EastWest {
    dir: tempfile::TempDir,
    gateway: SocketAddr,
    plain_xds: SocketAddr,
    listener: SocketAddr,
    client_admin: SocketAddr,
    server_admin: SocketAddr,
    response: String,
    _processes: Vec<tokio::process::Child>,
    _backend: meshfleet_demo::echo::EchoServer,
    _client: meshfleet_demo::envoy::Envoy,
}

impl EastWest {
    async fn start(server_side: &str, extra: &[&str], api: meshfleet_demo::envoy::AdsApi) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = || free_port().unwrap();
        let (gateway_port, server_port, backend_port) = (port(), port(), port());
        let gateway = SocketAddr::from(([127, 0, 0, 1], gateway_port));
        let config = d.join("config");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(config.join("fleet.yaml"), two_networks(gateway)).unwrap();
        let backend = SocketAddr::from(([127, 0, 0, 1], backend_port));
        let identity = meshfleet_demo::echo::Identity {
            cluster: "west-1".into(),
            region: "us-west".into(),
            zone: "us-west-2a".into(),
        };
        let backend = meshfleet_demo::echo::EchoServer::start(backend, identity)
            .await
            .unwrap();
        let m = |args: &str| run(d, "meshfleet", &args.split_whitespace().collect::<Vec<_>>());
        m("ca init --trust-domain cluster.local --out ca");
        m("ca issue --ca-dir ca --cluster west-1 --workload demo/echo --out west");
        m("ca issue --ca-dir ca --cluster east-1 --workload shop/client --out client");
        m("ca init --trust-domain cluster.local --out foreign");
        m("ca issue --ca-dir foreign --cluster east-1 --workload shop/client --out stranger");

        let tls = SocketAddr::from(([127, 0, 0, 1], port()));
        let (ca, tls_text) = (d.join("ca"), tls.to_string());
        let mut flags = vec![
            "--ca-dir",
            ca.to_str().unwrap(),
            "--xds-tls-addr",
            &tls_text,
        ];
        flags.extend_from_slice(extra);
        let (controller, plain_xds, _) = meshfleet_testkit::serve_with(&config, &flags).await;
        let server_admin = port();
        let fill = |text: &str, admin: u16| {
            text.replace("ADMIN_PORT", &admin.to_string())
                .replace("GATEWAY_PORT", &gateway_port.to_string())
                .replace("SERVER_PORT", &server_port.to_string())
                .replace("BACKEND_PORT", &backend_port.to_string())
                .replace("TLS_PORT", &tls.port().to_string())
                .replace("CERTS", d.join("west").to_str().unwrap())
        };
        let server = start_envoy(d, "server-side", &fill(server_side, server_admin));
        let gateway_envoy = start_envoy(d, "gateway", &fill(GATEWAY, port()));
        let client = meshfleet_demo::envoy::EnvoyConfig {
            node_id: "envoy-east-mtls".into(),
            locality: meshfleet_model::Locality::new("us-east", "us-east-1a", ""),
            network: "net-east".into(),
            xds_addr: tls,
            listener_port: port(),
            admin_port: port(),
            api,
            certs: Some(d.join("client")),
        };
        let listener = SocketAddr::from(([127, 0, 0, 1], client.listener_port));
        let client_admin = SocketAddr::from(([127, 0, 0, 1], client.admin_port));
        let log = d.join("client.log");
        let client = meshfleet_demo::envoy::Envoy::start(client, Some(&log))
            .await
            .unwrap();
        let response = eventually(Duration::from_secs(30), || async {
            let response = get_raw(listener, "echo.demo.global").await?;
            anyhow::ensure!(response.starts_with("HTTP/1.1 200"), "{response}");
            Ok(response)
        })
        .await
        .unwrap_or_else(|e| {
            let logs: String = ["client", "gateway", "server-side"]
                .iter()
                .map(|n| {
                    let log = std::fs::read_to_string(d.join(format!("{n}.log")));
                    format!("--- {n}\n{}", log.unwrap_or_default())
                })
                .collect();
            panic!("{e}\n{logs}")
        });
        Self {
            gateway,
            plain_xds,
            listener,
            client_admin,
            server_admin: SocketAddr::from(([127, 0, 0, 1], server_admin)),
            response,
            _processes: vec![controller, server, gateway_envoy],
            _backend: backend,
            _client: client,
            dir,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_networks_through_an_east_west_gateway_with_mtls() {
    let east_west = EastWest::start(SERVER_SIDE, &[], meshfleet_demo::envoy::AdsApi::Sotw).await;
    let (d, listener, gateway) = (east_west.dir.path(), east_west.listener, east_west.gateway);
    let port = || free_port().unwrap();

    // Requests from east reach west's backend through the gateway; west saw east's identity.
    let response = &east_west.response;
    assert!(response.contains("west-1"), "{response}");
    assert!(
        response
            .to_lowercase()
            .contains(&format!("x-peer-identity: {CLIENT}")),
        "{response}"
    );
    for _ in 0..20 {
        let response = get_raw(listener, "echo.demo.global").await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }

    // An Envoy on the plaintext port has no certificate: it gets the plain cluster, and the
    // gateway, which routes only TLS by its SNI, lets nothing through.
    let plain = meshfleet_demo::envoy::EnvoyConfig {
        node_id: "envoy-east-plain".into(),
        locality: meshfleet_model::Locality::new("us-east", "us-east-1a", ""),
        network: "net-east".into(),
        xds_addr: east_west.plain_xds,
        listener_port: port(),
        admin_port: port(),
        api: meshfleet_demo::envoy::AdsApi::Sotw,
        certs: None,
    };
    let plain_listener = SocketAddr::from(([127, 0, 0, 1], plain.listener_port));
    let _plain = meshfleet_demo::envoy::Envoy::start(plain, None)
        .await
        .unwrap();
    let refused = eventually(Duration::from_secs(30), || async {
        let response = get_raw(plain_listener, "echo.demo.global").await?;
        anyhow::ensure!(response.starts_with("HTTP/1.1 503"), "{response}");
        Ok(response)
    })
    .await
    .unwrap();
    assert!(!refused.contains("west-1"), "{refused}");

    // A certificate from a foreign root does not get past the server side; east's does.
    let through_gateway = |certs: &str| {
        // The intermediates alone: s_client sends `-cert`, then `-cert_chain`.
        let chain = std::fs::read_to_string(d.join(certs).join("cert-chain.pem")).unwrap();
        let end = "-----END CERTIFICATE-----\n";
        let intermediates = &chain[chain.find(end).unwrap() + end.len()..];
        std::fs::write(d.join(certs).join("intermediates.pem"), intermediates).unwrap();
        let out = Command::new("openssl")
            .args(["s_client", "-connect", &gateway.to_string()])
            .args(["-servername", "outbound_.80_._.echo.demo.global"])
            .args([
                "-cert",
                &format!("{certs}/cert-chain.pem"),
                "-key",
                &format!("{certs}/key.pem"),
            ])
            .args(["-cert_chain", &format!("{certs}/intermediates.pem")])
            .args(["-CAfile", "ca/root-cert.pem", "-ign_eof", "-quiet"])
            .current_dir(d)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        let mut child = out;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"GET / HTTP/1.1\r\nHost: echo.demo.global\r\nConnection: close\r\n\r\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let east = through_gateway("client");
    assert!(east.contains("HTTP/1.1 200"), "{east}");
    let stranger = through_gateway("stranger");
    assert!(!stranger.contains("HTTP/1.1 200"), "{stranger}");
}

/// The server side again, with its certificate and trust bundle over SDS from meshfleet's
/// mTLS port (west-1's workload certificate from files only to connect there).
const SERVER_SIDE_SDS: &str = r#"
node: {id: server-side, cluster: demo, locality: {region: us-west, zone: us-west-2a}}
admin: {address: {socket_address: {address: 127.0.0.1, port_value: ADMIN_PORT}}}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services: [{envoy_grpc: {cluster_name: meshfleet-xds-tls}}]
static_resources:
  listeners:
  - name: inbound
    address: {socket_address: {address: 127.0.0.1, port_value: SERVER_PORT}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
          common_tls_context:
            tls_certificate_sds_secret_configs:
            - name: default
              sds_config: {ads: {}, resource_api_version: V3}
            validation_context_sds_secret_config:
              name: ROOTCA
              sds_config: {ads: {}, resource_api_version: V3}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: inbound
          # One request per connection: every request is a new handshake through the gateway.
          common_http_protocol_options: {max_requests_per_connection: 1}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
          route_config:
            virtual_hosts:
            - name: echo
              domains: ["*"]
              routes: [{match: {prefix: /}, route: {cluster: backend}}]
  clusters:
  - name: backend
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: backend
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: BACKEND_PORT}}}}]}]
  - name: meshfleet-xds-tls
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: meshfleet-xds-tls
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: TLS_PORT}}}}]}]
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: istiod.istio-system.svc
        common_tls_context:
          alpn_protocols: [h2]
          tls_certificates:
          - certificate_chain: {filename: CERTS/cert-chain.pem}
            private_key: {filename: CERTS/key.pem}
          validation_context:
            trusted_ca: {filename: CERTS/root-cert.pem}
"#;

/// Serial numbers of the certificates (not the CAs) an Envoy holds, from its `/certs`.
async fn held_certificates(admin: SocketAddr) -> anyhow::Result<Vec<String>> {
    let (_, body) = meshfleet_demo::traffic::get(admin, "localhost", "/certs").await?;
    let certs: serde_json::Value = serde_json::from_str(&body)?;
    let mut serials: Vec<String> = certs["certificates"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["cert_chain"].as_array().into_iter().flatten())
        .filter_map(|c| c["serial_number"].as_str().map(str::to_owned))
        .collect();
    serials.sort();
    Ok(serials)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_rotation_while_requests_flow_fails_no_request() {
    let east_west = EastWest::start(
        SERVER_SIDE_SDS,
        &["--ca-check-interval", "1s"],
        meshfleet_demo::envoy::AdsApi::Delta,
    )
    .await;
    let d = east_west.dir.path();
    let (listener, client_admin, server_admin) = (
        east_west.listener,
        east_west.client_admin,
        east_west.server_admin,
    );
    let m = |args: &str| run(d, "meshfleet", &args.split_whitespace().collect::<Vec<_>>());
    let before = (
        held_certificates(client_admin).await.unwrap(),
        held_certificates(server_admin).await.unwrap(),
    );

    // Requests flow, one after the other, while the root is rotated; the server side closes
    // each connection after one request, so every request is a new mTLS handshake.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flow = tokio::spawn({
        let stop = stop.clone();
        async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match get_raw(listener, "echo.demo.global").await {
                    Ok(r) if r.starts_with("HTTP/1.1 200") => ok += 1,
                    Ok(r) => failed.push(r.lines().next().unwrap_or_default().to_owned()),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    m("ca rotate --ca-dir ca");
    // Both sides end up with certificates from the new root.
    eventually(Duration::from_secs(30), || async {
        let now = (
            held_certificates(client_admin).await?,
            held_certificates(server_admin).await?,
        );
        anyhow::ensure!(
            now.0 != before.0 && now.1 != before.1,
            "not renewed yet: {now:?}"
        );
        Ok(())
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = flow.await.unwrap();
    assert!(ok > 20, "too few requests went through: {ok}");
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        ok as usize + failed.len()
    );
    let issuer = run(
        d,
        "openssl",
        &["x509", "-in", "ca/root-cert.pem", "-noout", "-fingerprint"],
    );
    eprintln!("{ok} requests across the rotation; root now {issuer}");
}
