//! The `--podman` variant of the export: the same service, Redis, probes,
//! resources and securityContext as the cluster manifests, reshaped for
//! what `podman kube play` (podman 4.3, Debian 12) understands, in one file
//! `podman.yaml`:
//!
//! - kinds: podman plays Pod, Deployment, PersistentVolumeClaim and
//!   ConfigMap only — Redis is a Deployment instead of a StatefulSet, the
//!   secrets a ConfigMap (in an owner-only file), and there is no Service,
//!   HPA, NetworkPolicy or Namespace to play;
//! - network: podman has no Services, so both pods use the host's network
//!   namespace and meet on loopback (the service binds 127.0.0.1, Redis
//!   127.0.0.1), on ports the caller picks;
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
    pub password: String,
    pub token: String,
}

fn host_network(mut template: Value) -> Value {
    if let Some(spec) = template.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("hostNetwork".into(), json!(true));
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
        "data": {
            "password": spec.password,
            "users.acl": manifests::redis_acl_file(&spec.password),
            "token": spec.token,
        },
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
    redis["spec"]["template"]["spec"]["containers"] = json!([manifests::redis_container(
        &spec.redis_image,
        "127.0.0.1",
        spec.redis_port
    )]);
    redis["spec"]["template"]["spec"]["volumes"][0] = json!({
        "name": "acl",
        "configMap": { "name": secrets, "defaultMode": 0o440, "items": [{ "key": "users.acl", "path": "users.acl" }] },
    });
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
    let password_volume = json!({
        "name": "redis-password",
        "configMap": { "name": secrets, "defaultMode": 0o440, "items": [{ "key": "password", "path": "password" }] },
    });
    let mut service = manifests::service_deployment(&service_spec);
    if let Some(meta) = service["metadata"].as_object_mut() {
        meta.remove("namespace");
        meta.insert("name".into(), json!(spec.namespace));
    }
    service["spec"]["template"] = host_network(manifests::service_pod_template(
        &service_spec,
        password_volume,
    ));
    if let Some(env) = service["spec"]["template"]["spec"]["containers"][0]["env"].as_array_mut() {
        for var in env.iter_mut() {
            if var["name"] == "CHAOS_API_TOKEN" {
                *var = json!({ "name": "CHAOS_API_TOKEN", "valueFrom": { "configMapKeyRef": { "name": secrets, "key": "token" } } });
            }
        }
    }
    vec![configmap, redis, service]
}
