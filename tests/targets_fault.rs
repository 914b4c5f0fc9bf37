//! `chaoslab fault … --target k8s|aca` end to end (issue 14 item 5): the
//! real binary's dry runs are validated (manifests with
//! `kubernetes-validate --strict`; the NetworkChaos against Chaos Mesh's own
//! CRD schema, vendored in tests/fixtures/chaos-mesh/; every dry run is
//! valid shell), and its command runner is exercised against recording
//! `kubectl`, `az` and `curl` stand-ins put on PATH.
//!
//! The stand-ins are the one place a test double is right here: there is no
//! cluster and no Azure subscription on this machine, and what is under test
//! is which commands chaoslab runs, with which arguments and stdin, in which
//! order — which the stand-ins record — and how it reads their answers.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_chaoslab");

/// A temporary directory with stand-ins for kubectl, az and curl.
struct StandIns {
    dir: tempfile::TempDir,
}

/// One recorded invocation: argv and stdin.
#[derive(Debug, Clone, PartialEq)]
struct Call {
    argv: Vec<String>,
    stdin: String,
}

impl StandIns {
    /// `answers`: shell `case` arms (pattern on "$*" → output) shared by
    /// the stand-ins; each records argv (one argument a line) and stdin.
    fn new(answers: &str) -> StandIns {
        let dir = tempfile::Builder::new()
            .prefix("chaoslab-targets-fault-")
            .tempdir()
            .unwrap();
        fs::create_dir(dir.path().join("bin")).unwrap();
        fs::create_dir(dir.path().join("calls")).unwrap();
        for tool in ["kubectl", "az", "curl"] {
            let script = format!(
                r#"#!/bin/bash
# Recording stand-in for {tool} (tests/targets_fault.rs).
calls="{calls}"
n=$(ls "$calls" | wc -l)
n=$(printf '%04d' "$n")
printf '%s\n' "{tool}" "$@" > "$calls/$n.argv"
if [ -t 0 ]; then : > "$calls/$n.stdin"; else cat > "$calls/$n.stdin"; fi
case "{tool} $*" in
{answers}
*) ;;
esac
"#,
                calls = dir.path().join("calls").display()
            );
            let path = dir.path().join("bin").join(tool);
            fs::write(&path, script).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        StandIns { dir }
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// PATH with the stand-ins first and the basic tools the scripts use.
    fn path(&self) -> String {
        format!("{}:/usr/bin:/bin", self.bin().display())
    }

    fn calls(&self) -> Vec<Call> {
        let mut names: Vec<_> = fs::read_dir(self.dir.path().join("calls"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "argv"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| Call {
                argv: fs::read_to_string(p)
                    .unwrap()
                    .lines()
                    .map(String::from)
                    .collect(),
                stdin: fs::read_to_string(p.with_extension("stdin")).unwrap_or_default(),
            })
            .collect()
    }

    fn reset(&self) {
        let calls = self.dir.path().join("calls");
        fs::remove_dir_all(&calls).unwrap();
        fs::create_dir(&calls).unwrap();
    }

    fn chaoslab(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        chaoslab_with_path(args, env, &self.path())
    }
}

fn chaoslab_with_path(args: &[&str], env: &[(&str, &str)], path: &str) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("PATH", path).stdin(Stdio::null());
    for var in [
        "CHAOSLAB_KUBE_CONTEXT",
        "CHAOSLAB_NAMESPACE",
        "CHAOSLAB_APP",
        "AZURE_RESOURCE_GROUP",
        "AZURE_NSG_NAME",
        "AZURE_SUBSCRIPTION_ID",
        "AZURE_LOCATION",
        "AZURE_CONTAINER_APP_NAME",
        "CHAOS_API_TOKEN",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// Fails with what the command printed unless it succeeded.
fn assert_succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn dry_run(args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.push("--dry-run");
    let out = chaoslab_with_path(&all, &[], "/usr/bin:/bin");
    assert!(
        out.status.success(),
        "{all:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The stdin heredocs of a dry run (`<<'EOF'` … `EOF`).
fn heredocs(script: &str) -> Vec<String> {
    let mut docs = Vec::new();
    let mut current: Option<String> = None;
    for line in script.lines() {
        match &mut current {
            Some(doc) if line == "EOF" => {
                docs.push(std::mem::take(doc));
                current = None;
            }
            Some(doc) => {
                doc.push_str(line);
                doc.push('\n');
            }
            None if line.ends_with("<<'EOF'") => current = Some(String::new()),
            None => {}
        }
    }
    docs
}

/// Whether a tool is there; under CI a missing tool fails the test.
fn have(program: &str, probe: &[&str]) -> bool {
    let ok = Command::new(program)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "{program} is missing (CI): .ci/setup.d/targets-fault.sh installs it"
        );
        eprintln!("skipped: {program} is not installed");
    }
    ok
}

/// `bash -n`: the dry run is a shell script that parses.
fn assert_valid_shell(script: &str) {
    let mut child = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not valid shell: {}\n{script}",
        text(&out.stderr)
    );
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, body).unwrap();
    path
}

#[test]
fn every_dry_run_is_valid_shell_and_runs_nothing() {
    // Stand-ins on PATH prove that a dry run runs nothing.
    let stand_ins = StandIns::new("");
    for case in dry_run_cases() {
        let mut args = case.clone();
        args.push("--dry-run");
        let out = stand_ins.chaoslab(&args, &[]);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let script = text(&out.stdout);
        assert!(script.starts_with("# chaoslab fault --dry-run"), "{script}");
        assert_valid_shell(&script);
        assert_eq!(stand_ins.calls(), vec![], "{args:?} ran something");
    }
}

/// Every fault command on k8s (kubectl and Chaos Mesh) and on ACA (az and
/// Chaos Studio), as `chaoslab` arguments.
fn dry_run_cases() -> Vec<Vec<&'static str>> {
    let k8s = ["--target", "k8s", "--namespace", "shop"];
    let aca = [
        "--target",
        "aca",
        "--resource-group",
        "rg-chaos",
        "--nsg",
        "nsg-redis",
        "--app",
        "chaoslab",
    ];
    let studio = [
        "--engine",
        "chaos-studio",
        "--subscription",
        "00000000-1111-2222-3333-444444444444",
        "--location",
        "japaneast",
    ];
    vec![
        [&["fault", "network", "block"][..], &k8s].concat(),
        [
            &["fault", "network", "block", "--engine", "chaos-mesh"][..],
            &k8s,
        ]
        .concat(),
        [
            &[
                "fault",
                "network",
                "latency",
                "--ms",
                "200",
                "--engine",
                "chaos-mesh",
            ][..],
            &k8s,
        ]
        .concat(),
        [
            &[
                "fault",
                "network",
                "bandwidth",
                "--kbps",
                "64",
                "--engine",
                "chaos-mesh",
            ][..],
            &k8s,
        ]
        .concat(),
        [&["fault", "kill"][..], &k8s].concat(),
        [&["fault", "kill", "--all", "--signal", "TERM"][..], &k8s].concat(),
        [&["fault", "deploy", "wrong-image"][..], &k8s].concat(),
        [&["fault", "deploy", "bad-env"][..], &k8s].concat(),
        [&["fault", "list"][..], &k8s].concat(),
        [&["fault", "clear", "--all"][..], &k8s].concat(),
        [&["fault", "network", "block"][..], &aca].concat(),
        [&["fault", "network", "block"][..], &aca, &studio].concat(),
        [&["fault", "deploy", "wrong-image"][..], &aca].concat(),
        [&["fault", "list"][..], &aca].concat(),
        [&["fault", "clear", "--all"][..], &aca].concat(),
        [&["fault", "clear", "--all"][..], &aca, &studio].concat(),
    ]
}

#[test]
fn the_network_policy_passes_kubernetes_validate_strict() {
    if !have("kubernetes-validate", &["--version"]) {
        return;
    }
    let script = dry_run(&[
        "fault",
        "network",
        "block",
        "--target",
        "k8s",
        "--namespace",
        "shop",
        "--app",
        "web",
        "--duration",
        "30",
    ]);
    let docs = heredocs(&script);
    assert_eq!(docs.len(), 1, "{script}");
    assert!(docs[0].contains("kind: NetworkPolicy"), "{}", docs[0]);
    assert!(
        script.contains("kubectl --namespace shop apply -f - <<'EOF'"),
        "{script}"
    );
    // The policy is held for its duration, then deleted.
    assert!(script.contains("# networkpolicy/chaoslab-network-block lasts 30 s; then:"));
    assert!(script.contains(
        "kubectl --namespace shop delete networkpolicy/chaoslab-network-block --ignore-not-found"
    ));
    let dir = tempfile::Builder::new()
        .prefix("chaoslab-targets-fault-")
        .tempdir()
        .unwrap();
    let file = write(dir.path(), "policy.yaml", &docs[0]);
    let out = Command::new("kubernetes-validate")
        .arg("--strict")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubernetes-validate --strict: {}{}\n{}",
        text(&out.stdout),
        text(&out.stderr),
        docs[0]
    );
}

/// Validates each document against the NetworkChaos CRD's openAPIV3Schema,
/// strictly: where the schema lists properties and allows no others, an
/// unknown field is an error (what the API server's strict field
/// validation does for a structural schema).
const CRD_CHECK: &str = r#"
import sys, yaml, jsonschema
crd = yaml.safe_load(open(sys.argv[1]))
version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
schema = version["schema"]["openAPIV3Schema"]
def strict(node):
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node \
           and "additionalProperties" not in node \
           and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
        for value in node.values():
            strict(value)
    elif isinstance(node, list):
        for value in node:
            strict(value)
strict(schema)
# metadata is the API server's ObjectMeta, not part of the CRD's schema.
schema["properties"]["metadata"] = {"type": "object"}
for path in sys.argv[2:]:
    doc = yaml.safe_load(open(path))
    assert doc["apiVersion"] == crd["spec"]["group"] + "/v1alpha1", doc["apiVersion"]
    assert doc["kind"] == crd["spec"]["names"]["kind"], doc["kind"]
    jsonschema.validate(doc, schema)
    print("valid:", path)
"#;

#[test]
fn the_network_chaos_matches_chaos_mesh_s_own_crd_schema() {
    if !have("python3", &["-c", "import jsonschema, yaml"]) {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("chaoslab-targets-fault-")
        .tempdir()
        .unwrap();
    let mut files = Vec::new();
    for (i, fault) in [
        &["network", "block"][..],
        &["network", "block", "--duration", "0"],
        &["network", "latency", "--ms", "150", "--jitter", "20"],
        &["network", "bandwidth", "--kbps", "64"],
    ]
    .iter()
    .enumerate()
    {
        let mut args = vec!["fault"];
        args.extend_from_slice(fault);
        args.extend(["--target", "k8s", "--engine", "chaos-mesh"]);
        let script = dry_run(&args);
        let docs = heredocs(&script);
        assert_eq!(docs.len(), 1, "{script}");
        assert!(docs[0].contains("kind: NetworkChaos"));
        files.push(write(dir.path(), &format!("chaos-{i}.yaml"), &docs[0]));
    }
    let crd = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/chaos-mesh/chaos-mesh.org_networkchaos.yaml");
    let out = Command::new("python3")
        .arg("-c")
        .arg(CRD_CHECK)
        .arg(&crd)
        .args(&files)
        .output()
        .unwrap();
    assert_succeeded(&out);
    // And the checker does reject what the CRD does not allow.
    let wrong = write(
        dir.path(),
        "wrong.yaml",
        "apiVersion: chaos-mesh.org/v1alpha1\nkind: NetworkChaos\nmetadata: {name: x}\nspec:\n  action: partition\n  mode: all\n  selector: {}\n  blast: radius\n",
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(CRD_CHECK)
        .arg(&crd)
        .arg(&wrong)
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unknown field was accepted");
}

#[test]
fn a_real_run_executes_exactly_what_the_dry_run_prints() {
    let stand_ins = StandIns::new("");
    let args = [
        "fault",
        "network",
        "block",
        "--target",
        "k8s",
        "--context",
        "kind-lab",
        "--namespace",
        "shop",
        "--duration",
        "1",
    ];
    let out = stand_ins.chaoslab(&args, &[]);
    assert_succeeded(&out);
    let live = stand_ins.calls();
    // The dry run, executed by bash with the same stand-ins.
    stand_ins.reset();
    let mut dry_args = args.to_vec();
    dry_args.push("--dry-run");
    let script = text(&stand_ins.chaoslab(&dry_args, &[]).stdout);
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("PATH", stand_ins.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let replayed = stand_ins.calls();
    let argv = |calls: &[Call]| calls.iter().map(|c| c.argv.clone()).collect::<Vec<_>>();
    assert_eq!(argv(&live), argv(&replayed));
    assert_eq!(
        argv(&live),
        vec![
            vec![
                "kubectl",
                "--context",
                "kind-lab",
                "--namespace",
                "shop",
                "apply",
                "-f",
                "-"
            ],
            vec![
                "kubectl",
                "--context",
                "kind-lab",
                "--namespace",
                "shop",
                "delete",
                "networkpolicy/chaoslab-network-block",
                "--ignore-not-found"
            ],
        ]
    );
    // The same manifest on stdin, but for its start time.
    let started = |s: &str| {
        s.lines()
            .filter(|l| !l.contains("chaoslab.io/started"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(started(&live[0].stdin), started(&replayed[0].stdin));
    assert!(live[0].stdin.contains("policyTypes:\n  - Egress"));
}

#[test]
fn kill_deletes_one_running_pod_of_the_service() {
    let stand_ins =
        StandIns::new(r#"*"get pods"*) printf 'pod/chaoslab-7d9-a\npod/chaoslab-7d9-b\n' ;;"#);
    let out = stand_ins.chaoslab(&["fault", "kill", "--target", "k8s"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let calls = stand_ins.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(
        calls[0].argv,
        [
            "kubectl",
            "--namespace",
            "chaoslab",
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/name=chaoslab,app.kubernetes.io/component=service",
            "--field-selector=status.phase=Running",
            "-o",
            "name"
        ]
    );
    let delete = &calls[1].argv;
    assert_eq!(
        &delete[..4],
        ["kubectl", "--namespace", "chaoslab", "delete"]
    );
    assert!(
        ["pod/chaoslab-7d9-a", "pod/chaoslab-7d9-b"].contains(&delete[4].as_str()),
        "{delete:?}"
    );
    assert_eq!(
        &delete[5..],
        ["--wait=false", "--grace-period=0", "--force"]
    );
}

#[test]
fn a_bad_deploy_marks_the_deployment_and_clear_rolls_it_back() {
    let stand_ins = StandIns::new(
        r#"*"get deployment/chaoslab"*) printf '4 ' ;;
*"get deployments -l chaoslab.io/fault"*) printf 'chaoslab 4\n' ;;
*"get networkchaos"*|*"delete networkchaos"*) echo 'error: the server doesn'"'"'t have a resource type "networkchaos"' >&2; exit 1 ;;"#,
    );
    let out = stand_ins.chaoslab(&["fault", "deploy", "wrong-image", "--target", "k8s"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let calls = stand_ins.calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(
        calls[1].argv[3..6],
        ["patch", "deployment/chaoslab", "--type=merge"]
    );
    let mark: serde_json::Value = serde_json::from_str(&calls[1].argv[7]).unwrap();
    assert_eq!(
        mark["metadata"]["labels"]["chaoslab.io/fault"],
        "deploy-wrong-image"
    );
    assert_eq!(
        mark["metadata"]["annotations"]["chaoslab.io/restore-revision"],
        "4"
    );
    assert_eq!(
        calls[2].argv[3..],
        [
            "set",
            "image",
            "deployment/chaoslab",
            "*=mcr.microsoft.com/chaos-lab/nonexistent:latest"
        ]
    );

    stand_ins.reset();
    let out = stand_ins.chaoslab(&["fault", "clear", "--all", "--target", "k8s"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let calls: Vec<Vec<String>> = stand_ins
        .calls()
        .into_iter()
        .map(|c| c.argv[3..].to_vec())
        .collect();
    assert_eq!(
        calls[0],
        [
            "delete",
            "networkpolicies",
            "-l",
            "chaoslab.io/fault",
            "--ignore-not-found"
        ]
    );
    assert_eq!(calls[1][..2], ["delete", "networkchaos"]);
    assert_eq!(
        calls[3],
        ["rollout", "undo", "deployment/chaoslab", "--to-revision=4"]
    );
    assert_eq!(calls[4][..2], ["patch", "deployment/chaoslab"]);
}

#[test]
fn a_second_deploy_fault_is_refused_before_anything_changes() {
    let stand_ins = StandIns::new(r#"*"get deployment/chaoslab"*) printf '4 deploy-bad-env' ;;"#);
    let out = stand_ins.chaoslab(&["fault", "deploy", "bad-env", "--target", "k8s"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("already has a deploy fault (deploy-bad-env)"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(stand_ins.calls().len(), 1);
}

/// `az` creating the seed's NSG rule: deny TCP 10000 inbound, priority 100.
const SEED_RULE_ARGV: [&str; 25] = [
    "az",
    "network",
    "nsg",
    "rule",
    "create",
    "--resource-group",
    "rg-chaos",
    "--nsg-name",
    "nsg-redis",
    "--name",
    "DenyRedisTraffic",
    "--priority",
    "100",
    "--direction",
    "Inbound",
    "--access",
    "Deny",
    "--protocol",
    "Tcp",
    "--destination-port-ranges",
    "10000",
    "--description",
    "Chaos engineering: Block Redis traffic",
    "--output",
    "none",
];

#[test]
fn on_aca_the_seed_s_rule_then_a_redis_reset_with_the_token_on_stdin() {
    let stand_ins = StandIns::new(
        r#"*"nsg rule show"*) echo Succeeded ;;
*"containerapp show"*) echo chaoslab.example.azurecontainerapps.io ;;
"curl "*) echo '{"status":"reset"}' ;;"#,
    );
    let env = [
        ("AZURE_RESOURCE_GROUP", "rg-chaos"),
        ("AZURE_NSG_NAME", "nsg-redis"),
        ("AZURE_CONTAINER_APP_NAME", "ca-chaoslab"),
        ("CHAOS_API_TOKEN", "s3cret-token"),
    ];
    let out = stand_ins.chaoslab(
        &[
            "fault",
            "network",
            "block",
            "--target",
            "aca",
            "--duration",
            "0",
        ],
        &env,
    );
    assert_succeeded(&out);
    let calls = stand_ins.calls();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert_eq!(calls[0].argv, SEED_RULE_ARGV);
    assert_eq!(calls[1].argv[1..5], ["network", "nsg", "rule", "show"]);
    assert_eq!(calls[2].argv[1..3], ["containerapp", "show"]);
    let curl = &calls[3];
    assert_eq!(curl.argv[0], "curl");
    assert_eq!(
        curl.argv.last().unwrap(),
        "https://chaoslab.example.azurecontainerapps.io/chaos/redis-reset"
    );
    assert!(curl.argv.contains(&r#"{"force": true}"#.to_string()));
    assert!(
        !curl.argv.iter().any(|a| a.contains("s3cret")),
        "token in argv"
    );
    assert_eq!(curl.stdin, "Authorization: Bearer s3cret-token\n");
    // The dry run shows the variable, never the token.
    let dry = stand_ins.chaoslab(
        &["fault", "network", "block", "--target", "aca", "--dry-run"],
        &env,
    );
    let script = text(&dry.stdout);
    assert!(!script.contains("s3cret"), "{script}");
    assert!(
        script.contains("Authorization: Bearer $CHAOS_API_TOKEN"),
        "{script}"
    );
}

#[test]
fn clear_on_aca_copies_the_newest_good_revision_then_deactivates_every_fault_revision() {
    let stand_ins = StandIns::new(
        r#"*"revision list"*"properties.active"*) echo '["ca--chaoslab-fault-1", "ca--chaoslab-fault-2"]' ;;
*"revision list"*"sort_by"*) echo ca--good ;;"#,
    );
    let env = [
        ("AZURE_RESOURCE_GROUP", "rg-chaos"),
        ("AZURE_CONTAINER_APP_NAME", "ca"),
    ];
    let out = stand_ins.chaoslab(&["fault", "clear", "--all", "--target", "aca"], &env);
    assert_succeeded(&out);
    let calls = stand_ins.calls();
    let verbs: Vec<&str> = calls.iter().map(|c| c.argv[3].as_str()).collect();
    assert_eq!(
        verbs,
        ["list", "list", "copy", "deactivate", "deactivate"],
        "{calls:?}"
    );
    let copy = &calls[2].argv;
    let from = copy.iter().position(|a| a == "--from-revision").unwrap();
    assert_eq!(copy[from + 1], "ca--good");
    assert!(copy.contains(&"--revision-suffix".to_string()), "{copy:?}");
    for (call, name) in calls[3..]
        .iter()
        .zip(["ca--chaoslab-fault-1", "ca--chaoslab-fault-2"])
    {
        let at = call.argv.iter().position(|a| a == "--revision").unwrap();
        assert_eq!(call.argv[at + 1], name);
        assert_eq!(call.argv[at - 2..at], ["--name", "ca"]);
    }
    // No fault revision: nothing to go back from, nothing run after the list.
    let empty = StandIns::new(r#"*"revision list"*) echo '[]' ;;"#);
    let out = empty.chaoslab(&["fault", "clear", "--all", "--target", "aca"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(empty.calls().len(), 1, "{:?}", empty.calls());
}

#[test]
fn the_chaos_studio_experiment_carries_the_seed_s_rule() {
    let script = dry_run(&[
        "fault",
        "network",
        "block",
        "--target",
        "aca",
        "--engine",
        "chaos-studio",
        "--resource-group",
        "rg-chaos",
        "--nsg",
        "nsg-redis",
        "--subscription",
        "00000000-1111-2222-3333-444444444444",
        "--location",
        "japaneast",
        "--duration",
        "120",
    ]);
    let line = script
        .lines()
        .find(|l| l.contains("experiments/chaoslab-deny-redis-traffic?"))
        .unwrap_or_else(|| panic!("{script}"));
    let body = line
        .split(" --body '")
        .nth(1)
        .and_then(|rest| rest.split("' --query").next())
        .unwrap_or_else(|| panic!("{line}"));
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    let action = &body["properties"]["steps"][0]["branches"][0]["actions"][0];
    assert_eq!(
        action["name"],
        "urn:csci:microsoft:networkSecurityGroup:securityRule/1.0"
    );
    assert_eq!(action["duration"], "PT120S");
    let params: std::collections::HashMap<String, String> = action["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["key"].as_str().unwrap().to_string(),
                p["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(params["name"], "DenyRedisTraffic");
    assert_eq!(params["priority"], "100");
    assert_eq!(params["direction"], "Inbound");
    assert_eq!(params["action"], "Deny");
    assert_eq!(params["destinationPortRanges"], r#"["10000"]"#);
    assert_eq!(body["location"], "japaneast");
    assert!(script.contains("--role 'Network Contributor'"), "{script}");
    assert!(script.contains("chaoslab-deny-redis-traffic/start?api-version=2024-01-01"));
}

#[test]
fn bad_input_exits_2_with_one_clear_line_and_applies_nothing() {
    let stand_ins = StandIns::new("");
    for &(args, message) in BAD_INPUT {
        let out = stand_ins.chaoslab(args, &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert_eq!(stand_ins.calls(), vec![], "{args:?} ran something");
    }
}

/// Bad arguments, each with what its one line of error says.
const BAD_INPUT: &[(&[&str], &str)] = &[
    (&["fault", "list", "--target", "gke"], "invalid value 'gke'"),
    (
        &[
            "fault",
            "network",
            "block",
            "--target",
            "k8s",
            "--engine",
            "chaos-monkey",
        ],
        "invalid value 'chaos-monkey'",
    ),
    (
        &[
            "fault",
            "network",
            "block",
            "--target",
            "k8s",
            "--engine",
            "chaos-studio",
        ],
        "--engine chaos-studio is for --target aca",
    ),
    (
        &["fault", "network", "block", "--engine", "chaos-mesh"],
        "--engine chaos-mesh needs --target k8s",
    ),
    (
        &[
            "fault",
            "kill",
            "--target",
            "k8s",
            "--namespace",
            "Shop_Prod",
        ],
        "namespace `Shop_Prod` is not a valid DNS label",
    ),
    (
        &["fault", "kill", "--target", "k8s", "--app", "web-"],
        "`web-` is not a valid DNS label",
    ),
    (
        &[
            "fault",
            "deploy",
            "wrong-image",
            "--target",
            "aca",
            "--resource-group",
            "rg",
            "--app",
            "My_App",
        ],
        "container app name `My_App` is not a valid DNS label",
    ),
    (
        &[
            "fault", "network", "latency", "--ms", "100", "--target", "k8s",
        ],
        "needs --engine chaos-mesh",
    ),
    (
        &[
            "fault",
            "network",
            "block",
            "--target",
            "k8s",
            "--duration",
            "-5",
        ],
        "--duration must be 0 or more",
    ),
    (
        &["fault", "redis", "stop", "--target", "k8s"],
        "local-lab fault",
    ),
    (
        &["fault", "list", "--target", "aca"],
        "needs --resource-group",
    ),
];

#[test]
fn a_missing_kubectl_or_az_is_one_line_saying_how_to_install_it() {
    let empty = tempfile::Builder::new()
        .prefix("chaoslab-targets-fault-")
        .tempdir()
        .unwrap();
    let path = empty.path().display().to_string();
    let out = chaoslab_with_path(&["fault", "kill", "--target", "k8s"], &[], &path);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("kubectl is not on PATH: install it"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1);
    let out = chaoslab_with_path(
        &[
            "fault",
            "list",
            "--target",
            "aca",
            "--resource-group",
            "rg",
            "--nsg",
            "nsg",
        ],
        &[],
        &path,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("az is not on PATH: install the Azure CLI"),
        "{}",
        text(&out.stderr)
    );
}
