//! The lab console in a real browser (Debian's Chromium driven through
//! chromedriver's WebDriver protocol): start the lab, open the console with
//! the URL `chaoslab up` prints, click "Block Redis", watch the error rate
//! rise and the fault span appear, clear the fault, watch recovery; stop
//! the lab (the page says so) and start it again (the page reconnects).
//! Screenshots go to `target/console-*.png`.

mod fault_support;
mod lab_support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use lab_support::{Lab, eventually};

/// chromedriver on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
    http: reqwest::Client,
    session: String,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Driver {
    async fn start() -> Option<Driver> {
        if !chaoslab_test_support::browser::chromedriver_or_skip() {
            return None;
        }
        let port = chaoslab_test_support::free_port();
        // Its own process group, so the browser it starts goes with it.
        use std::os::unix::process::CommandExt as _;
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut driver = Driver {
            child,
            url,
            http,
            session: String::new(),
        };
        eventually(
            chaoslab_test_support::GENEROUS,
            "chromedriver answers",
            || async {
                driver
                    .http
                    .get(format!("{}/status", driver.url))
                    .send()
                    .await
                    .ok()
                    .map(|_| ())
            },
        )
        .await;
        let data_dir = tempfile::tempdir().unwrap().keep();
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", "--disable-quic", "--window-size=1280,800",
                     format!("--user-data-dir={}", data_dir.display())]
        }}}});
        let created = driver.call("POST", "/session", caps).await;
        driver.session = created["sessionId"]
            .as_str()
            .expect("a WebDriver session")
            .to_string();
        Some(driver)
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{}", self.url, path);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let value: Value = req
            .send()
            .await
            .expect("chromedriver")
            .json()
            .await
            .expect("WebDriver JSON");
        if value["value"]["error"].is_string() {
            panic!("WebDriver {method} {path}: {}", value["value"]);
        }
        value["value"].clone()
    }

    async fn session_call(&self, method: &str, path: &str, body: Value) -> Value {
        self.call(method, &format!("/session/{}{}", self.session, path), body)
            .await
    }

    async fn goto(&self, url: &str) {
        self.session_call("POST", "/url", json!({"url": url})).await;
    }

    async fn js(&self, script: &str) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// A real click (WebDriver element click), as a user's.
    async fn click(&self, css: &str) {
        let el = self
            .session_call(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        let id = el[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {el}"))
            .to_string();
        self.session_call("POST", &format!("/element/{id}/click"), json!({}))
            .await;
    }

    async fn screenshot(&self, name: &str) {
        let png = self.session_call("GET", "/screenshot", Value::Null).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    async fn wait_js(&self, what: &str, script: &str) -> Value {
        eventually(chaoslab_test_support::GENEROUS, what, || async {
            let v = self.js(script).await;
            (!v.is_null() && v != false).then_some(v)
        })
        .await
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver and every Chromium process it started (same group).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_redis_from_the_console_and_watch_it_fail_and_recover() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let lab = fault_support::fault_lab().replicas(2).start().await;
    let control = lab.state["control_url"].as_str().unwrap().to_string();
    let token = lab.state["token"].as_str().unwrap().to_string();

    // Steady traffic through the ingress for the whole test.
    let (stop, traffic) = steady_traffic(&lab);

    open_with_the_token(&driver, &control, &token).await;

    // Block Redis (reset mode, so failures are immediate), until cleared.
    block_redis_and_watch_it_fail(&driver, &lab).await;

    // Clear it from the faults panel; the lab recovers.
    clear_and_watch_it_recover(&driver).await;

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = traffic.await;

    // Phone width: everything reflows, nothing scrolls sideways.
    driver
        .session_call("POST", "/window/rect", json!({"width": 390, "height": 844}))
        .await;
    driver
        .wait_js(
            "no horizontal overflow at phone width",
            "return document.documentElement.scrollWidth <= window.innerWidth + 1",
        )
        .await;
    driver.screenshot("console-phone.png").await;

    // The lab stops: the page says so (and keeps retrying).
    let down = lab.cli(&["down"]).await;
    assert!(down.status.success());
    driver
        .wait_js("the page says the lab is unreachable", "const b = document.querySelector('#banner'); return !b.hidden && b.textContent.includes('not reachable')")
        .await;

    // A new lab in the same directory on the same control port: same token
    // (kept in .chaoslab/control-token), so the open page reconnects alone.
    restart_and_reconnect(&driver, &lab, &control).await;
    let _ = driver.session_call("DELETE", "", Value::Null).await;
}

/// GET `/` through the ingress every 20 ms (at most 120 s) until the flag
/// is set.
fn steady_traffic(
    lab: &Lab,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    tokio::task::JoinHandle<()>,
) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let task = {
        let (url, stop, http) = (lab.ingress("/"), stop.clone(), lab.http.clone());
        tokio::spawn(async move {
            let end = Instant::now() + Duration::from_secs(120);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < end {
                let _ = http.get(&url).timeout(Duration::from_secs(5)).send().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    (stop, task)
}

/// Opens the console with the token in the URL's fragment: it shows the
/// replicas and charts, drops the token from the address bar, and has ten
/// seconds of metrics (a screenshot of it).
async fn open_with_the_token(driver: &Driver, control: &str, token: &str) {
    driver.goto(&format!("{control}/#token={token}")).await;
    driver
        .wait_js("the console shows the replicas", "return document.querySelector('#summary')?.textContent.includes('2/2 replicas ready') === true")
        .await;
    driver
        .wait_js(
            "the request chart has data",
            "return document.querySelectorAll('#charts svg path.line').length > 3",
        )
        .await;
    assert_eq!(
        driver.js("return location.hash").await,
        "",
        "the token is removed from the address bar"
    );
    // A few seconds of history, so the charts show a line, not a dot.
    driver
        .wait_js("ten seconds of metrics", "return document.querySelector('#charts svg path.line')?.getAttribute('d').split('L').length > 10")
        .await;
    driver.screenshot("console-normal.png").await;
}

/// The console's "block Redis" (reset, until cleared): the fault is listed
/// and drawn, errors rise, no replica stays ready, while the lab's own
/// view of Redis stays up.
async fn block_redis_and_watch_it_fail(driver: &Driver, lab: &Lab) {
    driver.click("#btn-block-redis").await;
    driver
        .wait_js(
            "the dialog opens",
            "return document.querySelector('#action-dialog')?.open",
        )
        .await;
    driver
        .js("const f = document.querySelector('#action-form'); f.elements.mode.value = 'reset'; f.elements.duration_seconds.value = '0'; return true")
        .await;
    driver.click("#action-form button[value=ok]").await;
    driver
        .wait_js(
            "the fault is listed",
            "return document.querySelector('#faults')?.textContent.includes('network')",
        )
        .await;
    driver
        .wait_js(
            "the fault span is drawn",
            "return document.querySelectorAll('rect.span-fault').length > 0",
        )
        .await;
    driver
        .wait_js(
            "the error rate rises",
            "const t = [...document.querySelectorAll('figure.chart')].find(f => f.textContent.includes('Error rate')); \
             const m = t && t.querySelector('.legend').textContent.match(/5xx % ([0-9.]+)/); return m && parseFloat(m[1]) > 0",
        )
        .await;
    driver
        .wait_js("the ingress has no healthy upstream left", "return document.querySelector('#summary')?.textContent.includes('0/2 replicas ready') === true")
        .await;
    driver
        .wait_js(
            "a few seconds of the outage on the charts",
            "return new Promise(r => setTimeout(() => r(true), 4000))",
        )
        .await;
    // The lab's own Redis PING goes to redis-server directly, never through
    // the fault proxy: it still answers while the replicas are cut off.
    eventually(
        chaoslab_test_support::GENEROUS,
        "the lab's own view of Redis is up during the cut",
        || async { (lab.api("/api/status").await["redis"]["up"] == true).then_some(()) },
    )
    .await;
    driver.screenshot("console-redis-blocked.png").await;
    let label = driver
        .js("return document.querySelector('text.span-label-fault').textContent")
        .await;
    assert!(
        label.as_str().unwrap_or("").contains("fault network"),
        "span label: {label}"
    );
}

/// Clearing from the faults panel: no active fault, every replica ready,
/// the span closed, `FaultCleared` in the events.
async fn clear_and_watch_it_recover(driver: &Driver) {
    driver.click("#faults button[data-clear]").await;
    driver
        .wait_js(
            "no active faults",
            "return document.querySelector('#faults td.empty') !== null",
        )
        .await;
    driver
        .wait_js(
            "every replica ready again",
            "return document.querySelector('#summary')?.textContent.includes('2/2 replicas ready')",
        )
        .await;
    driver
        .wait_js(
            "the fault span is closed",
            "return document.querySelectorAll('rect.span-fault').length > 0",
        )
        .await;
    driver.screenshot("console-recovered.png").await;
    let events = driver
        .js("return document.querySelector('#events').textContent")
        .await;
    assert!(
        events.as_str().unwrap().contains("FaultCleared"),
        "{events}"
    );
}

/// A new `up` in the lab's directory on the same control port: the open
/// page reconnects by itself; then it is stopped.
async fn restart_and_reconnect(driver: &Driver, lab: &Lab, control: &str) {
    let port = control.rsplit(':').next().unwrap().to_string();
    let mut again = tokio::process::Command::new(env!("CARGO_BIN_EXE_chaoslab"))
        .args([
            "up",
            "--control-port",
            &port,
            "--port",
            "0",
            "--replicas",
            "1",
        ])
        .current_dir(lab.dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("restart chaoslab up");
    driver
        .wait_js(
            "the page reconnects to the restarted lab",
            "return document.querySelector('#banner').hidden && document.querySelector('#summary')?.textContent.includes('1/1 replicas ready') === true",
        )
        .await;
    let down = lab.cli(&["down"]).await;
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let _ = tokio::time::timeout(Duration::from_secs(30), again.wait()).await;
}
