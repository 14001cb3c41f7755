use std::fs;
use std::path::Path;

use super::*;

fn cluster_yaml(name: &str, region: &str) -> String {
    format!(
        "apiVersion: meshfleet.io/v1alpha1\nkind: Cluster\nmetadata: {{name: {name}}}\nspec: {{region: {region}}}\n"
    )
}

/// A source without grace periods: what leaves a file is gone at once.
fn plain(root: &Path) -> ConfigDir {
    ConfigDir::new(root.to_owned()).with_limits(SourceLimits {
        empty_file_grace: Duration::ZERO,
        removed_cluster_grace: Duration::ZERO,
        ..SourceLimits::default()
    })
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// (cluster, region) of every cluster in the index.
fn regions(index: &Index) -> Vec<(String, String)> {
    index
        .clusters()
        .map(|c| {
            (
                c.name().to_owned(),
                c.region().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn load_reads_every_yaml_file_below_the_root() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "clusters.yaml", &cluster_yaml("a", "r1"));
    write(dir.path(), "zones/east/more.yml", &cluster_yaml("b", "r2"));
    write(
        dir.path(),
        "zones/bad.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: x}]}\n",
    );
    write(dir.path(), "README.md", &cluster_yaml("not-yaml", "r"));
    write(dir.path(), ".hidden/c.yaml", &cluster_yaml("hidden", "r"));
    write(dir.path(), ".swap.yaml", &cluster_yaml("swap", "r"));
    let mut source = plain(dir.path());
    let mut index = Index::default();

    assert!(source.load(&mut index));
    assert_eq!(regions(&index), pairs(&[("a", "r1"), ("b", "r2")]));
    assert_eq!(
        index.origins().map(ToString::to_string).collect::<Vec<_>>(),
        ["clusters.yaml", "zones/bad.yaml", "zones/east/more.yml"]
    );
    assert_eq!(
        index.problems(),
        vec![
            Problem::new(
                Source::document("zones/bad.yaml", 0),
                "invalid type: string \"x\", expected u32"
            )
            .at("spec.ports[0].port")
        ]
    );
    assert_eq!(source.parse_count().load(Ordering::Relaxed), 3);

    assert!(!source.load(&mut index), "nothing changed");
    assert_eq!(
        source.parse_count().load(Ordering::Relaxed),
        3,
        "unchanged files are not parsed again"
    );

    fs::remove_dir_all(dir.path().join("zones")).unwrap();
    assert!(source.load(&mut index));
    assert_eq!(regions(&index), pairs(&[("a", "r1")]));
    assert_eq!(index.problems(), vec![]);
}

#[test]
fn a_missing_root_loads_nothing_and_says_so() {
    let up = Gauge::default();
    let mut source =
        ConfigDir::new(PathBuf::from("/nonexistent/meshfleet-config")).reporting_to(up.clone());
    let mut index = Index::default();
    source.load(&mut index);
    assert_eq!(index.clusters().count(), 0);
    assert_eq!(
        index.problems(),
        [Problem::new(
            Source::file("./"),
            "cannot read the config directory /nonexistent/meshfleet-config: No such file or directory (os error 2); everything read from it stays in effect until it is back"
        )]
    );
    assert_eq!(up.get(), 0);
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// Waits (bounded) until `what` holds for the index, following `changed`.
async fn until(
    index: &Arc<Mutex<Index>>,
    changed: &mut watch::Receiver<u64>,
    what: impl Fn(&Index) -> bool,
) {
    let wait = async {
        loop {
            if what(&index.lock().unwrap()) {
                return;
            }
            changed.changed().await.expect("the watch is running");
        }
    };
    tokio::time::timeout(TIMEOUT, wait)
        .await
        .expect("timed out waiting for the index to follow the directory");
}

/// Starts a watch on a loaded directory; returns the index, the change receiver, the parse count
/// and the task.
fn start(
    source: ConfigDir,
) -> (
    Arc<Mutex<Index>>,
    watch::Receiver<u64>,
    Arc<AtomicU64>,
    tokio::task::JoinHandle<()>,
) {
    let mut source = source;
    let index = Arc::new(Mutex::new(Index::default()));
    source.load(&mut index.lock().unwrap());
    let parsed = source.parse_count();
    let (tx, rx) = watch::channel(0);
    let task = tokio::spawn(source.watch(index.clone(), tx));
    (index, rx, parsed, task)
}

#[tokio::test]
async fn watch_follows_adds_edits_renames_and_removals_and_reads_only_those_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.yaml", &cluster_yaml("a", "r1"));
    write(root, "sub/b.yaml", &cluster_yaml("b", "r1"));
    let (index, mut changed, parsed, task) = start(plain(root));
    let count = || parsed.load(Ordering::Relaxed);
    assert_eq!(count(), 2);

    write(root, "sub/c.yaml", &cluster_yaml("c", "r1"));
    until(&index, &mut changed, |i| i.cluster("c").is_some()).await;
    assert_eq!(count(), 3, "only the new file is read");

    write(root, "a.yaml", &cluster_yaml("a", "r2"));
    until(&index, &mut changed, |i| {
        i.cluster("a").and_then(|c| c.region()) == Some("r2")
    })
    .await;
    assert_eq!(count(), 4);

    // An editor's save: write a temporary file, rename it over the original.
    write(root, "sub/.b.yaml.tmp", &cluster_yaml("b", "r3"));
    fs::rename(root.join("sub/.b.yaml.tmp"), root.join("sub/b.yaml")).unwrap();
    until(&index, &mut changed, |i| {
        i.cluster("b").and_then(|c| c.region()) == Some("r3")
    })
    .await;
    assert_eq!(count(), 5);

    fs::remove_file(root.join("sub/c.yaml")).unwrap();
    until(&index, &mut changed, |i| i.cluster("c").is_none()).await;
    assert_eq!(count(), 5, "a removal reads nothing");
    assert_eq!(
        regions(&index.lock().unwrap()),
        pairs(&[("a", "r2"), ("b", "r3")])
    );

    // Same bytes again, a non-YAML file, a hidden file: the index does not change.
    changed.mark_unchanged();
    write(root, "a.yaml", &cluster_yaml("a", "r2"));
    write(root, "notes.txt", "hello");
    write(root, ".x.yaml", &cluster_yaml("x", "r1"));
    tokio::time::sleep(DEBOUNCE * 5).await;
    assert!(!changed.has_changed().unwrap(), "no change, no bump");
    assert_eq!(count(), 5);

    // A directory moved away takes its files with it.
    fs::rename(root.join("sub"), dir.path().join(".moved")).unwrap();
    until(&index, &mut changed, |i| i.cluster("b").is_none()).await;
    assert_eq!(
        index
            .lock()
            .unwrap()
            .origins()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["a.yaml"]
    );
    task.abort();
}

#[cfg(unix)]
#[tokio::test]
async fn watch_follows_a_mounted_config_map_update() {
    use std::os::unix::fs::symlink;
    // Kubernetes' atomic writer: visible files are symlinks into `..data`, a symlink to a
    // timestamped directory that is swapped by a rename.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "..v1/clusters.yaml", &cluster_yaml("a", "r1"));
    symlink("..v1", root.join("..data")).unwrap();
    symlink("..data/clusters.yaml", root.join("clusters.yaml")).unwrap();
    let (index, mut changed, _, task) = start(plain(root));
    assert_eq!(regions(&index.lock().unwrap()), pairs(&[("a", "r1")]));

    write(root, "..v2/clusters.yaml", &cluster_yaml("a", "r2"));
    symlink("..v2", root.join("..data_tmp")).unwrap();
    fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    until(&index, &mut changed, |i| {
        i.cluster("a").and_then(|c| c.region()) == Some("r2")
    })
    .await;
    assert_eq!(
        index
            .lock()
            .unwrap()
            .origins()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["clusters.yaml"]
    );
    task.abort();
}

#[tokio::test]
async fn polling_follows_the_directory_too() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.yaml", &cluster_yaml("a", "r1"));
    let source = plain(root).polling(Duration::from_millis(20));
    let (index, mut changed, parsed, task) = start(source);

    write(root, "b.yaml", &cluster_yaml("b", "r1"));
    until(&index, &mut changed, |i| i.cluster("b").is_some()).await;
    fs::remove_file(root.join("a.yaml")).unwrap();
    until(&index, &mut changed, |i| i.cluster("a").is_none()).await;
    assert_eq!(
        parsed.load(Ordering::Relaxed),
        2,
        "each file parsed once, however often polled"
    );
    task.abort();
}

#[tokio::test]
async fn the_watch_ends_when_nobody_listens() {
    let dir = tempfile::tempdir().unwrap();
    let source = plain(dir.path()).polling(Duration::from_millis(10));
    let (_, changed, _, task) = start(source);
    drop(changed);
    tokio::time::timeout(TIMEOUT, task)
        .await
        .expect("the watch ends")
        .unwrap();
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

fn messages(index: &Index) -> Vec<String> {
    index.problems().iter().map(ToString::to_string).collect()
}

#[test]
fn fifos_devices_loops_and_huge_files_are_skipped_and_the_rest_loads() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.yaml", &cluster_yaml("a", "r1"));
    write(root, "sub/b.yaml", &cluster_yaml("b", "r1"));
    mkfifo(&root.join("pipe.yaml"));
    symlink("/dev/zero", root.join("zero.yaml")).unwrap();
    symlink(".", root.join("self")).unwrap();
    symlink("..", root.join("sub/up")).unwrap();
    write(root, "big.yaml", &format!("# {}\n", "x".repeat(2000)));
    let mut source = plain(root).with_limits(SourceLimits {
        max_file_bytes: 1000,
        ..SourceLimits::default()
    });
    let mut index = Index::default();
    source.load(&mut index);
    assert_eq!(regions(&index), pairs(&[("a", "r1"), ("b", "r1")]));
    assert_eq!(
        messages(&index),
        [
            "self/: leads to a directory that is already read (a symlink loop or a second link); skipped",
            "sub/up/: leads to a directory that is already read (a symlink loop or a second link); skipped",
            "big.yaml: is 2003 bytes, more than the 1000 bytes a config file may have (--max-file-bytes); skipped",
            "pipe.yaml: not a regular file (a FIFO); skipped",
            "zero.yaml: not a regular file (a character device); skipped",
        ]
    );
}

/// The index's view of a cluster: its name and its Ready condition's status and reason.
fn readiness(index: &Index, name: &str) -> Option<(String, Option<String>)> {
    let cluster = index.cluster(name)?;
    let ready = cluster
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready");
    Some(match ready {
        Some(c) => (c.status.clone(), c.reason.clone()),
        None => ("True".to_owned(), None),
    })
}

#[tokio::test]
async fn a_fifo_in_the_directory_blocks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.yaml", &cluster_yaml("a", "r1"));
    let (index, mut changed, _, task) = start(plain(root));
    mkfifo(&root.join("pipe.yaml"));
    until(&index, &mut changed, |i| {
        messages(i) == ["pipe.yaml: not a regular file (a FIFO); skipped"]
    })
    .await;
    // Later edits still arrive.
    write(root, "a.yaml", &cluster_yaml("a", "r2"));
    until(&index, &mut changed, |i| {
        i.cluster("a").and_then(|c| c.region()) == Some("r2")
    })
    .await;
    task.abort();
}

#[tokio::test]
async fn a_directory_that_disappears_keeps_its_contents_until_it_is_back() {
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("config");
    write(&root, "a.yaml", &cluster_yaml("a", "r1"));
    let up = Gauge::default();
    let source = plain(&root).reporting_to(up.clone());
    let (index, mut changed, _, task) = start(source);
    assert_eq!(up.get(), 1);

    // `mv config elsewhere`: nothing is deleted, the loss is said.
    fs::rename(&root, parent.path().join("elsewhere")).unwrap();
    until(&index, &mut changed, |i| {
        messages(i)
            .iter()
            .any(|m| m.starts_with("./: cannot read the config directory"))
    })
    .await;
    assert_eq!(regions(&index.lock().unwrap()), pairs(&[("a", "r1")]));
    assert_eq!(up.get(), 0);

    // Back, edited meanwhile: followed again, and watched again.
    write(
        &parent.path().join("elsewhere"),
        "a.yaml",
        &cluster_yaml("a", "r2"),
    );
    fs::rename(parent.path().join("elsewhere"), &root).unwrap();
    until(&index, &mut changed, |i| {
        i.cluster("a").and_then(|c| c.region()) == Some("r2") && i.problems().is_empty()
    })
    .await;
    assert_eq!(up.get(), 1);
    write(&root, "b.yaml", &cluster_yaml("b", "r1"));
    until(&index, &mut changed, |i| i.cluster("b").is_some()).await;
    task.abort();
}

#[tokio::test]
async fn a_file_emptied_and_written_again_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let text = format!(
        "{}---\n{}",
        cluster_yaml("a", "r1"),
        cluster_yaml("b", "r1")
    );
    write(root, "clusters.yaml", &text);
    let source = ConfigDir::new(root.to_owned()).with_limits(SourceLimits {
        empty_file_grace: Duration::from_millis(1500),
        ..SourceLimits::default()
    });
    let (index, mut changed, _, task) = start(source);

    // A shell's `>`: empty first, the same text a moment later.
    fs::write(root.join("clusters.yaml"), "").unwrap();
    until(&index, &mut changed, |i| !i.problems().is_empty()).await;
    assert_eq!(
        messages(&index.lock().unwrap()),
        [
            "clusters.yaml: is empty; what it defines is deleted once it has stayed empty for 1s 500ms; what it held before stays in effect"
        ]
    );
    assert_eq!(
        readiness(&index.lock().unwrap(), "a"),
        Some(("True".to_owned(), None))
    );
    fs::write(root.join("clusters.yaml"), &text).unwrap();
    until(&index, &mut changed, |i| i.problems().is_empty()).await;
    assert_eq!(
        regions(&index.lock().unwrap()),
        pairs(&[("a", "r1"), ("b", "r1")])
    );
    assert_eq!(
        readiness(&index.lock().unwrap(), "a"),
        Some(("True".to_owned(), None))
    );

    // Emptied for good: gone once the grace is over (the clusters as removed ones).
    fs::write(root.join("clusters.yaml"), "# nothing here\n").unwrap();
    until(&index, &mut changed, |i| {
        readiness(i, "a").is_some_and(|(status, _)| status == "Unknown")
    })
    .await;
    assert_eq!(
        readiness(&index.lock().unwrap(), "b"),
        Some(("Unknown".to_owned(), Some(REASON_REMOVED.to_owned())))
    );
    task.abort();
}

#[tokio::test]
async fn a_cluster_removed_from_its_file_is_unreachable_then_gone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.yaml", &cluster_yaml("a", "r1"));
    write(root, "b.yaml", &cluster_yaml("b", "r1"));
    let source = ConfigDir::new(root.to_owned()).with_limits(SourceLimits {
        removed_cluster_grace: Duration::from_millis(800),
        ..SourceLimits::default()
    });
    let (index, mut changed, _, task) = start(source);

    fs::remove_file(root.join("a.yaml")).unwrap();
    until(&index, &mut changed, |i| {
        readiness(i, "a") == Some(("Unknown".to_owned(), Some(REASON_REMOVED.to_owned())))
    })
    .await;
    {
        let index = index.lock().unwrap();
        assert!(index.problems().is_empty(), "{:?}", index.problems());
        let origins: Vec<String> = index.origins().map(ToString::to_string).collect();
        assert_eq!(origins, ["a.yaml (removed, kept for now)", "b.yaml"]);
    }
    // Back in another file: that definition is the cluster, and nothing is reported twice.
    write(root, "c.yaml", &cluster_yaml("a", "r2"));
    until(&index, &mut changed, |i| {
        i.cluster("a").and_then(|c| c.region()) == Some("r2")
    })
    .await;
    assert_eq!(
        readiness(&index.lock().unwrap(), "a"),
        Some(("True".to_owned(), None))
    );
    assert!(index.lock().unwrap().problems().is_empty());

    // Removed again and not back: gone once its grace is over.
    fs::remove_file(root.join("c.yaml")).unwrap();
    until(&index, &mut changed, |i| {
        readiness(i, "a").is_some_and(|(s, _)| s == "Unknown")
    })
    .await;
    until(&index, &mut changed, |i| i.cluster("a").is_none()).await;
    assert_eq!(regions(&index.lock().unwrap()), pairs(&[("b", "r1")]));
    task.abort();
}
