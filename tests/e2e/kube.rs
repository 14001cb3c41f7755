//! `meshfleet run --kube` against Kubernetes API emulators over HTTP: PyPI `kmock`'s
//! `KubernetesEmulator` (pinned in tests/requirements.txt), one per cluster, started by
//! `tests/kube/emulator.py`. No kube-apiserver can be installed on these machines; the emulator
//! is the closest real thing. What it does not do (resourceVersions, field ownership,
//! conflicts), the tests check in the exact requests meshfleet sends instead.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use meshfleet_demo::envoy::{AdsApi, Envoy, EnvoyConfig, eventually, free_port};
use meshfleet_model::Locality;
use meshfleet_runtime::kube::objects::{
    CLUSTERS, ENDPOINT_SLICES, EVENTS, LEASES, NODES, PROPAGATION_POLICIES, RESOURCE_BINDINGS,
    Resource, SECRETS, SERVICES, WORKS,
};
use meshfleet_testkit::kube::{Emulators, create, get};
use serde_json::{Value, json};

const NS: &str = "meshfleet-system";
const DEPLOYMENTS: Resource = Resource::new("apps", "v1", "Deployment", "deployments");
const CONFIG_MAPS: Resource = Resource::new("", "v1", "ConfigMap", "configmaps");

fn api(client: &kube::Client, resource: &Resource, namespace: Option<&str>) -> Api<DynamicObject> {
    resource.api(client, namespace.unwrap_or_default())
}

/// A member's node in `zone`, and an exported Service with endpoints on that node whose
/// slice gives no zone (meshfleet takes it from the node).
async fn member(client: &kube::Client, zone: &str, region: &str, address: &str) {
    create(
        client,
        &NODES,
        json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "node-1", "labels": {
                "topology.kubernetes.io/region": region, "topology.kubernetes.io/zone": zone}},
            "status": {"allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}]}}),
    )
    .await;
    create(
        client,
        &SERVICES,
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "echo", "namespace": "demo",
                "annotations": {"meshfleet.io/global": "true"}},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}),
    )
    .await;
    create(
        client,
        &ENDPOINT_SLICES,
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "echo-1", "namespace": "demo",
                "labels": {"kubernetes.io/service-name": "echo"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [address], "nodeName": "node-1",
                "conditions": {"ready": true}}]}),
    )
    .await;
}

/// The gateway cluster: east-1 registered by an Istio remote secret, west-1 by a Cluster's
/// `secretRef` (Karmada's way), a remote secret whose kubeconfig is broken, and Karmada's
/// nginx sample as a Deployment and its PropagationPolicy.
async fn gateway(emulators: &Emulators, client: &kube::Client) {
    create(
        client,
        &SECRETS,
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "istio-remote-secret-east-1", "namespace": NS,
            "labels": {"istio/multiCluster": "true"},
            "annotations": {"networking.istio.io/cluster": "east-1"}},
        "stringData": {"east-1": emulators.kubeconfig("east-1")}}),
    )
    .await;
    create(client, &SECRETS, json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "istio-remote-secret-broken", "namespace": NS,
            "labels": {"istio/multiCluster": "true"}},
        "stringData": {"broken": "apiVersion: v1\nclusters: [{name: x, cluster: {server: 's3cr3t-token'}\n"}})).await;
    create(
        client,
        &SECRETS,
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "west-1-kubeconfig", "namespace": NS},
        "stringData": {"kubeconfig": emulators.kubeconfig("west-1")}}),
    )
    .await;
    create(
        client,
        &CLUSTERS,
        json!({"apiVersion": "meshfleet.io/v1alpha1", "kind": "Cluster",
        "metadata": {"name": "east-1"},
        "spec": {"region": "us-east", "zones": ["us-east-1a"]}}),
    )
    .await;
    create(
        client,
        &CLUSTERS,
        json!({"apiVersion": "meshfleet.io/v1alpha1", "kind": "Cluster",
        "metadata": {"name": "west-1"},
        "spec": {"region": "us-west", "zones": ["us-west-2a"],
            "secretRef": {"namespace": NS, "name": "west-1-kubeconfig"}}}),
    )
    .await;
    nginx(client, &["east-1", "west-1"]).await;
}

/// Karmada's nginx sample: the Deployment (2 replicas) and its PropagationPolicy to `clusters`.
async fn nginx(client: &kube::Client, clusters: &[&str]) {
    create(
        client,
        &DEPLOYMENTS,
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "nginx"}},
            "template": {"metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}}),
    )
    .await;
    create(client, &PROPAGATION_POLICIES, json!({"apiVersion": "meshfleet.io/v1alpha1",
        "kind": "PropagationPolicy",
        "metadata": {"name": "nginx-propagation", "namespace": "default"},
        "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx"}],
            "placement": {"clusterAffinity": {"clusterNames": clusters}}}})).await;
}

/// The nginx binding's `aggregatedStatus` item for `cluster`, as the gateway holds it.
async fn nginx_status_in(gw: &kube::Client, cluster: &str) -> anyhow::Result<Value> {
    let bindings = api(gw, &RESOURCE_BINDINGS, Some("default"))
        .list(&Default::default())
        .await?;
    let binding = bindings
        .items
        .iter()
        .find(|b| b.data["spec"]["resource"]["name"] == "nginx")
        .ok_or_else(|| anyhow::anyhow!("no binding in the gateway yet"))?;
    Ok(binding.data["status"]["aggregatedStatus"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["clusterName"] == cluster).cloned())
        .unwrap_or_default())
}

/// Waits until `member`'s copy of nginx has `replicas`.
async fn copy_has_replicas(member: &kube::Client, replicas: i64) {
    eventually(Duration::from_secs(30), || async {
        let copy = get(member, &DEPLOYMENTS, Some("default"), "nginx")
            .await
            .unwrap_or_default();
        anyhow::ensure!(copy["spec"]["replicas"] == replicas, "{copy}");
        Ok(())
    })
    .await
    .unwrap();
}

/// `meshfleet run --kube` against the gateway emulator whose kubeconfig is `kubeconfig`, in
/// meshfleet's namespace, with `flags` besides.
async fn run_kube(
    kubeconfig: &str,
    flags: &[&str],
) -> (
    tokio::process::Child,
    std::net::SocketAddr,
    std::net::SocketAddr,
) {
    let mut args = vec!["--kube", "--kubeconfig", kubeconfig, "--kube-namespace", NS];
    args.extend_from_slice(flags);
    meshfleet_testkit::run_logged(&args, None).await
}

/// The emulators, holding the gateway's objects and two members'.
async fn emulated_fleet() -> (Emulators, kube::Client, kube::Client, kube::Client) {
    let emulators = Emulators::start(&["gateway", "east-1", "west-1"]);
    let gw = emulators.client("gateway").await;
    let east = emulators.client("east-1").await;
    let west = emulators.client("west-1").await;
    member(&east, "us-east-1a", "us-east", "127.0.0.41").await;
    member(&west, "us-west-2a", "us-west", "127.0.0.42").await;
    gateway(&emulators, &gw).await;
    (emulators, gw, east, west)
}

async fn fleet(admin_addr: std::net::SocketAddr) -> BTreeMap<String, Value> {
    let body = meshfleet_testkit::admin(admin_addr, "/api/fleet")
        .await
        .unwrap_or_default();
    let fleet: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let mut clusters = BTreeMap::new();
    for zone in fleet["zones"].as_array().into_iter().flatten() {
        for cluster in zone["clusters"].as_array().into_iter().flatten() {
            clusters.insert(
                cluster["name"].as_str().unwrap().to_owned(),
                cluster.clone(),
            );
        }
    }
    clusters
}

async fn start_envoy(xds_addr: std::net::SocketAddr) -> Envoy {
    let config = EnvoyConfig {
        node_id: "envoy-kube".to_owned(),
        locality: Locality::new("us-east", "us-east-1a", ""),
        network: String::new(),
        xds_addr,
        listener_port: free_port().unwrap(),
        admin_port: free_port().unwrap(),
        api: AdsApi::Sotw,
        certs: None,
    };
    Envoy::start(config, None)
        .await
        .expect("envoy not found: run `make setup` (tests/setup.sh) or set ENVOY_BIN")
}

/// Endpoints Envoy holds for the echo service.
async fn envoy_endpoints(envoy: &Envoy) -> String {
    envoy
        .admin("/clusters")
        .await
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("outbound|80||echo.demo.global::"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn members_feed_envoy_copies_are_applied_and_an_unreachable_member_goes_after_its_grace() {
    let (mut emulators, gw, east, west) = emulated_fleet().await;
    // RBAC keeps one template kind from meshfleet: told, and the rest goes on.
    emulators.command(
        "refuse gateway 403 GET /api/v1/serviceaccounts serviceaccounts is forbidden: User \"system:serviceaccount:meshfleet-system:meshfleet\" cannot list resource \"serviceaccounts\" in API group \"\" at the cluster scope",
    );

    let kubeconfig = emulators.kubeconfig_file("gateway");
    let (_controller, xds_addr, admin_addr) =
        run_kube(&kubeconfig, &["--member-grace", "6s"]).await;

    // Both members are watched: their endpoints reach a real Envoy, each with its zone.
    let envoy = start_envoy(xds_addr).await;
    let endpoints = eventually(Duration::from_secs(30), || async {
        let endpoints = envoy_endpoints(&envoy).await;
        anyhow::ensure!(
            endpoints.contains("127.0.0.41:8080") && endpoints.contains("127.0.0.42:8080"),
            "envoy has {endpoints:?}"
        );
        Ok(endpoints)
    })
    .await
    .unwrap();
    let zone_of = |address: &str| {
        endpoints
            .lines()
            .find(|l| l.contains(address) && l.contains("::zone::"))
            .map(|l| l.rsplit("::").next().unwrap_or_default().to_owned())
    };
    assert_eq!(
        zone_of("127.0.0.41").as_deref(),
        Some("us-east-1a"),
        "{endpoints}"
    );
    assert_eq!(
        zone_of("127.0.0.42").as_deref(),
        Some("us-west-2a"),
        "{endpoints}"
    );

    // Both are ready, with their nodes' capacity; the status is written back to the gateway.
    eventually(Duration::from_secs(20), || async {
        let clusters = fleet(admin_addr).await;
        for name in ["east-1", "west-1"] {
            let cluster = clusters
                .get(name)
                .ok_or_else(|| anyhow::anyhow!("no {name}"))?;
            anyhow::ensure!(cluster["ready"] == true, "{cluster}");
            anyhow::ensure!(cluster["allocatable"]["cpu"] == "8", "{cluster}");
        }
        let east = get(&gw, &CLUSTERS, None, "east-1")
            .await
            .unwrap_or_default();
        let ready = east["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready").cloned())
            .unwrap_or_default();
        anyhow::ensure!(
            ready["status"] == "True" && ready["reason"] == "ClusterReady",
            "{east}"
        );
        anyhow::ensure!(
            east["status"]["resourceSummary"]["allocatable"]["pods"] == "110",
            "{east}"
        );
        Ok(())
    })
    .await
    .unwrap();

    // The broken remote secret is reported by name, without its contents; the rest goes on.
    let problems = meshfleet_testkit::admin(admin_addr, "/debug/problems")
        .await
        .unwrap();
    assert!(
        problems.contains("istio-remote-secret-broken"),
        "{problems}"
    );
    assert!(problems.contains("not a kubeconfig"), "{problems}");
    assert!(!problems.contains("s3cr3t"), "{problems}");
    assert!(
        problems.contains("cannot list or watch serviceaccounts") && problems.contains("forbidden"),
        "{problems}"
    );

    // A policy with a misspelt field is refused; an Event on it says why, as does one on the
    // broken remote secret.
    create(
        &gw,
        &PROPAGATION_POLICIES,
        json!({"apiVersion": "meshfleet.io/v1alpha1",
        "kind": "PropagationPolicy",
        "metadata": {"name": "bad-policy", "namespace": "default"},
        "spec": {"resourceSelectors": [{"apiVersion": "v1", "kind": "ConfigMap"}],
            "placement": {"clusterAfinity": {"clusterNames": ["east-1"]}}}}),
    )
    .await;
    eventually(Duration::from_secs(30), || async {
        let mut events = api(&gw, &EVENTS, Some("default"))
            .list(&Default::default())
            .await?
            .items;
        events.extend(
            api(&gw, &EVENTS, Some(NS))
                .list(&Default::default())
                .await?
                .items,
        );
        let about = |kind: &str, name: &str| {
            events
                .iter()
                .find(|e| {
                    e.data["involvedObject"]["kind"] == kind
                        && e.data["involvedObject"]["name"] == name
                })
                .map(|e| e.data.clone())
        };
        let policy = about("PropagationPolicy", "bad-policy")
            .ok_or_else(|| anyhow::anyhow!("no event on the policy"))?;
        anyhow::ensure!(
            policy["reason"] == "InvalidObject" && policy["type"] == "Warning",
            "{policy}"
        );
        anyhow::ensure!(
            policy["message"]
                .as_str()
                .unwrap_or_default()
                .contains("clusterAfinity"),
            "{policy}"
        );
        let secret = about("Secret", "istio-remote-secret-broken")
            .ok_or_else(|| anyhow::anyhow!("no event on the secret"))?;
        let message = secret["message"].as_str().unwrap_or_default();
        anyhow::ensure!(
            message.contains("not a kubeconfig") && !message.contains("s3cr3t"),
            "{secret}"
        );
        Ok(())
    })
    .await
    .unwrap();

    // Karmada's nginx sample is applied to both members by server-side apply.
    for member in [&east, &west] {
        eventually(Duration::from_secs(20), || async {
            let copy = get(member, &DEPLOYMENTS, Some("default"), "nginx").await;
            let copy = copy.ok_or_else(|| anyhow::anyhow!("no copy yet"))?;
            anyhow::ensure!(
                copy["metadata"]["labels"]["meshfleet.io/managed"] == "true",
                "{copy}"
            );
            anyhow::ensure!(copy["spec"]["replicas"] == 2, "{copy}");
            Ok(())
        })
        .await
        .unwrap();
    }
    let applies = |requests: &[Value]| -> Vec<Value> {
        requests
            .iter()
            .filter(|r| {
                r["method"] == "PATCH"
                    && r["path"] == "/apis/apps/v1/namespaces/default/deployments/nginx"
            })
            .cloned()
            .collect()
    };
    let first = applies(&emulators.requests("east-1"));
    let apply = first.first().expect("an apply of nginx");
    assert_eq!(
        apply["content_type"], "application/apply-patch+yaml",
        "{apply}"
    );
    assert_eq!(apply["query"]["fieldManager"], "meshfleet", "{apply}");
    assert!(
        apply["query"].get("force").is_none(),
        "never forced: {apply}"
    );
    // The members' controllers report the copies' status; it comes back to the gateway: the
    // binding's aggregatedStatus per cluster, and the template's replicas summed.
    for (member, ready) in [(&east, 2), (&west, 1)] {
        let status = json!({"status": {"replicas": 2, "readyReplicas": ready,
            "updatedReplicas": 2, "availableReplicas": ready}});
        api(member, &DEPLOYMENTS, Some("default"))
            .patch_status("nginx", &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }
    eventually(Duration::from_secs(30), || async {
        let east = nginx_status_in(&gw, "east-1").await?;
        let west = nginx_status_in(&gw, "west-1").await?;
        anyhow::ensure!(
            east["applied"] == true && east["health"] == "Healthy",
            "{east}"
        );
        anyhow::ensure!(east["status"]["readyReplicas"] == 2, "{east}");
        anyhow::ensure!(
            west["applied"] == true && west["health"] == "Unhealthy",
            "{west}"
        );
        let template = get(&gw, &DEPLOYMENTS, Some("default"), "nginx")
            .await
            .unwrap_or_default();
        anyhow::ensure!(template["status"]["readyReplicas"] == 3, "{template}");
        anyhow::ensure!(template["status"]["replicas"] == 4, "{template}");
        Ok(())
    })
    .await
    .unwrap();

    // Propagation runs again on its 5 s tick; the same input sends nothing again.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(applies(&emulators.requests("east-1")).len(), first.len());

    // east-1's API server goes away: not ready at once, its endpoints kept for the grace period.
    eprintln!("east-1 goes away");
    emulators.command("stop east-1");
    eventually(Duration::from_secs(20), || async {
        let east = fleet(admin_addr).await.remove("east-1").unwrap_or_default();
        anyhow::ensure!(east["ready"] == false, "{east}");
        Ok(())
    })
    .await
    .unwrap();
    assert!(
        envoy_endpoints(&envoy).await.contains("127.0.0.41:8080"),
        "kept during the grace period"
    );
    eventually(Duration::from_secs(30), || async {
        let endpoints = envoy_endpoints(&envoy).await;
        anyhow::ensure!(!endpoints.contains("127.0.0.41:8080"), "{endpoints}");
        anyhow::ensure!(
            endpoints.contains("127.0.0.42:8080"),
            "west-1 stays: {endpoints}"
        );
        Ok(())
    })
    .await
    .unwrap();
    // Nothing applied to west-1 was removed meanwhile.
    assert!(
        get(&west, &DEPLOYMENTS, Some("default"), "nginx")
            .await
            .is_some()
    );

    // It comes back: watched afresh, its endpoints return, ready again.
    eprintln!("east-1 comes back");
    emulators.command("start east-1");
    eprintln!("east-1 is back");
    eventually(Duration::from_secs(60), || async {
        let endpoints = envoy_endpoints(&envoy).await;
        anyhow::ensure!(endpoints.contains("127.0.0.41:8080"), "{endpoints}");
        let east = fleet(admin_addr).await.remove("east-1").unwrap_or_default();
        anyhow::ensure!(east["ready"] == true, "{east}");
        Ok(())
    })
    .await
    .unwrap();
    envoy.stop().await;
}

/// Every replica serves; only the Lease holder writes, and a replica that loses the Lease
/// stops writing until it can take it again.
#[tokio::test(flavor = "multi_thread")]
async fn only_the_lease_holder_writes() {
    let (emulators, gw, east, _west) = emulated_fleet().await;
    let kubeconfig = emulators.kubeconfig_file("gateway");
    let (_controller, _, _) = run_kube(&kubeconfig, &["--lease-duration", "3s"]).await;
    let leases = api(&gw, &LEASES, Some(NS));
    let holder = eventually(Duration::from_secs(20), || async {
        let lease = leases.get("meshfleet-leader").await?;
        let spec = &lease.data["spec"];
        anyhow::ensure!(spec["holderIdentity"].is_string(), "{spec}");
        anyhow::ensure!(spec["leaseDurationSeconds"] == 3, "{spec}");
        Ok(spec["holderIdentity"].as_str().unwrap().to_owned())
    })
    .await
    .unwrap();
    eventually(Duration::from_secs(20), || async {
        get(&east, &DEPLOYMENTS, Some("default"), "nginx")
            .await
            .ok_or_else(|| anyhow::anyhow!("not applied by the holder"))
    })
    .await
    .unwrap();

    // Another replica takes the Lease and keeps renewing it.
    let renew = || async {
        let now = meshfleet_runtime::kube::lease::micro_time(std::time::SystemTime::now());
        let patch = json!({"spec": {"holderIdentity": "other-replica", "renewTime": now}});
        leases
            .patch(
                "meshfleet-leader",
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .unwrap();
    };
    renew().await;
    let deployments = api(&gw, &DEPLOYMENTS, Some("default"));
    let scale = |replicas: i64| {
        let deployments = deployments.clone();
        async move {
            deployments
                .patch(
                    "nginx",
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"spec": {"replicas": replicas}})),
                )
                .await
                .unwrap();
        }
    };
    // Past the renew period (1/7 of 3 s): this replica has seen the other holder.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        renew().await;
    }
    scale(5).await;
    for _ in 0..16 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        renew().await;
    }
    let copy = get(&east, &DEPLOYMENTS, Some("default"), "nginx")
        .await
        .unwrap();
    assert_eq!(
        copy["spec"]["replicas"], 2,
        "written while another replica held the Lease"
    );

    // The other replica stops renewing: after the Lease's duration this one takes it and writes.
    eventually(Duration::from_secs(30), || async {
        let lease = leases.get("meshfleet-leader").await?;
        anyhow::ensure!(
            lease.data["spec"]["holderIdentity"] == holder.as_str(),
            "{:?}",
            lease.data
        );
        let copy = get(&east, &DEPLOYMENTS, Some("default"), "nginx")
            .await
            .unwrap_or_default();
        anyhow::ensure!(copy["spec"]["replicas"] == 5, "{copy}");
        Ok(())
    })
    .await
    .unwrap();
}

/// Pull mode: the gateway writes an edge cluster's manifests as Works; `meshfleet agent`
/// inside the edge cluster applies them there and reports back.
#[tokio::test(flavor = "multi_thread")]
async fn the_agent_pulls_applies_and_reports() {
    let emulators = Emulators::start(&["gateway", "edge-1"]);
    let gw = emulators.client("gateway").await;
    let edge = emulators.client("edge-1").await;
    create(
        &edge,
        &NODES,
        json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node-1", "labels": {"topology.kubernetes.io/zone": "edge-a"}},
        "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}]}}),
    )
    .await;
    create(
        &gw,
        &CLUSTERS,
        json!({"apiVersion": "meshfleet.io/v1alpha1", "kind": "Cluster",
        "metadata": {"name": "edge-1"},
        "spec": {"region": "edge", "zones": ["edge-a"], "syncMode": "Pull"}}),
    )
    .await;
    nginx(&gw, &["edge-1"]).await;
    let gateway_kubeconfig = emulators.kubeconfig_file("gateway");
    let edge_kubeconfig = emulators.kubeconfig_file("edge-1");
    let (_controller, _, admin_addr) = run_kube(&gateway_kubeconfig, &[]).await;
    let _agent = tokio::process::Command::new(meshfleet_testkit::meshfleet_bin())
        .args(["agent", "--cluster", "edge-1", "--resync", "2s"])
        .args([
            "--gateway-kubeconfig",
            &gateway_kubeconfig,
            "--kubeconfig",
            &edge_kubeconfig,
        ])
        .kill_on_drop(true)
        .spawn()
        .expect("starting meshfleet agent");

    // The gateway holds the Work; the agent applied its manifest and reported.
    let works = api(&gw, &WORKS, Some("meshfleet-es-edge-1"));
    eventually(Duration::from_secs(30), || async {
        let list = works.list(&Default::default()).await?;
        let work = list
            .items
            .first()
            .ok_or_else(|| anyhow::anyhow!("no Work yet"))?;
        let manifest = &work.data["spec"]["workload"]["manifests"][0];
        anyhow::ensure!(
            manifest["kind"] == "Deployment" && manifest["metadata"]["name"] == "nginx",
            "{manifest}"
        );
        let applied = &work.data["status"]["conditions"][0];
        anyhow::ensure!(
            applied["type"] == "Applied" && applied["status"] == "True",
            "{}",
            work.data
        );
        let copy = get(&edge, &DEPLOYMENTS, Some("default"), "nginx").await;
        let copy = copy.ok_or_else(|| anyhow::anyhow!("not applied in the edge cluster"))?;
        anyhow::ensure!(
            copy["metadata"]["labels"]["meshfleet.io/managed"] == "true",
            "{copy}"
        );
        Ok(())
    })
    .await
    .unwrap();
    // The agent's report makes the Cluster ready, with its nodes' capacity.
    eventually(Duration::from_secs(30), || async {
        let edge = fleet(admin_addr).await.remove("edge-1").unwrap_or_default();
        anyhow::ensure!(
            edge["ready"] == true && edge["allocatable"]["cpu"] == "4",
            "{edge}"
        );
        Ok(())
    })
    .await
    .unwrap();
    // A change to the template reaches the edge cluster through its Work.
    api(&gw, &DEPLOYMENTS, Some("default"))
        .patch(
            "nginx",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    copy_has_replicas(&edge, 3).await;
}

/// A copy that a member refuses (a conflict with another field manager, an RBAC refusal) is
/// told as an Event on its template and in the binding's status, naming the cluster and the
/// API server's reason; every other copy is applied; only meshfleet's own copies are pruned.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_copy_is_told_and_costs_only_itself() {
    let (mut emulators, gw, east, west) = emulated_fleet().await;
    let nginx = "/apis/apps/v1/namespaces/default/deployments/nginx";
    emulators.command(&format!(
        "refuse east-1 409 PATCH {nginx} Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.replicas"
    ));
    emulators.command(&format!(
        "refuse west-1 403 PATCH {nginx} deployments.apps \"nginx\" is forbidden: User \"system:serviceaccount:meshfleet-system:meshfleet-reader\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"default\""
    ));
    create(
        &gw,
        &CONFIG_MAPS,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "default"}, "data": {"level": "info"}}),
    )
    .await;
    create(&gw, &PROPAGATION_POLICIES, json!({"apiVersion": "meshfleet.io/v1alpha1",
        "kind": "PropagationPolicy",
        "metadata": {"name": "settings-propagation", "namespace": "default"},
        "spec": {"resourceSelectors": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "settings"}],
            "placement": {"clusterAffinity": {"clusterNames": ["east-1", "west-1"]}}}}))
    .await;
    // The members already hold an nginx someone else made (`kubectl create`): kmock answers a
    // PATCH of an object it does not hold with 404 before any refusal.
    for member in [&east, &west] {
        create(
            member,
            &DEPLOYMENTS,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "nginx", "namespace": "default"}, "spec": {"replicas": 1}}),
        )
        .await;
    }
    // In west-1, a copy meshfleet applied before a restart and no longer wants, and an object
    // of the same kind that is not meshfleet's.
    create(&west, &CONFIG_MAPS, json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "leftover", "namespace": "default", "labels": {"meshfleet.io/managed": "true"}}}))
    .await;
    create(
        &west,
        &CONFIG_MAPS,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "users-own", "namespace": "default"}}),
    )
    .await;
    let kubeconfig = emulators.kubeconfig_file("gateway");
    let (_controller, _, _) = run_kube(&kubeconfig, &[]).await;

    eventually(Duration::from_secs(30), || async {
        let events = api(&gw, &EVENTS, Some("default"))
            .list(&Default::default())
            .await?
            .items;
        let failed: Vec<String> = events
            .iter()
            .filter(|e| {
                e.data["reason"] == "ApplyFailed" && e.data["involvedObject"]["name"] == "nginx"
            })
            .filter_map(|e| e.data["message"].as_str().map(str::to_owned))
            .collect();
        let told = |cluster: &str, words: &[&str]| {
            failed.iter().any(|m| {
                m.contains(&format!("cluster {cluster}")) && words.iter().all(|w| m.contains(w))
            })
        };
        anyhow::ensure!(
            told(
                "east-1",
                &[
                    "conflict with another field manager",
                    "kubectl-edit",
                    ".spec.replicas"
                ]
            ),
            "{failed:?}"
        );
        anyhow::ensure!(
            told("west-1", &["forbidden (RBAC)", "cannot patch"]),
            "{failed:?}"
        );
        // The other template went everywhere.
        for member in [&east, &west] {
            anyhow::ensure!(
                get(member, &CONFIG_MAPS, Some("default"), "settings")
                    .await
                    .is_some(),
                "settings not applied"
            );
        }
        // What meshfleet owned and no longer wants is gone; what it never owned stays.
        anyhow::ensure!(
            get(&west, &CONFIG_MAPS, Some("default"), "leftover")
                .await
                .is_none(),
            "leftover kept"
        );
        anyhow::ensure!(
            get(&west, &CONFIG_MAPS, Some("default"), "users-own")
                .await
                .is_some(),
            "users-own removed"
        );
        // The binding says so per cluster.
        let east = nginx_status_in(&gw, "east-1").await?;
        anyhow::ensure!(east["applied"] == false, "{east}");
        anyhow::ensure!(
            east["appliedMessage"]
                .as_str()
                .unwrap_or_default()
                .contains("kubectl-edit"),
            "{east}"
        );
        Ok(())
    })
    .await
    .unwrap();
    // Never forced: the conflict stays the other manager's to resolve.
    let patches: Vec<Value> = emulators
        .requests("east-1")
        .into_iter()
        .filter(|r| r["method"] == "PATCH" && r["path"] == nginx)
        .collect();
    assert!(!patches.is_empty());
    assert!(
        patches.iter().all(|r| r["query"].get("force").is_none()),
        "{patches:?}"
    );
}
