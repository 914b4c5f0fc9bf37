//! The `--podman` variant of the export: the same service, Redis, probes,
//! resources and securityContext as the cluster manifests, reshaped for
//! what `podman kube play` (podman 4.3, Debian 12) understands, in one file
//! `podman.yaml`:
//!
//! - kinds: podman plays Pod, Deployment, PersistentVolumeClaim and
//!   ConfigMap only — Redis is a Deployment instead of a StatefulSet, and
//!   there is no Service, HPA, NetworkPolicy or Namespace to play;
//! - secrets: no Secret kind, and a ConfigMap *volume* becomes a named
//!   podman volume that `podman kube down` leaves behind (with the secrets
//!   in it). So the Redis password and ACL file are files in the export's
//!   `podman-secrets/` directory (mode 0700: only their owner reaches them
//!   on the host; the files 0644 so the containers' non-root users read
//!   them) mounted with `hostPath`, and only the chaos token, an
//!   environment variable, comes from a ConfigMap (in the owner-only
//!   `podman.yaml`);
//! - network: podman has no Services, so both pods use the host's network
//!   namespace and meet on loopback (the service binds 127.0.0.1, Redis
//!   127.0.0.1), on ports the caller picks (no `ports:` lists: podman
//!   4.3 refuses port mappings on the host network);
//! - images: local ones (`localhost/…`, built by `chaoslab image build`),
//!   never pulled;
//! - names: podman has no namespaces, so the namespace names the objects:
//!   Deployments `NS` (the service) and `NS-redis`, ConfigMap `NS-secrets`
//!   (pods `NS-pod-0`, `NS-redis-pod-0`), and two exports with different
//!   namespaces and ports run side by side.

use serde_json::{Value, json};

use super::manifests::{self, Probes, RedisTarget, ServiceSpec};

/// What the podman variant needs.
#[derive(Debug, Clone)]
pub struct PodmanSpec {
    /// Names every object (see the module doc).
    pub namespace: String,
    pub image: String,
    pub redis_image: String,
    pub probes: Probes,
    pub port: u16,
    pub redis_port: u16,
    pub token: String,
    /// Absolute directory holding `redis-password` and `users.acl`.
    pub secrets_dir: std::path::PathBuf,
}

/// The files of [`PodmanSpec::secrets_dir`]: name and content.
pub fn secret_files(password: &str) -> [(&'static str, String); 2] {
    [
        ("redis-password", password.to_string()),
        ("users.acl", manifests::redis_acl_file(password)),
    ]
}

fn host_file(name: &str, spec: &PodmanSpec, file: &str) -> Value {
    json!({
        "name": name,
        "hostPath": { "path": spec.secrets_dir.join(file).to_string_lossy(), "type": "File" },
    })
}

/// Puts the pod in the host's network namespace. Container ports go: on
/// the host network podman 4.3 turns them into port mappings and refuses
/// them ("PortMappings can only be used with Bridge or slirp4netns").
fn host_network(mut template: Value) -> Value {
    if let Some(spec) = template.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("hostNetwork".into(), json!(true));
        if let Some(containers) = spec.get_mut("containers").and_then(Value::as_array_mut) {
            for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                container.remove("ports");
            }
        }
    }
    template
}

/// The documents of `podman.yaml`, in play order (Redis first).
pub fn documents(spec: &PodmanSpec) -> Vec<Value> {
    let namespace = "default";
    let secrets = format!("{}-secrets", spec.namespace);
    let secrets = secrets.as_str();
    let configmap = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": secrets, "labels": manifests::labels("service") },
        "data": { "token": spec.token },
    });

    let mut redis = manifests::redis_statefulset(namespace, &spec.redis_image);
    redis["kind"] = json!("Deployment");
    if let Some(obj) = redis["spec"].as_object_mut() {
        obj.remove("serviceName");
    }
    if let Some(meta) = redis["metadata"].as_object_mut() {
        meta.remove("namespace");
        meta.insert("name".into(), json!(format!("{}-redis", spec.namespace)));
    }
    let mut container = manifests::redis_container(&spec.redis_image, "127.0.0.1", spec.redis_port);
    // No /tmp volume: podman names an emptyDir's volume after it ("tmp"),
    // shared by every play on the machine; Redis persists nothing anyway.
    container["volumeMounts"] = json!([{
        "name": "acl",
        "mountPath": format!("{}/users.acl", manifests::REDIS_ACL_DIR),
        "readOnly": true,
    }]);
    redis["spec"]["template"]["spec"]["containers"] = json!([container]);
    redis["spec"]["template"]["spec"]["volumes"] = json!([host_file("acl", spec, "users.acl")]);
    redis["spec"]["template"] = host_network(redis["spec"]["template"].take());

    let service_spec = ServiceSpec {
        namespace: namespace.into(),
        image: spec.image.clone(),
        probes: spec.probes,
        redis: RedisTarget::InCluster {
            host: "127.0.0.1".into(),
            port: spec.redis_port,
        },
        listen_host: "127.0.0.1".into(),
        port: spec.port,
    };
    let password_volume = host_file("redis-password", spec, "redis-password");
    let mut service = manifests::service_deployment(&service_spec);
    if let Some(meta) = service["metadata"].as_object_mut() {
        meta.remove("namespace");
        meta.insert("name".into(), json!(spec.namespace));
    }
    service["spec"]["template"] = host_network(manifests::service_pod_template(
        &service_spec,
        password_volume,
    ));
    service["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = json!([{
        "name": "redis-password",
        "mountPath": format!("{}/password", manifests::REDIS_PASSWORD_DIR),
        "readOnly": true,
    }]);
    if let Some(env) = service["spec"]["template"]["spec"]["containers"][0]["env"].as_array_mut() {
        for var in env.iter_mut() {
            if var["name"] == "CHAOS_API_TOKEN" {
                *var = json!({ "name": "CHAOS_API_TOKEN", "valueFrom": { "configMapKeyRef": { "name": secrets, "key": "token" } } });
            }
        }
    }
    vec![configmap, redis, service]
}
