//! The attacker's view of issue 11's findings, each played against the real
//! lab: what a local process holding a leaked credential, or a hostile
//! input, can and cannot do. (More findings land here as they are fixed.)

#[path = "lab_support/mod.rs"]
mod lab_support;

use std::process::Command;

use lab_support::builder;

/// Port of the lab's redis-server, from the status's description
/// (`… (redis-server on port N, …)`).
fn redis_port(status: &serde_json::Value) -> u16 {
    let describe = status["lab"]["redis"].as_str().unwrap_or_default();
    describe
        .split("redis-server on port ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no redis-server port in {describe:?}"))
}

/// Finding 4: the service's Redis credential, if it leaks, only reaches the
/// service's own keys and commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaked_service_credential_cannot_flush_configure_or_read_other_keys() {
    let lab = builder().start().await;
    let status = lab.status().await;
    let port = redis_port(&status).to_string();
    let password = std::fs::read_to_string(lab.state_dir().join("redis/service.password"))
        .expect("service password file");
    let as_service = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "--user",
                "chaoslab",
                "--no-auth-warning",
            ])
            .args(["--pass", password.trim()])
            .args(args)
            .output()
            .expect("redis-cli (apt-get install -y redis-tools)");
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    };
    for attack in [
        &["FLUSHALL"][..],
        &["CONFIG", "SET", "dir", "/tmp"],
        &["GET", "some-other-app:secret"],
        &["KEYS", "*"],
        &["ACL", "SETUSER", "evil", "on", ">x", "+@all"],
        &["DEL", "chaos_lab:counter:requests"],
        &["SHUTDOWN"],
    ] {
        let answer = as_service(attack);
        assert!(answer.contains("NOPERM"), "{attack:?} answered {answer}");
    }
    // What the service needs still works, and the service still serves.
    assert!(
        as_service(&["INCR", "chaos_lab:counter:requests"])
            .trim()
            .parse::<i64>()
            .is_ok()
    );
    let r = lab.http.get(lab.ingress("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = lab.http.get(lab.ingress("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The rights survive a Redis restart (the user is created anew).
    let out = lab.cli(&["fault", "redis", "restart"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lab_support::eventually(
        std::time::Duration::from_secs(30),
        "serving after the restart",
        || async {
            let r = lab.http.get(lab.ingress("/")).send().await.ok()?;
            (r.status() == 200).then_some(())
        },
    )
    .await;
    let answer = as_service(&["FLUSHALL"]);
    assert!(answer.contains("NOPERM"), "after a restart: {answer}");
}

/// Finding 3: with a chaos token the replicas refuse unauthenticated chaos
/// calls, and every client of the lab (the CLI, the network fault's
/// redis-reset) sends it; the token stays in an owner-only file and out of
/// status, events and revisions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_chaos_token_the_lab_sends_it_and_strangers_are_refused() {
    let lab = builder().arg("--chaos-token").start().await;
    let token_file = lab.state_dir().join("chaos-token");
    let token = std::fs::read_to_string(&token_file).expect("chaos-token file");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A stranger on this machine (or a web page) gets 401.
    let stranger = lab
        .http
        .post(lab.ingress("/chaos/redis-reset"))
        .json(&serde_json::json!({"force": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 401);
    // The lab's own clients send the token.
    let out = lab.cli(&["chaos", "load", "low", "--duration", "1"]).await;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("200"), "{text}");
    let out = lab
        .cli(&["fault", "network", "block", "--duration", "0"])
        .await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    let faults = lab.api("/api/faults").await;
    let answers = faults[0]["redis_reset"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !answers.is_empty() && answers.iter().all(|a| a["status"] == 200),
        "{faults}"
    );
    lab.cli(&["fault", "clear", "--all"]).await;
    // The token shows nowhere.
    for path in ["/api/status", "/api/revisions", "/api/faults"] {
        let body = lab.api(path).await.to_string();
        assert!(!body.contains(token.trim()), "{path} shows the chaos token");
    }
    let path = "/api/events?limit=2000";
    for event in lab.api_lines(path).await {
        let line = event.to_string();
        assert!(!line.contains(token.trim()), "{path} shows the chaos token");
    }
    assert!(
        !lab.output().contains(token.trim()),
        "up's output shows the chaos token"
    );
}

/// Finding 1 (the lab's part): API-made proxies may target loopback only,
/// unless the lab was started with `--allow-remote-upstream`. Nothing here
/// connects anywhere: a proxy is only created (TEST-NET-1, never reached).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_upstreams_need_the_labs_explicit_permission() {
    for (flag, expected) in [(None, 403), (Some("--allow-remote-upstream"), 201)] {
        let mut b = builder();
        if let Some(f) = flag {
            b = b.arg(f);
        }
        let lab = b.start().await;
        let status = lab.status().await;
        let api = status["lab"]["toxiproxy_url"]
            .as_str()
            .expect("toxiproxy url")
            .to_string();
        let r = lab
            .http
            .post(format!("{api}/proxies"))
            .json(&serde_json::json!({"name": "offsite", "listen": "127.0.0.1:0", "upstream": "192.0.2.1:6379", "enabled": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            expected,
            "{flag:?}: {}",
            r.text().await.unwrap_or_default()
        );
    }
}
