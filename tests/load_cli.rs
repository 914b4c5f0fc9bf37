//! End-to-end tests of `chaoslab load` as a user runs it: the real binary
//! against a local test target with known behaviour (from
//! `chaoslab_load::testkit`). Exit codes of thresholds, configuration
//! errors, Locust CSV files, Ctrl-C, and the HTML report rendered by
//! headless Chromium with a screenshot.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chaoslab_load::testkit::{Behaviour, TestServer};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

const LIMIT: Duration = Duration::from_secs(90);

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn load(args: &[&str]) -> Run {
    let out = tokio::time::timeout(
        LIMIT,
        Command::new(env!("CARGO_BIN_EXE_chaoslab"))
            .arg("load")
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("chaoslab load ends in time")
    .expect("chaoslab load runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn server(behaviour: Behaviour) -> TestServer {
    TestServer::start(behaviour).await.expect("test server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_decide_the_exit_code() {
    let srv = server(Behaviour::default()).await;
    let url = srv.url();
    let base = [
        "-H",
        &url,
        "--task",
        "GET /delay/20",
        "-u",
        "3",
        "-r",
        "100",
        "-t",
        "2s",
        "--wait",
        "10ms",
    ];

    let mut args = base.to_vec();
    args.extend([
        "--threshold",
        "p95<5s",
        "--threshold",
        "errors<1%",
        "--threshold",
        "rps>5",
    ]);
    let pass = load(&args).await;
    assert_eq!(pass.code, Some(0), "{}\n{}", pass.stdout, pass.stderr);
    assert!(
        pass.stdout.contains("all 3 thresholds hold"),
        "{}",
        pass.stdout
    );
    assert!(pass.stdout.contains("Aggregated"));

    let mut args = base.to_vec();
    args.extend([
        "--threshold",
        "p95<5s",
        "--threshold",
        "p50<1ms",
        "--threshold",
        "rps>100000",
    ]);
    let fail = load(&args).await;
    assert_eq!(fail.code, Some(1), "{}\n{}", fail.stdout, fail.stderr);
    assert!(fail.stdout.contains("FAIL p50<1ms"), "{}", fail.stdout);
    assert!(fail.stdout.contains("FAIL rps>100000"), "{}", fail.stdout);
    assert!(fail.stdout.contains("ok   p95<5s"), "{}", fail.stdout);
    assert!(fail.stdout.contains("2 of 3 thresholds FAILED"));

    // Failures break `errors<…` with an open-model run too.
    let flaky = server(Behaviour {
        flaky_every: 2,
        ..Behaviour::default()
    })
    .await;
    let url = flaky.url();
    let run = load(&[
        "-H",
        &url,
        "--task",
        "GET /flaky",
        "--rate",
        "50/s",
        "-t",
        "1s",
        "--threshold",
        "errors<10%",
    ])
    .await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("HTTPError: 500 Internal Server Error"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_errors_name_the_flag() {
    for (args, flag) in [
        (&["--plan", "ten,30s"][..], "--plan"),
        (&["--threshold", "p95"][..], "--threshold"),
        (&["--rate", "fast"][..], "--rate"),
        (&["-H", "https://127.0.0.1:1"][..], "--host"),
        (&["--rate", "1e-20/s"][..], "--rate"),
        (
            &["--users", "3", "--spawn-rate", "1e-19"][..],
            "--spawn-rate",
        ),
    ] {
        let run = load(args).await;
        assert_eq!(run.code, Some(2), "{args:?}");
        assert!(run.stderr.contains("configuration error"), "{}", run.stderr);
        assert!(run.stderr.contains(flag), "{args:?}: {}", run.stderr);
        assert!(!run.stdout.contains("Aggregated"), "nothing ran");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_locust_csv_files() {
    let srv = server(Behaviour {
        unhealthy_every: 4,
        ..Behaviour::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = dir.path().join("run");
    let url = srv.url();
    let run = load(&[
        "-H",
        &url,
        "-u",
        "4",
        "-r",
        "100",
        "-t",
        "2s",
        "--wait",
        "20ms..40ms",
        "--csv",
        prefix.to_str().expect("utf8"),
        "-q",
    ])
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let read = |suffix: &str| {
        std::fs::read_to_string(dir.path().join(format!("run{suffix}"))).expect(suffix)
    };
    let stats = read("_stats.csv");
    assert!(stats.starts_with(
        "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,\
         Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%\r\n"
    ));
    for path in [
        "GET,/health,",
        "GET,/,",
        "GET,/chaos/status,",
        ",Aggregated,",
    ] {
        assert!(stats.contains(path), "{path} in {stats}");
    }
    assert!(
        read("_stats_history.csv")
            .starts_with("Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,")
    );
    let failures = read("_failures.csv");
    assert!(failures.starts_with("Method,Name,Error,Occurrences,First Seen,Last Seen\r\n"));
    assert!(
        failures.contains("GET,/health,\"HealthCheck: status is \"\"unhealthy\"\"\","),
        "{failures}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_prints_the_summary_so_far() {
    let srv = server(Behaviour::default()).await;
    let url = srv.url();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chaoslab"))
        .args([
            "load",
            "-H",
            &url,
            "--task",
            "GET /fast",
            "-u",
            "2",
            "-t",
            "10m",
            "--wait",
            "10ms",
            "--live-interval",
            "200ms",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    // Wait for live lines (plain, one per line: stderr is not a terminal).
    while String::from_utf8_lossy(&seen).matches("req/s").count() < 2 {
        assert!(
            Instant::now() < deadline,
            "no live lines: {}",
            String::from_utf8_lossy(&seen)
        );
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(chaoslab_test_support::GENEROUS, stderr.read(&mut buf))
            .await
            .expect("output")
            .expect("read");
        assert!(n > 0, "exited early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let pid = child.id().expect("pid") as i32;
    assert!(chaoslab_test_support::process::signal(
        pid as u32,
        libc::SIGINT
    ));
    let status = tokio::time::timeout(chaoslab_test_support::GENEROUS, child.wait())
        .await
        .expect("exits on SIGINT")
        .expect("status");
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .await
        .expect("read stdout");
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).await.expect("read stderr");
    assert_eq!(status.code(), Some(0));
    assert!(rest.contains("interrupted"), "{rest}");
    assert!(
        out.contains("(interrupted)") && out.contains("Aggregated"),
        "{out}"
    );
    assert!(srv.hits_any("/fast") > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_report_renders_in_headless_chromium() {
    let Some(browser) = chaoslab_test_support::browser::chromium_or_skip() else {
        return;
    };
    let srv = server(Behaviour {
        flaky_every: 10,
        ..Behaviour::default()
    })
    .await;
    let url = srv.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let html = dir.path().join("report.html");
    let json = dir.path().join("report.json");
    let run = load(&[
        "-H",
        &url,
        "--task",
        "3 GET /delay/5",
        "--task",
        "GET /flaky",
        "--plan",
        "20/s,0s;80/s,3s",
        "--html",
        html.to_str().expect("utf8"),
        "--json",
        json.to_str().expect("utf8"),
        "--threshold",
        "p95<2s",
        "-q",
    ])
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let page = std::fs::read_to_string(&html).expect("html");
    assert_eq!(page.matches("<svg").count(), 4);

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let shot = shots.join("load-report.png");
    let _ = std::fs::remove_file(&shot);
    let profile = tempfile::tempdir().expect("profile dir");
    let status = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--window-size=1280,1600",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!("file://{}", html.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .status(),
    )
    .await
    .expect("chromium finishes")
    .expect("chromium runs");
    assert!(status.success());
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    // A blank page compresses to a few KB; charts and tables do not.
    assert!(
        png.len() > 40_000,
        "screenshot is {} bytes: nothing rendered?",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
}
