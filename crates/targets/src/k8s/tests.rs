//! Unit tests of the k8s export: argument checks, the seed's figures in the
//! manifests, secrets kept owner-only, and the YAML reading back as written.

use super::*;

fn args() -> Args {
    Args {
        out: PathBuf::from("unused"),
        image: DEFAULT_IMAGE.into(),
        redis_image: DEFAULT_REDIS_IMAGE.into(),
        namespace: "chaoslab".into(),
        probes: "aca".into(),
        redis_url: None,
        podman: false,
        port: 8000,
        redis_port: 6379,
        load_pods: 3,
        load_users: 10,
        load_run_time: "2m".into(),
    }
}

fn find<'a>(files: &'a [ManifestFile], kind: &str, name: &str) -> &'a Value {
    files
        .iter()
        .flat_map(|f| f.documents.iter())
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn dns_labels() {
    for ok in ["a", "chaoslab", "team-1", "0abc", &"a".repeat(63)] {
        assert!(is_dns_label(ok), "{ok}");
    }
    for bad in ["", "-a", "a-", "A", "a_b", "a.b", "é", &"a".repeat(64)] {
        assert!(!is_dns_label(bad), "{bad}");
    }
}

#[test]
fn bad_input_is_refused_before_writing() {
    let mut a = args();
    a.namespace = "Bad_NS".into();
    let err = a.check().unwrap_err().to_string();
    assert!(
        err.contains("--namespace `Bad_NS` is not a valid DNS label"),
        "{err}"
    );
    let mut a = args();
    a.probes = "slow".into();
    let err = a.check().unwrap_err().to_string();
    assert!(err.contains("unknown probe preset `slow`"), "{err}");
    let mut a = args();
    a.redis_url = Some("http://user:secret@x".into());
    let err = a.check().unwrap_err().to_string();
    assert!(!err.contains("secret"), "password leaked: {err}");
    let mut a = args();
    a.load_run_time = "soon".into();
    assert!(a.check().is_err());
}

#[test]
fn aca_preset_is_the_seeds_probes() {
    let export = args().check().unwrap();
    let files = files(&export, &Secrets::generate(), Path::new("/x"));
    let c = &find(&files, "Deployment", "chaoslab")["spec"]["template"]["spec"]["containers"][0];
    let live = &c["livenessProbe"];
    assert_eq!(live["tcpSocket"]["port"], 8000);
    assert_eq!(
        [
            &live["initialDelaySeconds"],
            &live["periodSeconds"],
            &live["timeoutSeconds"],
            &live["failureThreshold"]
        ],
        [60, 10, 10, 5]
    );
    let ready = &c["readinessProbe"];
    assert_eq!(ready["httpGet"]["path"], "/health");
    assert_eq!(
        [
            &ready["initialDelaySeconds"],
            &ready["periodSeconds"],
            &ready["timeoutSeconds"],
            &ready["failureThreshold"],
            &ready["successThreshold"]
        ],
        [10, 5, 3, 2, 2]
    );
    assert_eq!(c["resources"]["requests"], c["resources"]["limits"]);
    assert_eq!(c["resources"]["limits"]["cpu"], "250m");
    assert_eq!(c["resources"]["limits"]["memory"], "512Mi");
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["capabilities"]["drop"][0], "ALL");
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
}

#[test]
fn quick_preset_rounds_up_to_whole_seconds() {
    let mut a = args();
    a.probes = "quick".into();
    let p = a.check().unwrap().probes;
    assert_eq!(
        (
            p.liveness.initial_delay,
            p.liveness.period,
            p.liveness.timeout
        ),
        (6, 1, 1)
    );
    assert_eq!(
        (
            p.readiness.initial_delay,
            p.readiness.period,
            p.readiness.timeout
        ),
        (1, 1, 1)
    );
}

#[test]
fn hpa_and_token_and_redis_acl() {
    let export = args().check().unwrap();
    let files = files(&export, &Secrets::generate(), Path::new("/x"));
    let hpa = find(&files, "HorizontalPodAutoscaler", "chaoslab");
    assert_eq!(hpa["apiVersion"], "autoscaling/v2");
    assert_eq!(
        (
            hpa["spec"]["minReplicas"].as_u64(),
            hpa["spec"]["maxReplicas"].as_u64()
        ),
        (Some(1), Some(5))
    );
    assert_eq!(
        hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        70
    );
    let token = find(&files, "Secret", manifests::API_TOKEN_SECRET)["stringData"]["token"]
        .as_str()
        .unwrap();
    assert_eq!(token.len(), 40);
    let acl = find(&files, "Secret", manifests::REDIS_NAME)["stringData"]["users.acl"]
        .as_str()
        .unwrap();
    assert!(
        acl.starts_with("user default off\nuser chaoslab on >"),
        "{acl}"
    );
    assert!(
        acl.contains("~chaos_lab:* resetchannels -@all +get +set +incr +incrby +ping"),
        "{acl}"
    );
    // The token and password are fresh on each export.
    let again = files_token(&args().check().unwrap());
    assert_ne!(again, token);
}

fn files_token(export: &Export) -> String {
    let files = files(export, &Secrets::generate(), Path::new("/x"));
    find(&files, "Secret", manifests::API_TOKEN_SECRET)["stringData"]["token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn external_redis_has_no_statefulset() {
    let mut a = args();
    a.redis_url = Some("rediss://cache.example:6380".into());
    let files = files(&a.check().unwrap(), &Secrets::generate(), Path::new("/x"));
    assert!(files.iter().all(|f| f.path != "redis.yaml"));
    let env =
        &find(&files, "Deployment", "chaoslab")["spec"]["template"]["spec"]["containers"][0]["env"];
    let url = env
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "REDIS_URL")
        .unwrap();
    assert_eq!(
        url["valueFrom"]["secretKeyRef"]["name"],
        manifests::REDIS_URL_SECRET
    );
}

#[test]
fn written_files_read_back_and_secrets_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut a = args();
    a.out = dir.path().join("out dir é");
    a.podman = true;
    let written = write_export(&a.check().unwrap()).unwrap();
    assert!(written.iter().any(|p| p.ends_with("kustomization.yaml")));
    for path in &written {
        if path.parent().unwrap().ends_with(PODMAN_SECRETS_DIR) {
            let dir = std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dir & 0o777, 0o700, "{}", path.display());
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = <Value as serde::Deserialize>::deserialize(doc).unwrap();
            assert!(value.is_object(), "{}", path.display());
        }
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let name = path.file_name().unwrap().to_string_lossy();
        if name.starts_with("secret") || name == "podman.yaml" {
            assert_eq!(mode, 0o600, "{name}");
        }
    }
    let kust = std::fs::read_to_string(dir.path().join("out dir é/kustomization.yaml")).unwrap();
    assert!(
        kust.contains("service.yaml")
            && !kust.contains("podman.yaml")
            && !kust.contains("job.yaml"),
        "{kust}"
    );
}

#[test]
fn yaml11_booleans_stay_strings() {
    let docs = vec![serde_json::json!({
        "args": ["--protected-mode", "no", "On", "nothing", "y"],
        "name": "off",
        "acl": "user a on\n- no\n",
        "after": "yes",
    })];
    let text = to_yaml(&docs).unwrap();
    assert!(
        text.contains("- 'no'") && text.contains("- 'On'") && text.contains("- 'y'"),
        "{text}"
    );
    assert!(
        text.contains("name: 'off'") && text.contains("after: 'yes'"),
        "{text}"
    );
    assert!(text.contains("- nothing"), "{text}");
    let back: Value = serde_yaml_ng::from_str(text.trim_start_matches("---\n")).unwrap();
    assert_eq!(back, docs[0]);
}
