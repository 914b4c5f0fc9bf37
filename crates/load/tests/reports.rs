//! Report files from a real run: Locust's CSV headers and rows, a JSON
//! summary that parses, one self-contained HTML page, threshold verdicts.

mod support;

use std::time::Duration;

use chaoslab_load::testkit::{Behaviour, TestServer};
use chaoslab_load::{Reports, Threshold, judge, write_reports};
use support::{closed, run};

const LIMIT: Duration = Duration::from_secs(60);

fn header(path: &std::path::Path) -> (String, usize) {
    let text = std::fs::read_to_string(path).expect("csv");
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let head = lines.next().expect("header").to_owned();
    (head, lines.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_locust_csvs_json_and_html() {
    let server = TestServer::start(Behaviour {
        flaky_every: 5,
        ..Behaviour::default()
    })
    .await
    .expect("server");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = closed(
        &server.url(),
        3,
        Duration::from_millis(2500),
        &["GET /flaky", "GET /fast"],
    );
    config.reports = Reports {
        csv: Some(dir.path().join("out/run")),
        json: Some(dir.path().join("run.json")),
        html: Some(dir.path().join("run.html")),
    };
    let mut report = run(&config, LIMIT).await;
    let thresholds = [
        Threshold::parse("p95<5s").expect("t"),
        Threshold::parse("errors<1%").expect("t"),
    ];
    assert!(!judge(&mut report, &thresholds), "errors are ~20 %");
    assert!(report.thresholds[0].passed);
    assert!(!report.thresholds[1].passed);
    let written = write_reports(&report, &config.reports).expect("written");
    assert_eq!(written.len(), 6);

    let (stats, rows) = header(&dir.path().join("out/run_stats.csv"));
    assert_eq!(
        stats,
        "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,\
         Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,\
         50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
    );
    assert_eq!(rows, 3, "two endpoints and the aggregated row");
    let text = std::fs::read_to_string(dir.path().join("out/run_stats.csv")).expect("csv");
    assert!(text.contains(",Aggregated,"));
    let (history, points) = header(&dir.path().join("out/run_stats_history.csv"));
    assert!(history.starts_with("Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%"));
    assert!(history.ends_with("Total Max Response Time,Total Average Content Size"));
    assert!(points >= 2, "{points} history rows");
    let (failures, kinds) = header(&dir.path().join("out/run_failures.csv"));
    assert_eq!(
        failures,
        "Method,Name,Error,Occurrences,First Seen,Last Seen"
    );
    assert_eq!(kinds, 1);
    let (exceptions, _) = header(&dir.path().join("out/run_exceptions.csv"));
    assert_eq!(exceptions, "Count,Message,Traceback,Nodes");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run.json")).expect("json"))
            .expect("parses");
    assert_eq!(json["aggregated"]["requests"], report.aggregated.requests);
    assert_eq!(json["model"], "closed");
    assert_eq!(json["thresholds"][1]["passed"], false);
    assert!(json["history"].as_array().is_some_and(|h| !h.is_empty()));

    let html = std::fs::read_to_string(dir.path().join("run.html")).expect("html");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 4, "four charts");
    assert!(html.contains("Requests per second") && html.contains("Latency percentiles"));
    assert!(html.contains("HTTPError: 500 Internal Server Error"));
    for external in ["<script", "src=", "<link", "@import", "url("] {
        assert!(!html.contains(external), "self-contained: found {external}");
    }
}
