//! Random damage to a served config directory, bounded: a seeded sequence of the accidents a
//! directory meets (truncated, garbled, emptied, removed and flooded files, deep nesting, bytes
//! that are not UTF-8, FIFOs, device links, symlink loops, the directory moved away and back)
//! while a real Envoy is served. Asserted: no hang, memory bounded, Envoy never NACKs, and after
//! the directory is repaired, the first catalog is served again with 99/1 traffic.

use meshfleet_testkit as support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use meshfleet_demo::envoy::{AdsApi, eventually};
use support::{EAST, Mesh};

/// xorshift64*: a seeded sequence, the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
}

/// The YAML files of the directory, with their contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// The sum of a metric over its labels; `None` when it is not there.
fn metric(metrics: &str, name: &str) -> Option<u64> {
    let values: Vec<u64> = metrics
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let rest = rest
                .strip_prefix('{')
                .map_or(rest, |r| r.split_once('}').map_or("", |(_, v)| v));
            rest.trim().parse().ok()
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// One accident to the directory (what it adds is removed by [`repair`]).
fn damage(rng: &mut Rng, dir: &Path, originals: &BTreeMap<PathBuf, Vec<u8>>, step: usize) {
    let files: Vec<&PathBuf> = originals.keys().collect();
    let file = files[rng.below(files.len())];
    let current = std::fs::read(file).unwrap_or_default();
    let len = current.len().max(1);
    match rng.below(12) {
        0 => std::fs::write(file, &current[..rng.below(len).min(current.len())]).unwrap(),
        1 => {
            let mut bytes = current.clone();
            for _ in 0..1 + rng.below(8) {
                if !bytes.is_empty() {
                    let at = rng.below(bytes.len());
                    bytes[at] = b"{}[]:-#&*!|>'\"%@` \n\t"[rng.below(20)];
                }
            }
            std::fs::write(file, bytes).unwrap();
        }
        2 => {
            let mut bytes = current;
            bytes.extend_from_slice(b"\n: : [[[{ unclosed\n");
            std::fs::write(file, bytes).unwrap();
        }
        3 => std::fs::write(file, "").unwrap(),
        4 => {
            let _ = std::fs::remove_file(file);
        }
        5 => {
            let depth = 20_000 + rng.below(30_000);
            let text = format!("a: {}{}\n", "[".repeat(depth), "]".repeat(depth));
            std::fs::write(dir.join(format!("deep-{step}.yaml")), text).unwrap();
        }
        6 => {
            let mut bytes = current;
            bytes.extend_from_slice(b"\nmetadata: {name: \xff\xfe}\n");
            std::fs::write(file, bytes).unwrap();
        }
        7 => {
            let path = dir.join(format!("pipe-{step}.yaml"));
            let status = std::process::Command::new("mkfifo")
                .arg(&path)
                .status()
                .unwrap();
            assert!(status.success());
        }
        8 => {
            std::os::unix::fs::symlink("/dev/zero", dir.join(format!("zero-{step}.yaml"))).unwrap();
        }
        9 => std::os::unix::fs::symlink(".", dir.join(format!("loop-{step}"))).unwrap(),
        10 => {
            let flood: String = (0..5_000)
                .map(|i| {
                    format!(
                        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: w{i}}}\n---\n"
                    )
                })
                .collect();
            std::fs::write(dir.join(format!("flood-{step}.yaml")), flood).unwrap();
        }
        _ => {
            let away = dir.with_extension("away");
            std::fs::rename(dir, &away).unwrap();
            std::thread::sleep(Duration::from_millis(50 + rng.below(200) as u64));
            std::fs::rename(&away, dir).unwrap();
        }
    }
}

/// Puts the original files back and removes everything else.
fn repair(dir: &Path, originals: &BTreeMap<PathBuf, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if !originals.contains_key(&path) {
            std::fs::remove_file(&path).unwrap();
        }
    }
    for (path, bytes) in originals {
        if std::fs::read(path).ok().as_ref() != Some(bytes) {
            std::fs::write(path, bytes).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_damage_never_hangs_balloons_or_nacks_and_repair_converges() {
    let mesh = Mesh::start().await;
    let envoy = mesh.envoy(EAST, AdsApi::Delta).await;
    let dir = mesh.fleet.dir.clone();
    let originals = snapshot(&dir);
    let catalog = mesh.admin("/debug/catalog").await.unwrap();
    let pid = mesh.controller_pid();
    let mut rng = Rng(0x6d65_7368_666c_6565);
    let mut peak = 0;
    for step in 0..80 {
        damage(&mut rng, &dir, &originals, step);
        tokio::time::sleep(Duration::from_millis(50 + rng.below(100) as u64)).await;
        if step % 8 == 7 {
            // Every answer comes promptly: nothing waits on a damaged file.
            let metrics = tokio::time::timeout(Duration::from_secs(5), mesh.admin("/metrics"))
                .await
                .unwrap_or_else(|_| panic!("step {step}: the admin port hangs"))
                .unwrap();
            assert_eq!(
                metric(&metrics, "meshfleet_xds_nacks_total"),
                Some(0),
                "step {step}"
            );
            tokio::time::timeout(Duration::from_secs(5), mesh.admin("/healthz"))
                .await
                .unwrap_or_else(|_| panic!("step {step}: healthz hangs"))
                .unwrap();
            peak = peak.max(support::rss_mib(pid));
            assert!(peak < 512, "step {step}: {peak} MiB resident");
        }
    }

    repair(&dir, &originals);
    eventually(Duration::from_secs(30), || async {
        let problems = mesh.admin("/debug/problems").await?;
        anyhow::ensure!(problems == "[]", "still: {problems}");
        let now = mesh.admin("/debug/catalog").await?;
        anyhow::ensure!(now == catalog, "catalog not back yet");
        Ok(())
    })
    .await
    .unwrap();
    let tally = support::wait_for_share(&envoy, EAST, 99.0, 1.0).await;
    assert_eq!(tally.failed, 0, "{tally:?}");
    assert!((tally.share(EAST) - 99.0).abs() <= 1.0, "{tally:?}");
    let metrics = mesh.admin("/metrics").await.unwrap();
    assert_eq!(metric(&metrics, "meshfleet_xds_nacks_total"), Some(0));
    eprintln!("peak resident memory under damage: {peak} MiB");
}
