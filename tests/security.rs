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
}
