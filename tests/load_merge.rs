//! Distributed load (issue 14 item 3) as a user runs it: two real
//! `chaoslab load --json` generators at once against a real `chaoslab
//! serve` (with its redis-server), then `chaoslab load merge` of their
//! reports. The merged counts are the sums, its histogram is exactly the
//! two histograms added (so its percentiles are those of one computation
//! over the union of the samples), and the CSVs, JSON and HTML come from
//! the merge.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use chaoslab_load::{PERCENTILES, hdr};
use common::{RedisServer, Service};
use serde_json::Value;
use tokio::process::Command;

const LIMIT: Duration = Duration::from_secs(120);

async fn chaoslab(args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::time::timeout(
        LIMIT,
        Command::new(env!("CARGO_BIN_EXE_chaoslab"))
            .args(args)
            .env_remove("CHAOSLAB_LOAD_HOST")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("chaoslab ends in time")
    .expect("chaoslab runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report written"))
        .expect("report is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_generators_merge_exactly() {
    let redis = RedisServer::start();
    let svc = Service::builder().redis(&redis).start();
    let host = svc.url("");
    let dir = tempfile::Builder::new()
        .prefix("chaoslab-load-merge-")
        .tempdir()
        .expect("tempdir");
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    run_two_generators(&host, &a, &b).await;
    let (a_s, b_s) = (a.display().to_string(), b.display().to_string());
    let (ja, jb) = (json(&a), json(&b));

    let prefix = dir.path().join("out/all");
    let merged_json = dir.path().join("all.json");
    let html = dir.path().join("all.html");
    let (p, m, h) = (
        prefix.display().to_string(),
        merged_json.display().to_string(),
        html.display().to_string(),
    );
    let (code, stdout, stderr) = chaoslab(&[
        "load",
        "merge",
        &a_s,
        &b_s,
        "--csv",
        &p,
        "--json",
        &m,
        "--html",
        &h,
        "--threshold",
        "errors<50%",
    ])
    .await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("merged 2 reports (2 generators)"),
        "{stderr}"
    );
    assert!(stdout.contains("Aggregated"), "{stdout}");
    let merged = json(&merged_json);
    assert_eq!(merged["generators"], 2);

    assert_rows_add_up(&ja, &jb, &merged);

    // Locust's CSVs and the HTML page are those of the whole.
    assert_csvs_and_page_of_the_whole(&p, &merged, &html);

    // The merged report merges again, and bad input is exit 2 naming the file.
    let (code, _, stderr) = chaoslab(&["load", "merge", &m, &a_s]).await;
    assert_eq!(code, Some(0), "{stderr}");
    std::fs::write(dir.path().join("bad.json"), "{\"target\": 1}").expect("write");
    let bad = dir.path().join("bad.json").display().to_string();
    let (code, _, stderr) = chaoslab(&["load", "merge", &a_s, &bad]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.json: not a `chaoslab load --json` report"),
        "{stderr}"
    );
    let (code, _, stderr) = chaoslab(&["load", "-u", "2", "merge", &a_s]).await;
    assert_eq!(code, Some(2), "run flags and merge conflict: {stderr}");
    drop(svc);
}

/// Two `chaoslab load --json` generators at once (2 and 3 users, 2 s)
/// against `host`, writing their reports to `a` and `b`.
async fn run_two_generators(host: &str, a: &Path, b: &Path) {
    let (a_s, b_s) = (a.display().to_string(), b.display().to_string());
    let generator = |report: String, users: &'static str| {
        let host = host.to_string();
        async move {
            let args = [
                "load",
                "-H",
                &host,
                "-u",
                users,
                "-r",
                "100",
                "-t",
                "2s",
                "--wait",
                "5ms",
                "-q",
                "--task",
                "3 GET /health",
                "--task",
                "GET /",
                "--json",
                &report,
            ];
            chaoslab(&args).await
        }
    };
    let (ra, rb) = tokio::join!(generator(a_s, "2"), generator(b_s, "3"));
    assert_eq!(ra.0, Some(0), "generator A: {}\n{}", ra.1, ra.2);
    assert_eq!(rb.0, Some(0), "generator B: {}\n{}", rb.1, rb.2);
}

/// Every row of the merge (per endpoint, then the aggregate) is the sum of
/// the two inputs', and its histogram and percentiles those of the union.
fn assert_rows_add_up(ja: &Value, jb: &Value, merged: &Value) {
    let rows = |r: &Value| -> Vec<Value> {
        let mut rows = r["endpoints"].as_array().expect("endpoints").clone();
        rows.push(r["aggregated"].clone());
        rows
    };
    let (rows_a, rows_b, rows_m) = (rows(ja), rows(jb), rows(merged));
    for ((ra, rb), rm) in rows_a.iter().zip(&rows_b).zip(&rows_m) {
        let name = rm["name"].as_str().unwrap_or_default();
        assert_eq!(ra["name"], rm["name"]);
        let count = |r: &Value, k: &str| r[k].as_u64().expect(k);
        assert!(
            count(ra, "requests") > 0 && count(rb, "requests") > 0,
            "{name}: both sent"
        );
        for k in ["requests", "failures", "bytes", "latency_sum_us"] {
            assert_eq!(count(rm, k), count(ra, k) + count(rb, k), "{name}: {k}");
        }
        for (code, n) in rm["status_codes"].as_object().expect("codes") {
            let part = |r: &Value| r["status_codes"][code].as_u64().unwrap_or(0);
            assert_eq!(
                n.as_u64(),
                Some(part(ra) + part(rb)),
                "{name}: status {code}"
            );
        }
        // One histogram over the union of both generators' samples.
        let decode = |r: &Value| hdr::decode(r["histogram"].as_str().expect("histogram")).unwrap();
        let mut union = decode(ra);
        union.add(decode(rb)).expect("same bounds");
        assert_eq!(decode(rm), union, "{name}: merged histogram");
        let ms = |us: u64| us as f64 / 1000.0;
        for (p, q) in rm["percentiles"]
            .as_array()
            .expect("percentiles")
            .iter()
            .zip(PERCENTILES)
        {
            assert_eq!(p["quantile"].as_f64(), Some(q));
            assert_eq!(
                p["ms"].as_f64(),
                Some(ms(union.value_at_quantile(q))),
                "{name} p{q}"
            );
        }
        assert_eq!(rm["min_ms"].as_f64(), Some(ms(union.min())), "{name}: min");
        assert_eq!(rm["max_ms"].as_f64(), Some(ms(union.max())), "{name}: max");
    }
}

/// The CSVs at `prefix` and the HTML page describe the merged whole.
fn assert_csvs_and_page_of_the_whole(prefix: &str, merged: &Value, html: &Path) {
    let stats = std::fs::read_to_string(format!("{prefix}_stats.csv")).expect("stats csv");
    let total = merged["aggregated"]["requests"].as_u64().expect("requests");
    let aggregated = stats
        .lines()
        .find(|l| l.contains(",Aggregated,"))
        .expect("Aggregated row");
    let requests_col: Vec<&str> = aggregated.split(',').collect();
    assert_eq!(requests_col[2], total.to_string(), "{stats}");
    for suffix in ["_stats_history.csv", "_failures.csv", "_exceptions.csv"] {
        assert!(Path::new(&format!("{prefix}{suffix}")).exists(), "{suffix}");
    }
    let page = std::fs::read_to_string(html).expect("html");
    assert!(page.contains("2 generators merged"), "html names the merge");
}
