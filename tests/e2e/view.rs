//! The fleet view in a real browser: headless Chromium (Debian `chromium-headless-shell`,
//! driven over the DevTools protocol by `tests/browser/cdp.py`) loads `/` from a running
//! `meshfleet run` with an Envoy connected. The page shows the clusters, the services and the
//! splits of the config; an edit to the config shows up without a reload; the what-if moves
//! the traffic; a Service's annotation holding HTML stays text.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use meshfleet_demo::envoy::AdsApi;
use meshfleet_testkit::{EAST, Mesh};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// `CHROMIUM`, else `chromium-headless-shell` or `chromium` on the PATH.
fn find_chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return path.into();
    }
    let paths = std::env::var_os("PATH").unwrap_or_default();
    ["chromium-headless-shell", "chromium"]
        .iter()
        .flat_map(|name| std::env::split_paths(&paths).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
        .expect("no Chromium (Debian chromium-headless-shell): run tests/setup.sh or set CHROMIUM")
}

/// A browser on one page, answering `cdp.py`'s commands.
struct Browser {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Browser {
    async fn open(url: &str) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser/cdp.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(find_chromium())
            .arg(url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut browser = Self {
            _child: child,
            stdin,
            lines,
        };
        let ready = browser.read().await;
        assert_eq!(ready["ready"], true, "{ready}");
        browser
    }

    async fn read(&mut self) -> serde_json::Value {
        let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .expect("the browser answers within 30 s")
            .unwrap()
            .expect("the browser runs");
        serde_json::from_str(&line).unwrap()
    }

    async fn ask(&mut self, command: &str) -> serde_json::Value {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        self.read().await
    }

    async fn text(&mut self) -> String {
        self.ask("text")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the page's text holds every one of `wanted`.
    async fn until_text(&mut self, wanted: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.text().await;
            if wanted.iter().all(|w| text.contains(w)) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed {wanted:?}:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A global Service whose (invalid) locality annotation holds markup: the problem that names
/// it is shown on the page, as text.
const MARKUP: &str = "<b>bold</b><img src=x onerror=window.pwned=1>";

fn html_service() -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: demo\n  annotations:\n    \
         meshfleet.io/global: \"true\"\n    meshfleet.io/locality-weights: \"{MARKUP}\"\n\
         spec:\n  ports: [{{ name: http, port: 80 }}]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_view_shows_the_fleet_live_in_a_browser() {
    let mesh = Mesh::start_with(meshfleet_demo::fleet::two_zones(), |fleet| {
        std::fs::write(fleet.dir.join("web.yaml"), html_service()).unwrap();
    })
    .await;
    let _envoy = mesh.envoy(EAST, AdsApi::Delta).await;
    let url = format!("http://{}/", mesh.admin_addr);
    let mut browser = Browser::open(&url).await;

    // Clusters, services, the split each client locality gets, the connected client.
    let text = browser
        .until_text(&[
            "east-1",
            "east-2",
            "west-1",
            "west-2",
            "echo.demo.global:80",
            "us-east-1a 99% · us-west-2a 1%",
            "us-east/us-east-1a",
            "Connected clients",
        ])
        .await;
    assert!(text.contains("1 clients"), "{text}");
    let shot =
        std::env::temp_dir().join(format!("meshfleet-fleet-view-{}.png", std::process::id()));
    browser.ask(&format!("shot {}", shot.display())).await;
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a screenshot of the page"
    );
    eprintln!("fleet view screenshot: {}", shot.display());

    // The markup in the annotation is shown as text, never run.
    // The tier name the problem quotes is the annotation up to its first '='.
    let quoted = "unknown tier \"<b>bold</b><img src\"";
    assert!(
        text.contains(quoted),
        "the problem quotes the annotation:\n{text}"
    );
    let elements = "eval document.querySelectorAll('#problems b, #problems img, img').length";
    assert_eq!(
        browser.ask(elements).await,
        0,
        "no element made from the annotation"
    );
    assert_eq!(browser.ask("eval window.pwned === undefined").await, true);

    // A config edit shows up in the same page, without a reload.
    browser.ask("eval window.sameLoad = 42").await;
    let added = std::fs::read_to_string(mesh.fleet.dir.join("service.yaml"))
        .unwrap()
        .replace("name: echo", "name: added");
    std::fs::write(mesh.fleet.dir.join("added.yaml"), added).unwrap();
    browser.until_text(&["added.demo.global:80"]).await;
    assert_eq!(
        browser.ask("eval window.sameLoad").await,
        42,
        "not reloaded"
    );

    // What if the client's zone fails: the page shows the traffic moving before anything
    // happens.
    browser
        .ask(
            "eval (() => { const s = document.getElementById('whatif'); s.value = 'us-east-1a'; \
             s.dispatchEvent(new Event('change')); return s.value; })()",
        )
        .await;
    browser
        .until_text(&["us-east-1a 0% · us-west-2a 100%"])
        .await;
}
