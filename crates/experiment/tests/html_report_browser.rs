//! The experiment HTML report in a real browser: a realistic journal
//! (`fixtures/journal.json`, a network-cut run with its 503 period, the
//! fault and alert spans and the step markers) rendered and opened in
//! headless Chromium. It must draw (a screenshot with content), log no
//! console message (there is no script, so any message is an error) and
//! make no network request at all: Chromium's net log must hold no request
//! from the page. A deliberately bad page proves the checks can fail.
//!
//! Without Chromium the test prints a note and passes; with `CI` set a
//! missing Chromium fails (as the workspace's other browser tests do).
//! The screenshot is kept in the target's tmp directory
//! (`experiment-report.png`); docs/img/experiment-report.png is a copy.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use chaoslab_experiment::journal::Journal;
use chaoslab_test_support::process;

/// How long one headless Chromium run may take (a few seconds when idle).
const BROWSER_DEADLINE: Duration = Duration::from_secs(120);

const FIXTURE: &str = include_str!("fixtures/journal.json");

/// What one headless Chromium run of a page left behind.
struct Visit {
    screenshot: Option<Vec<u8>>,
    stderr: String,
    /// URLs the page itself asked the network stack for.
    page_requests: Vec<String>,
}

/// Opens `page` in headless Chromium (own profile, own process group,
/// killed after [`BROWSER_DEADLINE`]) and collects the screenshot, the log and the
/// page's network requests from the net log.
fn visit(browser: &str, page: &Path, shot: &Path) -> Visit {
    let dir = tempfile::tempdir().expect("browser tempdir");
    let profile = dir.path().join("profile");
    let netlog = dir.path().join("netlog.json");
    let stderr_path = dir.path().join("stderr.log");
    let _ = std::fs::remove_file(shot);
    let mut child = {
        use std::os::unix::process::CommandExt as _;
        Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--enable-logging=stderr",
                "--v=0",
                "--window-size=1280,2400",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--log-net-log={}", netlog.display()))
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!("file://{}", page.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr_path).expect("stderr file"))
            .process_group(0)
            .spawn()
            .expect("chromium starts")
    };
    let status = process::wait_exit(&mut child, BROWSER_DEADLINE);
    if status.is_none() {
        // The whole group: the browser and its helper processes.
        process::signal_group(child.id(), libc::SIGKILL);
        let _ = child.wait();
    }
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let status = status.unwrap_or_else(|| {
        panic!("chromium did not finish within {BROWSER_DEADLINE:?}:\n{stderr}")
    });
    assert!(status.success(), "chromium failed ({status}):\n{stderr}");
    let log = std::fs::read_to_string(&netlog).expect("chromium wrote its net log");
    let log: serde_json::Value = serde_json::from_str(&log).expect("the net log is JSON");
    Visit {
        screenshot: std::fs::read(shot).ok(),
        stderr,
        page_requests: page_requests(&log),
    }
}

/// Requests made on behalf of a `file://` page: Chromium's own background
/// traffic (component updates and the like) has another isolation key.
fn page_requests(netlog: &serde_json::Value) -> Vec<String> {
    let mut urls: Vec<String> = netlog["events"]
        .as_array()
        .expect("net log events")
        .iter()
        .filter_map(|e| {
            let p = &e["params"];
            let url = p["url"].as_str()?;
            let key = p["network_isolation_key"].as_str()?;
            key.contains("file://").then(|| url.to_owned())
        })
        .collect();
    urls.sort();
    urls.dedup();
    urls
}

/// Console messages (`INFO:CONSOLE…] "…", source: …`) and script errors.
fn console_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            l.contains(":CONSOLE")
                || l.contains("Uncaught")
                || l.contains("Failed to load resource")
        })
        .collect()
}

#[test]
fn fixture_is_a_journal() {
    let journal: Journal = serde_json::from_str(FIXTURE).expect("fixture parses as a Journal");
    assert_eq!(journal.experiment.name, "network-cut");
    assert!(!journal.timeline.faults.is_empty() && !journal.timeline.marks.is_empty());
    assert!(journal.timeline.errors_per_s.iter().any(|e| *e > 0.0));
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let Some(browser) = chaoslab_test_support::browser::chromium_or_skip() else {
        return;
    };
    let journal: Journal = serde_json::from_str(FIXTURE).expect("fixture parses");
    let html = chaoslab_experiment::html::render(&journal);
    assert_eq!(html.matches("<svg").count(), 3);
    for needle in [
        "http:", "https:", "src=", "href=", "url(", "<script", "<link",
    ] {
        assert!(!html.contains(needle), "the report holds {needle}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).expect("write report");

    let shot: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("experiment-report.png");
    let visit = visit(&browser, &page, &shot);
    let png = visit.screenshot.expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    // A blank page compresses to a few KB; charts and tables do not.
    assert!(
        png.len() > 60_000,
        "screenshot is {} bytes: nothing rendered?",
        png.len()
    );
    assert_eq!(
        console_lines(&visit.stderr),
        Vec::<&str>::new(),
        "console output"
    );
    assert_eq!(
        visit.page_requests,
        Vec::<String>::new(),
        "the report made network requests"
    );
    eprintln!("screenshot: {}", shot.display());

    // The same checks catch a page that logs, throws and fetches.
    let bad = dir.path().join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><html><body><p>bad</p><img src=\"http://example.invalid/x.png\">\
         <script>console.error('boom');undefinedFunction();</script></body></html>",
    )
    .expect("write bad page");
    let visit = self::visit(&browser, &bad, &dir.path().join("bad.png"));
    let console = console_lines(&visit.stderr);
    assert!(
        console.iter().any(|l| l.contains("boom")),
        "{}",
        visit.stderr
    );
    assert!(
        console.iter().any(|l| l.contains("Uncaught")),
        "{}",
        visit.stderr
    );
    assert_eq!(visit.page_requests, ["http://example.invalid/x.png"]);
}
