//! Ordinary accidents to a served config directory, through the binary as a user meets them:
//! a FIFO dropped into it, the directory moved away and back, a file rewritten by a shell's
//! `>`, a cluster removed from its file. None may stop meshfleet, empty the mesh or move a
//! workload.

use meshfleet_testkit as support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use meshfleet_demo::envoy::{AdsApi, eventually};
use support::{EAST, Mesh, send};

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

async fn readyz(mesh_admin: std::net::SocketAddr) -> (u16, String) {
    meshfleet_demo::traffic::get(mesh_admin, "localhost", "/readyz")
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_or_a_vanished_directory_neither_hangs_nor_empties_the_mesh() {
    let mut mesh = Mesh::start().await;
    let envoy = mesh.envoy(EAST, AdsApi::Sotw).await;
    let dir = mesh.fleet.dir.clone();

    // A FIFO is skipped without waiting for a writer, and said.
    mkfifo(&dir.join("pipe.yaml"));
    eventually(Duration::from_secs(10), || async {
        let body = mesh.admin("/debug/problems").await?;
        anyhow::ensure!(
            body.contains("not a regular file (a FIFO)"),
            "not yet: {body}"
        );
        Ok(())
    })
    .await
    .unwrap();
    // A one-shot command on the same directory ends too.
    let started = Instant::now();
    let out = Command::new(support::meshfleet_bin())
        .args(["catalog", "--config", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    std::fs::remove_file(dir.join("pipe.yaml")).unwrap();

    // The directory moved away: what it held keeps being served, and the loss is said.
    let away = dir.with_extension("away");
    std::fs::rename(&dir, &away).unwrap();
    let admin = mesh.admin_addr;
    eventually(Duration::from_secs(10), || async {
        let (status, body) = readyz(admin).await;
        anyhow::ensure!(status == 503, "still ready: {body}");
        anyhow::ensure!(
            body.contains("the config directory cannot be read"),
            "{body}"
        );
        Ok(())
    })
    .await
    .unwrap();
    let problems = mesh.admin("/debug/problems").await.unwrap();
    assert!(
        problems.contains("cannot read the config directory"),
        "{problems}"
    );
    let metrics = mesh.admin("/metrics").await.unwrap();
    assert!(
        metrics.contains("meshfleet_config_source_up 0"),
        "{metrics}"
    );
    let tally = send(&envoy, 500).await;
    assert_eq!(tally.failed, 0, "{tally:?}");
    assert!((tally.share(EAST) - 99.0).abs() <= 1.0, "{tally:?}");

    // Back: ready again, and followed again.
    std::fs::rename(&away, &dir).unwrap();
    eventually(Duration::from_secs(10), || async {
        let (status, body) = readyz(admin).await;
        anyhow::ensure!(status == 200, "not ready: {body}");
        Ok(())
    })
    .await
    .unwrap();
    let metrics = mesh.admin("/metrics").await.unwrap();
    assert!(
        metrics.contains("meshfleet_config_source_up 1"),
        "{metrics}"
    );

    // SIGTERM ends it promptly.
    let started = Instant::now();
    let status = mesh.terminate().await;
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// A copy of `examples/karmada` (three clusters, nginx divided over member1 and member2).
fn karmada_copy() -> tempfile::TempDir {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/karmada");
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(examples).unwrap().flatten() {
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

/// Every file the directory sink wrote, with its contents.
fn written(state: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut dirs = vec![state.join("clusters")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let name = path.strip_prefix(state).unwrap().display().to_string();
                files.push((name, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_rewritten_by_a_shell_redirect_move_no_workload() {
    let config = karmada_copy();
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap().to_owned();
    let (_controller, _, admin) =
        support::serve_with(config.path(), &["--state-dir", &state_dir]).await;
    let copies = |state: &Path| {
        written(state)
            .into_iter()
            .filter(|(name, _)| name.ends_with("deployment-nginx.yaml"))
            .map(|(name, _)| name)
            .collect::<Vec<_>>()
    };
    eventually(Duration::from_secs(20), || async {
        let copies = copies(state.path());
        anyhow::ensure!(copies.len() == 2, "{copies:?}");
        Ok(())
    })
    .await
    .unwrap();
    let before = written(state.path());
    let bindings = support::admin(admin, "/debug/bindings").await.unwrap();

    // `cat saved > clusters.yaml` and `> deployment.yaml`: empty for a second, then the same.
    let clusters = config.path().join("clusters.yaml");
    let deployment = config.path().join("deployment.yaml");
    let (clusters_text, deployment_text) = (
        std::fs::read_to_string(&clusters).unwrap(),
        std::fs::read_to_string(&deployment).unwrap(),
    );
    std::fs::write(&clusters, "").unwrap();
    std::fs::write(&deployment, "").unwrap();
    eventually(Duration::from_secs(10), || async {
        let body = support::admin(admin, "/debug/problems").await?;
        anyhow::ensure!(body.matches("is empty").count() == 2, "not yet: {body}");
        Ok(())
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    std::fs::write(&clusters, &clusters_text).unwrap();
    std::fs::write(&deployment, &deployment_text).unwrap();
    // A propagation tick (5 s) later, nothing was written, removed or rescheduled.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(written(state.path()), before);
    assert_eq!(
        support::admin(admin, "/debug/bindings").await.unwrap(),
        bindings
    );
    let problems = support::admin(admin, "/debug/problems").await.unwrap();
    assert!(!problems.contains("is empty"), "{problems}");

    // member2 taken out of clusters.yaml on purpose: it is unreachable, and its copy stays
    // for the toleration's 300 s instead of moving at once.
    let without_member2 = clusters_text
        .split("\n---\n")
        .filter(|doc| !doc.contains("name: member2"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    assert_ne!(without_member2, clusters_text);
    std::fs::write(&clusters, &without_member2).unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(copies(state.path()), copies_of(&before));
    let bindings = support::admin(admin, "/debug/bindings").await.unwrap();
    assert!(bindings.contains("member2"), "{bindings}");
}

fn copies_of(files: &[(String, String)]) -> Vec<String> {
    files
        .iter()
        .filter(|(name, _)| name.ends_with("deployment-nginx.yaml"))
        .map(|(name, _)| name.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_documents_is_summarised_and_its_memory_given_back() {
    let mesh = Mesh::start().await;
    let pid = mesh.controller_pid();
    let flood: String = (0..150_000)
        .map(|i| {
            format!("apiVersion: v1\nkind: Service\nmetadata: {{name: s{i}}}\nspec: {{ports: [{{port: x}}]}}\n---\n")
        })
        .collect();
    let file = mesh.fleet.dir.join("flood.yaml");
    std::fs::write(&file, flood).unwrap();
    let before = support::rss_mib(pid);
    let loaded = eventually(Duration::from_secs(60), || async {
        let problems = mesh.admin("/debug/problems").await?;
        anyhow::ensure!(problems.contains("flood.yaml"), "not yet");
        Ok(problems)
    })
    .await
    .unwrap();
    let problems: Vec<serde_json::Value> = serde_json::from_str(&loaded).unwrap();
    assert!(problems.len() <= 101, "{} problems", problems.len());
    let peak = support::rss_mib(pid);

    std::fs::remove_file(&file).unwrap();
    let settled = eventually(Duration::from_secs(30), || async {
        let problems = mesh.admin("/debug/problems").await?;
        anyhow::ensure!(problems == "[]", "still: {problems}");
        let now = support::rss_mib(pid);
        anyhow::ensure!(
            now <= before + 30,
            "{now} MiB resident, {before} MiB before the flood"
        );
        Ok(now)
    })
    .await
    .unwrap();
    eprintln!("resident: {before} MiB before, {peak} MiB loaded, {settled} MiB after removal");
}
