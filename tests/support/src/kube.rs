//! Kubernetes API emulators for the tests and benchmarks of `meshfleet run --kube`: PyPI
//! `kmock`'s `KubernetesEmulator` (pinned in tests/requirements.txt), one per cluster, all in
//! one Python process started from `tests/kube/emulator.py`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use kube::api::{DynamicObject, PostParams};
use meshfleet_runtime::kube::objects::Resource;
use serde_json::Value;

/// `PYTHON`, else `.venv/bin/python` in this directory or a parent; it must import `module`.
pub fn python_with(module: &str) -> PathBuf {
    let python = std::env::var_os("PYTHON").map(PathBuf::from).or_else(|| {
        let here = [
            std::env::current_dir().ok(),
            Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
        ];
        here.into_iter().flatten().find_map(|cwd| {
            cwd.ancestors()
                .map(|dir| dir.join(".venv/bin/python"))
                .find(|path| path.is_file())
        })
    });
    let python = python.expect("no .venv/bin/python (nor PYTHON): run `make setup`");
    let check = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}: run `make setup`", python.display()));
    assert!(
        check.status.success(),
        "{} cannot import {module}: run `make setup` (installs tests/requirements.txt)",
        python.display()
    );
    python
}

/// Emulated API servers, by name, in one Python process.
pub struct Emulators {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub urls: BTreeMap<String, String>,
    dir: tempfile::TempDir,
}

impl Emulators {
    pub fn start(names: &[&str]) -> Self {
        let python = python_with("kmock");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kube/emulator.py");
        let mut child = Command::new(python)
            .arg(script)
            .args(names)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the emulators");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("the emulators' addresses");
        let urls = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        Self {
            child,
            stdin,
            stdout,
            urls,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A kubeconfig for one emulator.
    pub fn kubeconfig(&self, name: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {}\nusers:\n- name: {name}\n  user: {{}}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\ncurrent-context: {name}\n",
            self.urls[name]
        )
    }

    pub fn kubeconfig_file(&self, name: &str) -> String {
        let path = self.dir.path().join(format!("{name}.kubeconfig"));
        std::fs::write(&path, self.kubeconfig(name)).unwrap();
        path.to_str().unwrap().to_owned()
    }

    pub async fn client(&self, name: &str) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&self.kubeconfig(name)).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    }

    /// Sends a command; returns the lines of its answer.
    pub fn command(&mut self, command: &str) -> Vec<String> {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read = self.stdout.read_line(&mut line).unwrap();
            assert!(read > 0, "{command}: the emulators exited");
            let line = line.trim_end().to_owned();
            assert!(!line.starts_with("error"), "{command}: {line}");
            if line == "ok" || line == "." {
                return lines;
            }
            lines.push(line);
        }
    }

    /// The requests an emulator served, as JSON.
    pub fn requests(&mut self, name: &str) -> Vec<Value> {
        self.command(&format!("requests {name}"))
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Emulators {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates `object` (its namespace from its metadata) as an API client would; panics if the
/// API server refuses it.
pub async fn create(client: &kube::Client, resource: &Resource, object: Value) {
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let object: DynamicObject = serde_json::from_value(object).expect("an object");
    resource
        .api(client, &namespace)
        .create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("creating {resource}: {e}"));
}

/// The object, as JSON, if the API server has it.
pub async fn get(
    client: &kube::Client,
    resource: &Resource,
    namespace: Option<&str>,
    name: &str,
) -> Option<Value> {
    resource
        .api(client, namespace.unwrap_or_default())
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .map(|o| serde_json::to_value(o).expect("JSON"))
}
