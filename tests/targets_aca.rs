//! `chaoslab export aca` end to end (SPEC §12, issue 14 item 6), driving the
//! real binary: the Bicep it writes parses with pycep-parser, and every key
//! of its Container App YAML maps onto the Container Apps API model of
//! azure-mgmt-appcontainers (tests/targets_support/aca_check.py; both from
//! PyPI, installed by .ci/setup.d/targets-aca.sh). No subscription is used:
//! nothing here deploys. Without the Python tools the validating tests fail
//! under CI and skip elsewhere, saying why; the bad-input tests need none.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const CHECKER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/targets_support/aca_check.py"
);

const SUBSCRIPTION: &str = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";

/// Runs `chaoslab export aca ARGS` with none of the Azure variables its
/// flags default from, so the machine's environment cannot change it.
fn export(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chaoslab"));
    cmd.args(["export", "aca"]).args(args);
    for var in [
        "AZURE_CONTAINER_APP_NAME",
        "AZURE_LOCATION",
        "AZURE_PRINCIPAL_ID",
        "AZURE_RESOURCE_GROUP",
        "AZURE_SUBSCRIPTION_ID",
        "AZURE_MANAGED_IDENTITY_CLIENT_ID",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
    ] {
        cmd.env_remove(var);
    }
    cmd.output().expect("chaoslab runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether python3 can import pycep-parser, azure-mgmt-appcontainers and
/// PyYAML. Missing under CI is a failure; elsewhere the caller skips.
fn python_tools() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import pycep, azure.mgmt.appcontainers, yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        assert!(
            !ci,
            "pycep-parser, azure-mgmt-appcontainers and PyYAML are required in CI \
             (bash .ci/setup.d/targets-aca.sh)"
        );
        eprintln!(
            "note: pycep-parser / azure-mgmt-appcontainers / PyYAML not installed \
             (bash .ci/setup.d/targets-aca.sh), skipping"
        );
    }
    ok
}

/// `aca_check.py ARGS`: (exit success, stdout as JSON, stderr).
fn checker(args: &[&Path], mode: &str) -> (bool, Value, String) {
    let out = Command::new("python3")
        .arg(CHECKER)
        .arg(mode)
        .args(args)
        .output()
        .expect("python3 runs");
    let stdout = text(&out.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.success(), json, text(&out.stderr))
}

fn bicep_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![dir.join("main.bicep")];
    let mut modules: Vec<PathBuf> = std::fs::read_dir(dir.join("modules"))
        .expect("modules/ written")
        .map(|e| e.expect("dir entry").path())
        .collect();
    modules.sort();
    files.extend(modules);
    files
}

/// A directory with a space and non-ASCII in its path, as users have.
fn out_dir(tmp: &tempfile::TempDir) -> PathBuf {
    tmp.path().join("aca export é")
}

fn full_export(out: &Path, extra: &[&str]) -> Output {
    let out_arg = out.to_str().expect("utf-8 path");
    let mut args = vec![
        "--out",
        out_arg,
        "--name",
        "chaos-lab",
        "--location",
        "japaneast",
        "--image",
        "crexample.azurecr.io/chaoslab:0.1.0",
        "--resource-group",
        "rg-chaos",
        "--subscription",
        SUBSCRIPTION,
        "--identity-client-id",
        CLIENT_ID,
        "--suffix",
        "abcd12",
    ];
    args.extend_from_slice(extra);
    export(&args)
}

#[test]
fn every_bicep_file_parses_and_has_the_seeds_resources() {
    if !python_tools() {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("chaoslab-aca-")
        .tempdir()
        .unwrap();
    let out = out_dir(&tmp);
    let run = full_export(&out, &[]);
    assert!(run.status.success(), "export failed: {}", text(&run.stderr));

    let files = bicep_files(&out);
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let (ok, parsed, stderr) = checker(&refs, "bicep");
    assert!(ok, "pycep-parser refused a file: {stderr}");
    assert_eq!(parsed.as_object().map(|m| m.len()), Some(files.len()));

    // main.bicep's modules are exactly the files under modules/.
    let main = &parsed[files[0].to_str().unwrap()];
    let used: BTreeSet<String> = main["modules"]
        .as_object()
        .expect("main.bicep has modules")
        .values()
        .map(|m| m["detail"]["path"].as_str().unwrap().to_string())
        .collect();
    let written: BTreeSet<String> = files[1..]
        .iter()
        .map(|p| format!("modules/{}", p.file_name().unwrap().to_str().unwrap()))
        .collect();
    assert_eq!(used, written);

    // The resource types of the seed's design, each declared (not only
    // referenced as `existing`) somewhere.
    assert_the_seeds_resources_declared(&files, &parsed);

    // The parameters file gives only parameters main.bicep declares, and
    // every one main.bicep requires (no default).
    assert_parameters_given_match(&out, &files[0], main);
}

/// Every resource type of the seed's design is declared in a module, and
/// two metric alerts.
fn assert_the_seeds_resources_declared(files: &[PathBuf], parsed: &Value) {
    let mut declared: Vec<String> = Vec::new();
    for file in &files[1..] {
        let doc = &parsed[file.to_str().unwrap()];
        for resource in doc["resources"]
            .as_object()
            .into_iter()
            .flat_map(|r| r.values())
        {
            if resource["existing"] != Value::Bool(true) {
                declared.push(resource["type"].as_str().unwrap().to_string());
            }
        }
    }
    for wanted in [
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "Microsoft.OperationalInsights/workspaces",
        "Microsoft.Insights/components",
        "Microsoft.Network/virtualNetworks",
        "Microsoft.Network/networkSecurityGroups",
        "Microsoft.Cache/redisEnterprise",
        "Microsoft.Cache/redisEnterprise/databases",
        "Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments",
        "Microsoft.ContainerRegistry/registries",
        "Microsoft.App/managedEnvironments",
        "Microsoft.App/containerApps",
    ] {
        assert!(declared.iter().any(|t| t == wanted), "no {wanted} declared");
    }
    let alerts = declared
        .iter()
        .filter(|t| *t == "Microsoft.Insights/metricAlerts")
        .count();
    assert_eq!(alerts, 2, "the seed has two alert rules");
}

/// `main.parameters.json` gives only parameters `main.bicep` declares and
/// every one it requires; no resource group among the inputs.
fn assert_parameters_given_match(out: &Path, main_bicep: &Path, main: &Value) {
    let params: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("main.parameters.json")).unwrap())
            .unwrap();
    let given: BTreeSet<&str> = params["parameters"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let declared_params = main["parameters"].as_object().expect("parameters");
    for name in &given {
        assert!(
            declared_params.contains_key(*name),
            "{name} not in main.bicep"
        );
    }
    let main_text = std::fs::read_to_string(main_bicep).unwrap();
    for name in declared_params.keys() {
        let required = main_text
            .lines()
            .any(|l| l.starts_with(&format!("param {name} ")) && !l.contains('='));
        if required {
            assert!(
                given.contains(name.as_str()),
                "{name} is required but not given"
            );
        }
    }
    assert!(
        !main_text.contains("resourceGroup:"),
        "no resource group in the Bicep inputs"
    );
    assert!(
        !given
            .iter()
            .any(|k| k.to_lowercase().contains("resourcegroup"))
    );
}

#[test]
fn the_yaml_maps_onto_the_container_apps_model_with_the_seeds_settings() {
    if !python_tools() {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("chaoslab-aca-")
        .tempdir()
        .unwrap();
    let out = out_dir(&tmp);
    let run = full_export(&out, &[]);
    assert!(run.status.success(), "export failed: {}", text(&run.stderr));
    assert!(
        !text(&run.stderr).contains("placeholder"),
        "every value was given: {}",
        text(&run.stderr)
    );

    let yaml = out.join("containerapp.yaml");
    let (ok, report, stderr) = checker(&[&yaml], "yaml");
    assert!(ok, "unknown keys: {} {stderr}", report["unknown"]);
    assert!(report["checked"].as_u64().unwrap() > 60, "{report}");
    let doc = &report["document"];
    assert!(
        !std::fs::read_to_string(&yaml)
            .unwrap()
            .contains("REPLACE_WITH")
    );

    let props = &doc["properties"];
    assert_identity_and_configuration(doc);

    assert_the_seeds_container(&props["template"]["containers"][0]);
    let scale = &props["template"]["scale"];
    assert_eq!(
        (scale["minReplicas"].as_u64(), scale["maxReplicas"].as_u64()),
        (Some(1), Some(5))
    );
    assert_eq!(scale["rules"][0]["custom"]["type"], "cpu");
    assert_eq!(scale["rules"][0]["custom"]["metadata"]["value"], "70");
}

/// The app runs as the user-assigned identity (also for the registry), in
/// the lab's environment, one revision at a time, ingress to 8000.
fn assert_identity_and_configuration(doc: &Value) {
    let identity = format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-chaos/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-chaos-lab"
    );
    assert_eq!(doc["identity"]["type"], "UserAssigned");
    assert!(
        doc["identity"]["userAssignedIdentities"]
            .get(&identity)
            .is_some()
    );
    let props = &doc["properties"];
    assert_eq!(
        props["environmentId"],
        format!(
            "/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-chaos/providers/Microsoft.App/managedEnvironments/cae-chaos-lab"
        )
    );
    assert_eq!(props["configuration"]["activeRevisionsMode"], "Single");
    assert_eq!(props["configuration"]["ingress"]["targetPort"], 8000);
    assert_eq!(
        props["configuration"]["registries"][0]["identity"],
        identity.as_str()
    );
    assert_eq!(
        props["configuration"]["registries"][0]["server"],
        "crchaoslababcd12.azurecr.io"
    );
}

/// The container: the image, 0.25 CPU and 0.5 Gi, the seed's probes, and
/// the environment (Redis over TLS with Entra ID, the token as a secret).
fn assert_the_seeds_container(container: &Value) {
    assert_eq!(container["image"], "crexample.azurecr.io/chaoslab:0.1.0");
    assert_eq!(container["resources"]["cpu"], 0.25);
    assert_eq!(container["resources"]["memory"], "0.5Gi");
    let probes = container["probes"].as_array().unwrap();
    let live = probes.iter().find(|p| p["type"] == "Liveness").unwrap();
    let ready = probes.iter().find(|p| p["type"] == "Readiness").unwrap();
    assert_eq!(live["tcpSocket"]["port"], 8000);
    let t = |p: &Value, k: &str| p[k].as_u64().unwrap();
    assert_eq!(
        [
            t(live, "initialDelaySeconds"),
            t(live, "periodSeconds"),
            t(live, "timeoutSeconds"),
            t(live, "failureThreshold")
        ],
        [60, 10, 10, 5]
    );
    assert_eq!(ready["httpGet"]["path"], "/health");
    assert_eq!(
        [
            t(ready, "initialDelaySeconds"),
            t(ready, "periodSeconds"),
            t(ready, "timeoutSeconds"),
            t(ready, "failureThreshold"),
            t(ready, "successThreshold")
        ],
        [10, 5, 3, 2, 2]
    );
    let env: Vec<(String, Value)> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e.clone()))
        .collect();
    let var = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, e)| e.clone());
    assert_eq!(
        var("REDIS_HOST").unwrap()["value"],
        "redis-chaos-lab-abcd12.japaneast.redis.azure.net"
    );
    assert_eq!(var("REDIS_PORT").unwrap()["value"], "10000");
    assert_eq!(var("REDIS_SSL").unwrap()["value"], "true");
    assert_eq!(var("REDIS_USE_ENTRA_ID").unwrap()["value"], "true");
    assert_eq!(var("AZURE_CLIENT_ID").unwrap()["value"], CLIENT_ID);
    assert_eq!(var("APP_HOST").unwrap()["value"], "0.0.0.0");
    // The token is a secret reference, its value only in the secrets list.
    assert_eq!(
        var("CHAOS_API_TOKEN").unwrap()["secretRef"],
        "chaos-api-token"
    );
}

#[test]
fn the_checker_finds_a_key_the_model_does_not_have() {
    if !python_tools() {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("chaoslab-aca-")
        .tempdir()
        .unwrap();
    let out = out_dir(&tmp);
    assert!(full_export(&out, &[]).status.success());
    // A misspelt key next to a real one: deserialising would drop it silently.
    let yaml = out.join("containerapp.yaml");
    let original = std::fs::read_to_string(&yaml).unwrap();
    let broken = original.replacen("  workloadProfileName:", "  workloadProfileNme:", 1);
    assert_ne!(
        broken, original,
        "the YAML has properties.workloadProfileName"
    );
    let bad = tmp.path().join("bad.yaml");
    std::fs::write(&bad, broken).unwrap();
    let (ok, report, _) = checker(&[&bad], "yaml");
    assert!(!ok);
    assert_eq!(
        report["unknown"],
        serde_json::json!(["properties.workloadProfileNme"])
    );
}

#[test]
fn quick_probes_internal_ingress_and_other_scale_settings() {
    if !python_tools() {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("chaoslab-aca-")
        .tempdir()
        .unwrap();
    let out = out_dir(&tmp);
    let run = full_export(
        &out,
        &[
            "--probes",
            "quick",
            "--internal",
            "--min-replicas",
            "2",
            "--max-replicas",
            "8",
            "--cpu-utilization",
            "50",
        ],
    );
    assert!(run.status.success(), "{}", text(&run.stderr));
    let (ok, report, _) = checker(&[&out.join("containerapp.yaml")], "yaml");
    assert!(ok, "{}", report["unknown"]);
    let props = &report["document"]["properties"];
    assert_eq!(props["configuration"]["ingress"]["external"], false);
    let live = &props["template"]["containers"][0]["probes"][0];
    assert_eq!(live["initialDelaySeconds"], 6);
    assert_eq!(live["periodSeconds"], 1);
    let scale = &props["template"]["scale"];
    assert_eq!(scale["minReplicas"], 2);
    assert_eq!(scale["maxReplicas"], 8);
    assert_eq!(scale["rules"][0]["custom"]["metadata"]["value"], "50");
    let params: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("main.parameters.json")).unwrap())
            .unwrap();
    let p = |k: &str| params["parameters"][k]["value"].clone();
    assert_eq!(p("probePreset"), "quick");
    assert_eq!(p("externalIngress"), false);
    assert_eq!(
        (p("minReplicas"), p("maxReplicas"), p("cpuUtilization")),
        (2.into(), 8.into(), 50.into())
    );
}

#[test]
fn exporting_again_keeps_the_suffix_and_token_and_secret_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::Builder::new()
        .prefix("chaoslab-aca-")
        .tempdir()
        .unwrap();
    let out = out_dir(&tmp);
    let out_arg = out.to_str().unwrap();
    let read = |file: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(file)).unwrap()).unwrap()
    };
    let param = |doc: &Value, k: &str| doc["parameters"][k]["value"].as_str().unwrap().to_string();

    let first = export(&["--out", out_arg]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    // Nothing told it the subscription, group or client id: the YAML says so.
    let note = text(&first.stderr);
    assert!(note.contains("placeholders"), "{note}");
    assert!(
        note.contains("--subscription") && note.contains("--resource-group"),
        "{note}"
    );
    assert!(
        std::fs::read_to_string(out.join("containerapp.yaml"))
            .unwrap()
            .contains("REPLACE_WITH_SUBSCRIPTION_ID")
    );
    let a = read("main.parameters.json");
    // No --image: the first deployment is the infrastructure only.
    assert_eq!(param(&a, "image"), "");
    assert_eq!(param(&a, "chaosApiToken").len(), 64);
    for file in ["main.parameters.json", "containerapp.yaml"] {
        let mode = std::fs::metadata(out.join(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{file} holds the token");
    }
    let stdout = text(&first.stdout);
    assert!(stdout.contains("az deployment group create"), "{stdout}");

    let second = export(&["--out", out_arg]);
    assert!(second.status.success());
    let b = read("main.parameters.json");
    assert_eq!(param(&a, "resourceSuffix"), param(&b, "resourceSuffix"));
    assert_eq!(param(&a, "chaosApiToken"), param(&b, "chaosApiToken"));

    let third = export(&["--out", out_arg, "--suffix", "zz99"]);
    assert!(third.status.success());
    let c = read("main.parameters.json");
    assert_eq!(param(&c, "resourceSuffix"), "zz99");
    assert_eq!(param(&c, "registryName"), "crchaoslabzz99");
    assert_eq!(param(&a, "chaosApiToken"), param(&c, "chaosApiToken"));

    // Another directory: a new token.
    let other = tmp.path().join("other");
    assert!(export(&["--out", other.to_str().unwrap()]).status.success());
    let d: Value =
        serde_json::from_str(&std::fs::read_to_string(other.join("main.parameters.json")).unwrap())
            .unwrap();
    assert_ne!(param(&a, "chaosApiToken"), param(&d, "chaosApiToken"));
}

#[test]
fn bad_input_exits_2_with_one_clear_line_and_writes_nothing() {
    let tmp = tempfile::Builder::new()
        .prefix("chaoslab-aca-")
        .tempdir()
        .unwrap();
    let out = out_dir(&tmp);
    let out_arg = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--name", "Chaos_Lab"],
            "--name \"Chaos_Lab\" is not a valid container app name",
        ),
        (&["--name=-lab"], "does not start with a lower-case letter"),
        (
            &["--name", "1lab"],
            "does not start with a lower-case letter",
        ),
        (&["--name", "lab-"], "does not end with"),
        (&["--name", "la--b"], "\"--\""),
        (&["--name", "abcdefghijklmnopqrstuvwxy"], "25 characters"),
        (&["--location", "Japan East"], "--location \"Japan East\""),
        (&["--image", "my image"], "--image"),
        (&["--suffix", "AB"], "--suffix"),
        (
            &["--min-replicas", "6"],
            "--min-replicas 6 is above --max-replicas 5",
        ),
        (&["--max-replicas", "0"], "--max-replicas 0"),
        (&["--cpu-utilization", "101"], "--cpu-utilization 101"),
        (
            &["--subscription", "not-a-guid"],
            "--subscription \"not-a-guid\" is not a GUID",
        ),
        (&["--resource-group", "rg/x"], "--resource-group"),
        (&["--probes", "slow"], "--probes"),
    ];
    for (args, expected) in cases {
        let mut argv = vec!["--out", out_arg];
        argv.extend_from_slice(args);
        let run = export(&argv);
        let stderr = text(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: one line: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
    // --out naming a file: refused, the file untouched.
    let file = tmp.path().join("a file");
    std::fs::write(&file, "keep").unwrap();
    let run = export(&["--out", file.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(2), "{}", text(&run.stderr));
    assert!(text(&run.stderr).contains("is not a directory"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
}
