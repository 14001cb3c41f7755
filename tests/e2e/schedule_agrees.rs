//! `meshfleet run` and `meshfleet schedule` agree on the same files. A small fleet (clusters in
//! zones of three regions, four Deployments, policies dividing or duplicating replicas with
//! spread constraints) goes through a seeded random sequence of changes, one file at a time:
//! replicas edited, clusters added and removed, a policy changed, a cluster tainted, failed or
//! recovered, a rebalance asked for. After each one, `schedule` runs on the same files plus, as ResourceBinding
//! documents, the bindings `run` held before the change: its history, which `schedule` starts
//! from as Karmada's scheduler starts from a binding. `run` must reach exactly the bindings
//! `schedule` prints (`/debug/bindings`) and write exactly their copies under `--state-dir`.
//!
//! Each Deployment has one policy: a binding document pins the policy that claimed its
//! template (Karmada's labels), whereas `run` decides claims from the policies present, so a
//! competing policy of higher priority is claimed differently by the two.
//!
//! `MESHFLEET_AGREE_SEED=N` replays another sequence.

use meshfleet_testkit as support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use meshfleet_demo::envoy::eventually;
use meshfleet_demo::fleet::write_atomic;
use meshfleet_propagation::failover::{format_time, parse_time};

/// Changes per run: about 0.1 s each.
const STEPS: usize = 60;

/// Clusters that may join the fleet: `(name, region, zone, cpu)`. The first four start in it.
const POOL: [(&str, &str, &str, u32); 6] = [
    ("east-a", "us-east", "us-east-1a", 8),
    ("east-b", "us-east", "us-east-1b", 12),
    ("west-a", "us-west", "us-west-2a", 6),
    ("west-b", "us-west", "us-west-2b", 16),
    ("east-c", "us-east", "us-east-1a", 4),
    ("eu-a", "eu-central", "eu-central-1a", 10),
];

const DEPLOYMENTS: [&str; 4] = ["web", "api", "worker", "batch"];

/// Placements a policy switches between: divided (dynamic, aggregated, static, equal weights)
/// and duplicated, with spread constraints by cluster, zone and region.
const PLACEMENTS: [&str; 7] = [
    "
    spreadConstraints:
    - {spreadByField: region, minGroups: 1, maxGroups: 2}
    - {spreadByField: cluster, minGroups: 1, maxGroups: 3}
    replicaScheduling:
      replicaSchedulingType: Divided
      replicaDivisionPreference: Weighted
      weightPreference: {dynamicWeight: AvailableReplicas}",
    "
    spreadConstraints:
    - {spreadByField: cluster, minGroups: 1, maxGroups: 2}
    replicaScheduling:
      replicaSchedulingType: Divided
      replicaDivisionPreference: Aggregated",
    "
    replicaScheduling:
      replicaSchedulingType: Divided
      replicaDivisionPreference: Weighted
      weightPreference:
        staticWeightList:
        - {targetCluster: {labelSelector: {matchLabels: {tier: gold}}}, weight: 2}
        - {targetCluster: {fieldSelector: {matchExpressions: [{key: region, operator: In, values: [us-west]}]}}, weight: 1}",
    "
    spreadConstraints:
    - {spreadByField: zone, minGroups: 2, maxGroups: 2}
    - {spreadByField: cluster, minGroups: 2, maxGroups: 3}",
    "
    spreadConstraints:
    - {spreadByField: region, minGroups: 2, maxGroups: 2}
    - {spreadByField: cluster, minGroups: 2, maxGroups: 4}
    replicaScheduling:
      replicaSchedulingType: Divided
      replicaDivisionPreference: Weighted
      weightPreference: {dynamicWeight: AvailableReplicas}",
    "
    clusterTolerations:
    - {key: maintenance, operator: Exists, effect: NoSchedule}
    replicaScheduling: {replicaSchedulingType: Divided}",
    "
    clusterAffinity: {fieldSelector: {matchExpressions: [{key: region, operator: In, values: [us-east]}]}}
    spreadConstraints:
    - {spreadByField: cluster, minGroups: 1, maxGroups: 2}",
];

/// A small xorshift generator: the same seed, the same changes.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % bound as u64).unwrap_or(0)
    }
}

/// How a member cluster is.
#[derive(Clone, Copy, Debug, Default)]
struct Health {
    /// Tainted `maintenance=true:NoSchedule`.
    tainted: bool,
    /// Ready `False`, since long before the test.
    failed: bool,
}

/// The fleet as the files say it is.
struct Fleet {
    /// Which of [`POOL`] are members, and how each is.
    members: [Option<Health>; POOL.len()],
    replicas: [u32; DEPLOYMENTS.len()],
    placements: [usize; DEPLOYMENTS.len()],
    /// The Deployment a rebalance was last asked for, and when (`rebalance.yaml`, a
    /// ResourceBinding document with `spec.rescheduleTriggeredAt`).
    rebalance: Option<(usize, String)>,
}

impl Fleet {
    fn new() -> Self {
        Self {
            members: [
                Some(Health::default()),
                Some(Health::default()),
                Some(Health::default()),
                Some(Health::default()),
                None,
                None,
            ],
            replicas: [4, 3, 6, 2],
            placements: [0, 1, 2, 3],
            rebalance: None,
        }
    }

    fn cluster(&self, i: usize) -> Option<String> {
        let health = self.members[i]?;
        let (name, region, zone, cpu) = POOL[i];
        let tier = if i.is_multiple_of(2) {
            "gold"
        } else {
            "silver"
        };
        let taints = if health.tainted {
            "[{key: maintenance, value: 'true', effect: NoSchedule}]"
        } else {
            "[]"
        };
        // Failed long ago: past every toleration, its replicas move at once.
        let ready = if health.failed {
            "{type: Ready, status: 'False', lastTransitionTime: '2026-01-01T00:00:00Z'}"
        } else {
            "{type: Ready, status: 'True'}"
        };
        Some(format!(
            "apiVersion: cluster.karmada.io/v1alpha1
kind: Cluster
metadata: {{name: {name}, labels: {{tier: {tier}}}}}
spec: {{region: {region}, zone: {zone}, taints: {taints}}}
status:
  conditions: [{ready}]
  resourceSummary: {{allocatable: {{cpu: '{cpu}', pods: '110'}}}}
"
        ))
    }

    fn deployment(&self, d: usize) -> String {
        let (name, replicas) = (DEPLOYMENTS[d], self.replicas[d]);
        format!(
            "apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: shop}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: {name}, image: {name}, resources: {{requests: {{cpu: 500m}}}}}}]
"
        )
    }

    fn policy(&self, d: usize) -> String {
        let name = DEPLOYMENTS[d];
        let placement = PLACEMENTS[self.placements[d]];
        // Half the Deployments leave a failed cluster at once, half keep the copy there while
        // its grace period runs.
        let failover = if d.is_multiple_of(2) {
            "\n  failover: {cluster: {purgeMode: Directly}}"
        } else {
            ""
        };
        format!(
            "apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata: {{name: {name}, namespace: shop}}
spec:
  resourceSelectors: [{{apiVersion: apps/v1, kind: Deployment, name: {name}}}]{failover}
  placement:{placement}
"
        )
    }

    /// Every file, by name (`None`: absent).
    fn files(&self) -> Vec<(String, Option<String>)> {
        let clusters =
            (0..POOL.len()).map(|i| (format!("cluster-{}.yaml", POOL[i].0), self.cluster(i)));
        let deployments = (0..DEPLOYMENTS.len()).map(|d| {
            (
                format!("deployment-{}.yaml", DEPLOYMENTS[d]),
                Some(self.deployment(d)),
            )
        });
        let policies = (0..DEPLOYMENTS.len()).map(|d| {
            (
                format!("policy-{}.yaml", DEPLOYMENTS[d]),
                Some(self.policy(d)),
            )
        });
        let rebalance = ("rebalance.yaml".to_owned(), self.rebalance_document());
        clusters
            .chain(deployments)
            .chain(policies)
            .chain([rebalance])
            .collect()
    }

    /// A rebalance as Karmada's WorkloadRebalancer asks for one: on the binding.
    fn rebalance_document(&self) -> Option<String> {
        let (d, asked) = self.rebalance.as_ref()?;
        let name = DEPLOYMENTS[*d];
        Some(format!(
            "apiVersion: work.karmada.io/v1alpha2
kind: ResourceBinding
metadata: {{name: {name}-deployment, namespace: shop}}
spec:
  resource: {{apiVersion: apps/v1, kind: Deployment, namespace: shop, name: {name}}}
  rescheduleTriggeredAt: '{asked}'
"
        ))
    }

    /// Whether the clock alone can make `run` schedule `binding` again (an eviction under way,
    /// a target failed): then when it last did is not known here.
    fn timed(&self, binding: &serde_json::Value) -> bool {
        let spec = &binding["spec"];
        let evicting = spec["gracefulEvictionTasks"]
            .as_array()
            .is_some_and(|t| !t.is_empty());
        let failed = |name: &str| {
            (0..POOL.len()).any(|i| POOL[i].0 == name && self.members[i].is_some_and(|h| h.failed))
        };
        let on_failed = spec["clusters"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| failed(t["name"].as_str().unwrap_or("")));
        evicting || on_failed
    }

    /// One random change, `previous` being the bindings before it; returns the file it touches,
    /// what the file says and what changed.
    fn change(
        &mut self,
        rng: &mut Rng,
        previous: &serde_json::Value,
    ) -> (String, Option<String>, String) {
        loop {
            match rng.below(6) {
                0 => {
                    let d = rng.below(DEPLOYMENTS.len());
                    let replicas = u32::try_from(rng.below(12)).unwrap_or(0) + 1;
                    self.replicas[d] = replicas;
                    let what = format!("{} scaled to {replicas}", DEPLOYMENTS[d]);
                    return (
                        format!("deployment-{}.yaml", DEPLOYMENTS[d]),
                        Some(self.deployment(d)),
                        what,
                    );
                }
                1 => {
                    let i = rng.below(POOL.len());
                    let present = self.members.iter().filter(|m| m.is_some()).count();
                    let what = if self.members[i].is_some() {
                        if present <= 2 {
                            continue;
                        }
                        self.members[i] = None;
                        format!("{} removed", POOL[i].0)
                    } else {
                        self.members[i] = Some(Health::default());
                        format!("{} added", POOL[i].0)
                    };
                    return (format!("cluster-{}.yaml", POOL[i].0), self.cluster(i), what);
                }
                2 => {
                    let d = rng.below(DEPLOYMENTS.len());
                    let placement = rng.below(PLACEMENTS.len());
                    self.placements[d] = placement;
                    let what = format!("{}'s policy now placement {placement}", DEPLOYMENTS[d]);
                    return (
                        format!("policy-{}.yaml", DEPLOYMENTS[d]),
                        Some(self.policy(d)),
                        what,
                    );
                }
                3 => {
                    let i = rng.below(POOL.len());
                    let Some(health) = &mut self.members[i] else {
                        continue;
                    };
                    health.tainted = !health.tainted;
                    let what = if health.tainted {
                        "tainted"
                    } else {
                        "untainted"
                    };
                    let what = format!("{} {what}", POOL[i].0);
                    return (format!("cluster-{}.yaml", POOL[i].0), self.cluster(i), what);
                }
                4 => {
                    let d = rng.below(DEPLOYMENTS.len());
                    let items = previous["items"].as_array().into_iter().flatten();
                    let mut bound =
                        items.filter(|b| b["spec"]["resource"]["name"] == DEPLOYMENTS[d]);
                    let Some(binding) = bound.next() else {
                        continue;
                    };
                    if self.timed(binding) {
                        continue;
                    }
                    let last = binding["status"]["lastScheduledTime"]
                        .as_str()
                        .and_then(parse_time);
                    self.rebalance = Some((d, time_after(last)));
                    let what = format!("{} rebalanced", DEPLOYMENTS[d]);
                    return ("rebalance.yaml".to_owned(), self.rebalance_document(), what);
                }
                _ => {
                    let i = rng.below(POOL.len());
                    let Some(health) = &mut self.members[i] else {
                        continue;
                    };
                    health.failed = !health.failed;
                    let what = if health.failed { "failed" } else { "recovered" };
                    let what = format!("{} {what}", POOL[i].0);
                    return (format!("cluster-{}.yaml", POOL[i].0), self.cluster(i), what);
                }
            }
        }
    }
}

/// Now, in whole seconds as Karmada writes times, once later than `last`.
fn time_after(last: Option<SystemTime>) -> String {
    loop {
        let now = format_time(SystemTime::now());
        if last.is_none_or(|last| parse_time(&now).is_some_and(|now| now > last)) {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write(dir: &Path, file: &str, text: Option<&str>) {
    let path = dir.join(file);
    match text {
        Some(text) => write_atomic(&path, text).expect("writing a config file"),
        None => match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{}: {e}", path.display()),
            _ => {}
        },
    }
}

/// Bindings by resource, without the times the clock puts in them (`status.lastScheduledTime`,
/// an eviction task's `creationTimestamp`), which two processes never share.
type Bindings = BTreeMap<String, serde_json::Value>;

fn bindings(list: &serde_json::Value) -> Bindings {
    list["items"]
        .as_array()
        .expect("a List of bindings")
        .iter()
        .map(|item| {
            let r = &item["spec"]["resource"];
            let key = format!(
                "{}/{}/{}",
                r["namespace"].as_str().unwrap_or(""),
                r["kind"],
                r["name"]
            );
            let mut item = item.clone();
            if let Some(status) = item["status"].as_object_mut() {
                status.remove("lastScheduledTime");
            }
            let tasks = item["spec"]["gracefulEvictionTasks"].as_array_mut();
            for task in tasks.into_iter().flatten() {
                if let Some(task) = task.as_object_mut() {
                    task.remove("creationTimestamp");
                }
            }
            (key, item)
        })
        .collect()
}

/// `meshfleet schedule -o json` on `config` with `previous` written into it as binding
/// documents (the one a rebalance was asked for carrying the request, in place of
/// `rebalance.yaml`). Exit status 2 (a binding not scheduled) still prints every binding.
fn schedule(config: &Path, fleet: &Fleet, previous: &serde_json::Value) -> Bindings {
    for (file, text) in fleet.files() {
        let text = text.filter(|_| file != "rebalance.yaml");
        write(config, &file, text.as_deref());
    }
    let mut previous = previous.clone();
    let items = previous["items"].as_array_mut().into_iter().flatten();
    for binding in items {
        if let Some((d, asked)) = &fleet.rebalance
            && binding["spec"]["resource"]["name"] == DEPLOYMENTS[*d]
        {
            binding["spec"]["rescheduleTriggeredAt"] = asked.as_str().into();
        }
    }
    let documents: Vec<String> = previous["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|b| serde_norway::to_string(b).expect("YAML"))
                .collect()
        })
        .unwrap_or_default();
    write(config, "previous.yaml", Some(&documents.join("---\n")));
    let out = Command::new(env!("CARGO_BIN_EXE_meshfleet"))
        .args(["schedule", "-o", "json", "--config"])
        .arg(config)
        .output()
        .expect("running meshfleet schedule");
    assert!(
        matches!(out.status.code(), Some(0 | 2)),
        "meshfleet schedule: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bindings(&serde_json::from_slice(&out.stdout).expect("schedule prints JSON"))
}

async fn run_bindings(admin: SocketAddr) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_str(
        &support::admin(admin, "/debug/bindings").await?,
    )?)
}

/// What the bindings put in the member clusters' directories: `(cluster, deployment)` to
/// replicas, for the clusters in the fleet: a copy per target, and one per eviction task (kept
/// until its replacement is ready, or put back when its cluster returns).
fn copies_of(bindings: &Bindings, fleet: &Fleet) -> BTreeMap<(String, String), i64> {
    let members: Vec<&str> = (0..POOL.len())
        .filter(|&i| fleet.members[i].is_some())
        .map(|i| POOL[i].0)
        .collect();
    let mut copies = BTreeMap::new();
    for binding in bindings.values() {
        let spec = &binding["spec"];
        let name = spec["resource"]["name"].as_str().unwrap_or("").to_owned();
        let divided = spec["placement"]["replicaScheduling"]["replicaSchedulingType"] == "Divided";
        let all = spec["replicas"].as_i64().unwrap_or(0);
        let targets = spec["clusters"].as_array().into_iter().flatten();
        let tasks = spec["gracefulEvictionTasks"]
            .as_array()
            .into_iter()
            .flatten();
        let places = targets
            .map(|t| (&t["name"], &t["replicas"]))
            .chain(tasks.map(|t| (&t["fromCluster"], &t["replicas"])));
        for (cluster, share) in places {
            let cluster = cluster.as_str().unwrap_or("");
            if members.contains(&cluster) {
                let replicas = if divided {
                    share.as_i64().unwrap_or(0)
                } else {
                    all
                };
                copies.insert((cluster.to_owned(), name.clone()), replicas);
            }
        }
    }
    copies
}

/// What `run` wrote for the clusters in the fleet.
fn copies_written(state: &Path, fleet: &Fleet) -> anyhow::Result<BTreeMap<(String, String), i64>> {
    let mut copies = BTreeMap::new();
    for (i, member) in fleet.members.iter().enumerate() {
        if member.is_none() {
            continue;
        }
        let dir = state.join("clusters").join(POOL[i].0).join("shop");
        for entry in std::fs::read_dir(&dir).into_iter().flatten() {
            let path = entry?.path();
            let text = std::fs::read_to_string(&path)?;
            let copy: serde_norway::Value = serde_norway::from_str(&text)?;
            let name = copy["metadata"]["name"].as_str().unwrap_or("").to_owned();
            let replicas = copy["spec"]["replicas"].as_i64().unwrap_or(0);
            copies.insert((POOL[i].0.to_owned(), name), replicas);
        }
    }
    Ok(copies)
}

/// The first difference between two sets of bindings, for the failure message.
fn difference(want: &Bindings, got: &Bindings) -> String {
    for key in want.keys().chain(got.keys()) {
        if want.get(key) != got.get(key) {
            let show = |b: Option<&serde_json::Value>| {
                b.map_or("absent".to_owned(), |b| {
                    format!("clusters {} status {}", b["spec"]["clusters"], b["status"])
                })
            };
            return format!(
                "{key}: schedule {}, run {}",
                show(want.get(key)),
                show(got.get(key))
            );
        }
    }
    "none".to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_and_schedule_agree_over_random_changes() {
    let seed = std::env::var("MESHFLEET_AGREE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_F1EE_u64);
    let mut rng = Rng(seed.max(1));
    let (config, dry, state) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let mut fleet = Fleet::new();
    for (file, text) in fleet.files() {
        write(config.path(), &file, text.as_deref());
    }
    let state_dir = state.path().to_str().unwrap().to_owned();
    let (_controller, _, admin) =
        // `schedule` reads the files as they are; `run` would keep a removed cluster as an
        // unreachable one for a while (and an emptied file's objects), which the binding
        // history fed to `schedule` does not carry: without those grace periods both read the
        // same fleet.
        support::serve_with(
            config.path(),
            &[
                "--state-dir",
                &state_dir,
                "--removed-cluster-grace",
                "0s",
                "--empty-file-grace",
                "0s",
            ],
        )
        .await;

    let mut previous = serde_json::json!({"items": []});
    let mut history = vec!["the first fleet".to_owned()];
    for step in 0..=STEPS {
        if step > 0 {
            let (file, text, what) = fleet.change(&mut rng, &previous);
            write(config.path(), &file, text.as_deref());
            history.push(what);
        }
        let want = schedule(dry.path(), &fleet, &previous);
        let copies = copies_of(&want, &fleet);
        let reached = eventually(Duration::from_secs(5), || async {
            let got = run_bindings(admin).await?;
            let normalized = bindings(&got);
            anyhow::ensure!(normalized == want, "{}", difference(&want, &normalized));
            let written = copies_written(state.path(), &fleet)?;
            anyhow::ensure!(
                written == copies,
                "copies: schedule {copies:?}, run wrote {written:?}"
            );
            Ok(got)
        })
        .await;
        match reached {
            Ok(got) => previous = got,
            Err(error) => panic!(
                "seed {seed}, step {step}: run and schedule disagree: {error:#}\nchanges: {}",
                history.join("; ")
            ),
        }
    }
}
