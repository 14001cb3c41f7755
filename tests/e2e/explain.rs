//! `meshfleet explain` against a real Envoy: the split it predicts after a failure is the one
//! Envoy then gives, within a point; and bad questions exit 2 with a clear message.

use std::process::Command;

use meshfleet_demo::envoy::AdsApi;
use meshfleet_testkit::{self as support, EAST, Mesh, WEST};

/// `meshfleet explain --config DIR ARGS...`: its exit code, stdout and stderr.
fn explain(config: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(support::meshfleet_bin())
        .arg("explain")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `meshfleet explain --config DIR ARGS... -o json`: the percent per zone.
fn predict(config: &std::path::Path, args: &[&str]) -> std::collections::BTreeMap<String, f64> {
    let args: Vec<&str> = args.iter().copied().chain(["-o", "json"]).collect();
    let (code, out, err) = explain(config, &args);
    assert_eq!(code, Some(0), "{err}");
    let split: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut zones = std::collections::BTreeMap::new();
    for l in split["localities"].as_array().unwrap() {
        let zone = l["locality"]["zone"].as_str().unwrap().to_owned();
        *zones.entry(zone).or_insert(0.0) += l["percent"].as_f64().unwrap();
    }
    zones
}

/// Stops cluster east-1's backends, waits until Envoy has ejected them, sends `requests` and
/// holds the share that reaches the west zone within a point of `predicted`.
async fn fail_east_1_and_compare(
    mesh: &Mesh,
    envoy: &meshfleet_demo::envoy::Envoy,
    predicted: f64,
    requests: u64,
) {
    for backend in &mesh.fleet.backends[0] {
        backend.stop();
    }
    ejected(envoy, 3).await;
    let tally = support::send(envoy, requests).await;
    let measured = tally.share(WEST);
    eprintln!(
        "predicted {predicted:.2}% west, measured {measured:.2}% ({:?}, {} failed)",
        tally.zones, tally.failed
    );
    assert!(
        (measured - predicted).abs() <= 1.0,
        "predicted {predicted:.2}% west, Envoy gave {measured:.2}%: {:?}",
        tally.zones
    );
}

/// Sends requests until Envoy's outlier detection has ejected `count` hosts of echo's
/// cluster (each dead host is ejected when a request meets it): the split is measured after.
async fn ejected(envoy: &meshfleet_demo::envoy::Envoy, count: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        support::send(envoy, 50).await;
        let clusters = envoy.admin("/clusters").await.unwrap_or_default();
        let now = clusters
            .lines()
            .filter(|l| l.starts_with("outbound|80||echo.demo.global::"))
            .filter(|l| l.contains("health_flags::") && l.contains("failed_outlier_check"))
            .count();
        if now >= count {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Envoy ejected {now} of the {count} dead hosts"
        );
    }
}

/// Half of the client's zone dies (cluster east-1's three backends of six): the prediction,
/// 99 × 0.7 against 1 (the zone's availability is 1.4 × 3/6), is what Envoy measures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_predicted_split_after_a_cluster_fails_is_what_envoy_gives() {
    let mesh = Mesh::start().await;
    let envoy = mesh.envoy(EAST, AdsApi::Sotw).await;
    let from = format!("us-east/{EAST}");
    let before = predict(&mesh.fleet.dir, &["echo.demo.global", "--from", &from]);
    assert_eq!((before[EAST], before[WEST]), (99.0, 1.0));
    let after = predict(
        &mesh.fleet.dir,
        &[
            "echo.demo.global",
            "--from",
            &from,
            "--without-cluster",
            "east-1",
        ],
    );
    let expected = 100.0 * 99.0 * 0.7 / (99.0 * 0.7 + 1.0);
    assert!((after[EAST] - expected).abs() < 0.05, "{after:?}");

    fail_east_1_and_compare(&mesh, &envoy, after[WEST], 6_000).await;
}

#[test]
fn bad_questions_exit_2_with_what_is_wrong() {
    let example = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/two-zone");
    let run = |args: &[&str]| {
        let (code, _, err) = explain(&example, args);
        (code, err)
    };
    let east = "us-east/us-east-1a";
    for (args, says) in [
        (
            vec!["nope.demo.global", "--from", east],
            "no global service \"nope.demo.global\"",
        ),
        (
            vec!["echo.demo.global", "--from", "mars/x"],
            "no cluster is in locality \"mars/x\"",
        ),
        (
            vec!["echo.demo.global:81", "--from", east],
            "has no port 81",
        ),
        (
            vec![
                "echo.demo.global",
                "--from",
                east,
                "--without-cluster",
                "nope",
            ],
            "--without-cluster \"nope\": no such Cluster",
        ),
        (
            vec!["echo.demo.global", "--from", east, "--without-zone", "z9"],
            "--without-zone \"z9\": no such zone",
        ),
    ] {
        let (code, stderr) = run(&args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // The clusterset name works as well as the .global one.
    let (code, stderr) = run(&["orders.shop.svc.clusterset.local", "--from", east]);
    assert_eq!(code, Some(0), "{stderr}");
}

/// Istio's failover (a DestinationRule): the client's zone at priority 0. Half of it dies:
/// priority 0 keeps 1.4 × 3/6 = 70% of the load and 30% spills to the next priority, as
/// predicted and as Envoy measures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_predicted_priority_spill_over_is_what_envoy_gives() {
    let rule = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: echo\n  \
                namespace: demo\nspec:\n  host: echo.demo.global\n  trafficPolicy:\n    \
                loadBalancer:\n      localityLbSetting:\n        enabled: true\n    \
                outlierDetection:\n      consecutive5xxErrors: 1\n      interval: 1s\n      \
                baseEjectionTime: 60s\n      maxEjectionPercent: 100\n";
    let mesh = Mesh::start_with(meshfleet_demo::fleet::two_zones(), |fleet| {
        std::fs::write(fleet.dir.join("rule.yaml"), rule).unwrap();
    })
    .await;
    let envoy = mesh.envoy(EAST, AdsApi::Delta).await;
    let from = format!("us-east/{EAST}");
    let args = [
        "echo.demo.global",
        "--from",
        &from,
        "--without-cluster",
        "east-1",
    ];
    let after = predict(&mesh.fleet.dir, &args);
    assert_eq!((after[EAST], after[WEST]), (70.0, 30.0), "{after:?}");

    // 20,000 requests: the binomial spread of a 30% share is 0.3 points.
    fail_east_1_and_compare(&mesh, &envoy, after[WEST], 20_000).await;
}

/// Karmada's nginx sample: why each cluster was chosen or filtered, and where the replicas go
/// when a chosen cluster fails.
#[test]
fn a_binding_is_explained_cluster_by_cluster_and_after_a_failure() {
    let karmada = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/karmada");
    let run = |args: &[&str]| explain(&karmada, args);
    let (code, out, err) = run(&["--binding", "default/Deployment/nginx", "-o", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let e: serde_json::Value = serde_json::from_str(&out).unwrap();
    let verdicts: Vec<(String, String, i64)> = e["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["cluster"].as_str().unwrap().to_owned(),
                c["verdict"].as_str().unwrap().to_owned(),
                c["replicas"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("member1".to_owned(), "selected".to_owned(), 1),
            ("member2".to_owned(), "selected".to_owned(), 1),
            ("member3".to_owned(), "filtered".to_owned(), 0),
        ]
    );
    assert_eq!(
        e["clusters"][2]["reason"],
        "did not match the placement cluster affinity constraint"
    );

    // A cluster fails: past the not-ready toleration its replica goes to the other cluster
    // the static weights name. member2 is the second document of its file.
    let after_failing = |cluster: &str| -> Vec<i64> {
        let args = [
            "--binding",
            "default/deployment/nginx",
            "--without-cluster",
            cluster,
            "-o",
            "json",
        ];
        let (code, out, err) = run(&args);
        assert_eq!(code, Some(0), "{err}");
        let e: serde_json::Value = serde_json::from_str(&out).unwrap();
        e["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["after"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(after_failing("member1"), [0, 2, 0]);
    assert_eq!(after_failing("member2"), [2, 0, 0]);

    let (code, _, err) = run(&["--binding", "default/Deployment/nope"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("no propagated resource \"default/Deployment/nope\""),
        "{err}"
    );
    let (code, _, err) = run(&[
        "--binding",
        "default/Deployment/nginx",
        "--without-cluster",
        "x",
    ]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--without-cluster \"x\": no such Cluster"),
        "{err}"
    );
}
