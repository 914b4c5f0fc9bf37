//! The Kubernetes objects of `chaoslab export k8s`, one small public
//! function each, so `fault --target k8s` and the podman variant build on
//! the same names, labels and shapes instead of copying YAML.
//!
//! Every builder returns a `serde_json::Value` (an object in the API's own
//! field names); [`crate::k8s`] turns them into YAML files. Labels follow
//! Kubernetes' recommended `app.kubernetes.io/*` set; `chaoslab.io/managed-by`
//! marks what chaoslab wrote, so `fault list|clear` can find its own objects.

use serde_json::{Value, json};

/// The service's name: Deployment, Service, HPA and the container.
pub const SERVICE_NAME: &str = "chaoslab";
/// Redis's name: StatefulSet, Service and Secret.
pub const REDIS_NAME: &str = "chaoslab-redis";
/// The Secret holding the service's CHAOS_API_TOKEN (key `token`).
pub const API_TOKEN_SECRET: &str = "chaoslab-api-token";
/// The Secret holding an external Redis URL (key `url`).
pub const REDIS_URL_SECRET: &str = "chaoslab-redis-url";
/// The load Job's name.
pub const LOAD_JOB_NAME: &str = "chaoslab-load";
/// Port the service listens on in its container (`APP_PORT`).
pub const SERVICE_PORT: u16 = 8000;
/// Redis's port.
pub const REDIS_PORT: u16 = 6379;
/// The image's non-root user and group (see the Containerfile).
pub const SERVICE_UID: i64 = 10001;
/// The Redis image's user and group (Debian's and the official image's `redis`).
pub const REDIS_UID: i64 = 999;
/// Where the Redis password file is mounted in the service's container.
pub const REDIS_PASSWORD_DIR: &str = "/var/run/secrets/chaoslab/redis";
/// Where Redis finds its ACL file.
pub const REDIS_ACL_DIR: &str = "/etc/chaoslab-redis";

/// Label naming the application.
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
/// Label naming the part (`service`, `redis`, `load`).
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
/// Label naming the whole.
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
/// Label set on everything chaoslab writes or applies.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Labels of one component, also its pods' selector.
pub fn labels(component: &str) -> Value {
    json!({
        LABEL_NAME: SERVICE_NAME,
        LABEL_COMPONENT: component,
        LABEL_PART_OF: "chaoslab",
        LABEL_MANAGED_BY: "chaoslab",
    })
}

/// The pod selector of one component (a subset of [`labels`] that never changes).
pub fn selector(component: &str) -> Value {
    json!({ LABEL_NAME: SERVICE_NAME, LABEL_COMPONENT: component })
}

fn metadata(name: &str, namespace: &str, component: &str) -> Value {
    json!({ "name": name, "namespace": namespace, "labels": labels(component) })
}

/// Probe timings in whole seconds, as Kubernetes takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTimings {
    pub initial_delay: u32,
    pub period: u32,
    pub timeout: u32,
    pub failure_threshold: u32,
    pub success_threshold: u32,
}

/// The service's probes: liveness a TCP connect, readiness `GET /health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probes {
    pub liveness: ProbeTimings,
    pub readiness: ProbeTimings,
}

impl Probes {
    /// The lab's preset (`aca`: the seed's Container Apps probes; `quick`:
    /// the same at a tenth), rounded up to whole seconds (period and timeout
    /// at least 1, as the API requires).
    pub fn from_preset(preset: chaoslab_lab::Preset) -> Self {
        let (live, ready) = chaoslab_lab::preset_specs(preset);
        let timings = |spec: &chaoslab_lab::ProbeSpec| {
            let secs = |d: std::time::Duration, min: u32| (d.as_secs_f64().ceil() as u32).max(min);
            ProbeTimings {
                initial_delay: secs(spec.initial_delay, 0),
                period: secs(spec.period, 1),
                timeout: secs(spec.timeout, 1),
                failure_threshold: spec.failure_threshold.max(1),
                success_threshold: spec.success_threshold.max(1),
            }
        };
        Self {
            liveness: timings(&live),
            readiness: timings(&ready),
        }
    }
}

fn probe(action: Value, t: ProbeTimings, liveness: bool) -> Value {
    let mut probe = action;
    let fields = json!({
        "initialDelaySeconds": t.initial_delay,
        "periodSeconds": t.period,
        "timeoutSeconds": t.timeout,
        "failureThreshold": t.failure_threshold,
        // Kubernetes requires 1 for liveness probes.
        "successThreshold": if liveness { 1 } else { t.success_threshold },
    });
    if let (Some(p), Some(f)) = (probe.as_object_mut(), fields.as_object()) {
        p.extend(f.clone());
    }
    probe
}

/// The hardened container securityContext (restricted Pod Security Standard).
pub fn container_security_context() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "runAsNonRoot": true,
        "capabilities": { "drop": ["ALL"] },
        "seccompProfile": { "type": "RuntimeDefault" },
    })
}

/// The pod-level securityContext for a non-root user `uid`.
pub fn pod_security_context(uid: i64) -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": { "type": "RuntimeDefault" },
    })
}

/// How the service reaches Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// The exported StatefulSet, as the ACL user with the password in the
    /// `chaoslab-redis` Secret (mounted as a file).
    InCluster { host: String, port: u16 },
    /// An external Redis: its URL sits in the `chaoslab-redis-url` Secret.
    External,
}

/// What the service's Deployment needs to know.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    pub namespace: String,
    pub image: String,
    pub probes: Probes,
    pub redis: RedisTarget,
    /// Address the service binds (`0.0.0.0` in a pod network).
    pub listen_host: String,
    pub port: u16,
}

/// The seed's environment for the service (SPEC §2/§3 names), Redis and the
/// chaos token wired to their Secrets.
pub fn service_env(spec: &ServiceSpec) -> Vec<Value> {
    let mut env = vec![
        json!({ "name": "APP_HOST", "value": spec.listen_host }),
        json!({ "name": "APP_PORT", "value": spec.port.to_string() }),
        json!({ "name": "REPLICA_ID", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } }),
        json!({ "name": "REVISION", "value": "k8s" }),
        json!({ "name": "REDIS_ENABLED", "value": "true" }),
    ];
    match &spec.redis {
        RedisTarget::InCluster { host, port } => {
            env.push(json!({ "name": "REDIS_HOST", "value": host }));
            env.push(json!({ "name": "REDIS_PORT", "value": port.to_string() }));
            env.push(json!({ "name": "REDIS_SSL", "value": "false" }));
            env.push(json!({ "name": "REDIS_USERNAME", "value": chaoslab_lab::SERVICE_USER }));
            env.push(json!({ "name": "REDIS_PASSWORD_FILE", "value": format!("{REDIS_PASSWORD_DIR}/password") }));
        }
        RedisTarget::External => {
            env.push(json!({ "name": "REDIS_URL", "valueFrom": { "secretKeyRef": { "name": REDIS_URL_SECRET, "key": "url" } } }));
        }
    }
    env.extend([
        json!({ "name": "REDIS_USE_ENTRA_ID", "value": "false" }),
        json!({ "name": "REDIS_MAX_CONNECTIONS", "value": "50" }),
        json!({ "name": "REDIS_SOCKET_TIMEOUT", "value": "3" }),
        json!({ "name": "REDIS_SOCKET_CONNECT_TIMEOUT", "value": "3" }),
        json!({ "name": "HEALTH_CACHE_TTL_SECONDS", "value": "5" }),
        json!({ "name": "CHAOS_ENABLED", "value": "true" }),
        json!({ "name": "CHAOS_API_TOKEN", "valueFrom": { "secretKeyRef": { "name": API_TOKEN_SECRET, "key": "token" } } }),
        json!({ "name": "LOAD_MAX_MEMORY_MB", "value": "4096" }),
        json!({ "name": "TELEMETRY_ENABLED", "value": "true" }),
        json!({ "name": "TELEMETRY_SAMPLING_RATE", "value": "1.0" }),
        json!({ "name": "LOG_LEVEL", "value": "INFO" }),
        json!({ "name": "LOG_FORMAT", "value": "json" }),
        json!({ "name": "SHUTDOWN_GRACE_SECONDS", "value": "25" }),
    ]);
    env
}

/// The service's container: image, env, the seed's resources (0.25 CPU and
/// 0.5 Gi, requests = limits), probes and the hardened securityContext.
pub fn service_container(spec: &ServiceSpec) -> Value {
    let mut mounts = Vec::new();
    if matches!(spec.redis, RedisTarget::InCluster { .. }) {
        mounts.push(
            json!({ "name": "redis-password", "mountPath": REDIS_PASSWORD_DIR, "readOnly": true }),
        );
    }
    json!({
        "name": SERVICE_NAME,
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["serve"],
        "command": ["/usr/local/bin/chaoslab"],
        "ports": [{ "name": "http", "containerPort": spec.port, "protocol": "TCP" }],
        "env": service_env(spec),
        "resources": {
            "requests": { "cpu": "250m", "memory": "512Mi" },
            "limits": { "cpu": "250m", "memory": "512Mi" },
        },
        "livenessProbe": probe(json!({ "tcpSocket": { "port": spec.port } }), spec.probes.liveness, true),
        "readinessProbe": probe(json!({ "httpGet": { "path": "/health", "port": spec.port } }), spec.probes.readiness, false),
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
    })
}

/// The service's pod template (labels, security, volumes).
pub fn service_pod_template(spec: &ServiceSpec, password_volume: Value) -> Value {
    let mut volumes = Vec::new();
    if matches!(spec.redis, RedisTarget::InCluster { .. }) {
        volumes.push(password_volume);
    }
    json!({
        "metadata": { "labels": labels("service") },
        "spec": {
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "terminationGracePeriodSeconds": 30,
            "securityContext": pod_security_context(SERVICE_UID),
            "containers": [service_container(spec)],
            "volumes": volumes,
        },
    })
}

/// The Secret volume carrying only the Redis password (never the ACL file).
pub fn redis_password_secret_volume() -> Value {
    json!({
        "name": "redis-password",
        "secret": {
            "secretName": REDIS_NAME,
            "defaultMode": 0o440,
            "items": [{ "key": "password", "path": "password" }],
        },
    })
}

/// The service's Deployment (one replica; the HPA scales it 1–5).
pub fn service_deployment(spec: &ServiceSpec) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(SERVICE_NAME, &spec.namespace, "service"),
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 5,
            "selector": { "matchLabels": selector("service") },
            "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 1, "maxUnavailable": 0 } },
            "template": service_pod_template(spec, redis_password_secret_volume()),
        },
    })
}

/// The service's ClusterIP Service: port 8000 (as the seed's APP_PORT) → the pods' `http` port.
pub fn service_service(namespace: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(SERVICE_NAME, namespace, "service"),
        "spec": {
            "type": "ClusterIP",
            "selector": selector("service"),
            "ports": [{ "name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP" }],
        },
    })
}

/// The seed's scale rule as an autoscaling/v2 HPA: CPU 70 %, 1–5 replicas.
pub fn service_hpa(namespace: &str) -> Value {
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(SERVICE_NAME, namespace, "service"),
        "spec": {
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": SERVICE_NAME },
            "minReplicas": 1,
            "maxReplicas": 5,
            "metrics": [{
                "type": "Resource",
                "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 70 } },
            }],
        },
    })
}

/// The Redis ACL file: the default user off, the service's user with the
/// lab's rules (its own keys, only the commands it runs).
pub fn redis_acl_file(password: &str) -> String {
    format!(
        "user default off\nuser {} on >{} {}\n",
        chaoslab_lab::SERVICE_USER,
        password,
        chaoslab_lab::SERVICE_ACL.join(" ")
    )
}

/// The Secret with the service's Redis password and Redis's ACL file.
pub fn redis_secret(namespace: &str, password: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(REDIS_NAME, namespace, "redis"),
        "type": "Opaque",
        "stringData": { "password": password, "users.acl": redis_acl_file(password) },
    })
}

/// The Secret with the CHAOS_API_TOKEN that guards the service's /chaos calls.
pub fn api_token_secret(namespace: &str, token: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(API_TOKEN_SECRET, namespace, "service"),
        "type": "Opaque",
        "stringData": { "token": token },
    })
}

/// The Secret with an external Redis's URL (it may hold a password).
pub fn redis_url_secret(namespace: &str, url: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(REDIS_URL_SECRET, namespace, "service"),
        "type": "Opaque",
        "stringData": { "url": url },
    })
}

/// redis-server's arguments: the ACL file, no persistence (the seed's cache
/// holds a counter), bound to `bind`.
pub fn redis_args(bind: &str, port: u16) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        bind,
        "--protected-mode",
        "no",
        "--aclfile",
        &format!("{REDIS_ACL_DIR}/users.acl"),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        "/tmp",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Redis's container (official image's `redis-server` on PATH, non-root).
pub fn redis_container(image: &str, bind: &str, port: u16) -> Value {
    json!({
        "name": "redis",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["redis-server"],
        "args": redis_args(bind, port),
        "ports": [{ "name": "redis", "containerPort": port, "protocol": "TCP" }],
        "resources": {
            "requests": { "cpu": "100m", "memory": "128Mi" },
            "limits": { "cpu": "500m", "memory": "256Mi" },
        },
        "livenessProbe": { "tcpSocket": { "port": port }, "initialDelaySeconds": 5, "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 3 },
        "readinessProbe": { "tcpSocket": { "port": port }, "initialDelaySeconds": 1, "periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 2 },
        "securityContext": container_security_context(),
        "volumeMounts": [
            { "name": "acl", "mountPath": REDIS_ACL_DIR, "readOnly": true },
            { "name": "tmp", "mountPath": "/tmp" },
        ],
    })
}

/// Redis as a one-replica StatefulSet (stable name, one pod).
pub fn redis_statefulset(namespace: &str, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(REDIS_NAME, namespace, "redis"),
        "spec": {
            "serviceName": REDIS_NAME,
            "replicas": 1,
            "selector": { "matchLabels": selector("redis") },
            "template": {
                "metadata": { "labels": labels("redis") },
                "spec": {
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    "securityContext": pod_security_context(REDIS_UID),
                    "containers": [redis_container(image, "0.0.0.0", REDIS_PORT)],
                    "volumes": [
                        { "name": "acl", "secret": { "secretName": REDIS_NAME, "defaultMode": 0o440, "items": [{ "key": "users.acl", "path": "users.acl" }] } },
                        { "name": "tmp", "emptyDir": { "sizeLimit": "64Mi" } },
                    ],
                },
            },
        },
    })
}

/// Redis's ClusterIP Service.
pub fn redis_service(namespace: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(REDIS_NAME, namespace, "redis"),
        "spec": {
            "type": "ClusterIP",
            "selector": selector("redis"),
            "ports": [{ "name": "redis", "port": REDIS_PORT, "targetPort": "redis", "protocol": "TCP" }],
        },
    })
}

/// The namespace, with the restricted Pod Security Standard enforced.
pub fn namespace(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                LABEL_PART_OF: "chaoslab",
                LABEL_MANAGED_BY: "chaoslab",
                "pod-security.kubernetes.io/enforce": "restricted",
            },
        },
    })
}

fn network_policy(name: &str, namespace: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(name, namespace, "network"),
        "spec": spec,
    })
}

/// Baseline: no pod in the namespace accepts traffic unless a policy says so.
pub fn network_policy_default_deny(namespace: &str) -> Value {
    network_policy(
        "chaoslab-default-deny-ingress",
        namespace,
        json!({ "podSelector": {}, "policyTypes": ["Ingress"] }),
    )
}

/// The service's HTTP port is open to any client (ingress controller, load Job).
pub fn network_policy_allow_http(namespace: &str) -> Value {
    network_policy(
        "chaoslab-allow-http",
        namespace,
        json!({
            "podSelector": { "matchLabels": selector("service") },
            "policyTypes": ["Ingress"],
            "ingress": [{ "ports": [{ "protocol": "TCP", "port": SERVICE_PORT }] }],
        }),
    )
}

/// Redis accepts the service's pods only. Egress is left open by the
/// baseline, so a fault can cut the service off Redis with an egress policy
/// on the service's pods.
pub fn network_policy_redis_from_service(namespace: &str) -> Value {
    network_policy(
        "chaoslab-allow-redis-from-service",
        namespace,
        json!({
            "podSelector": { "matchLabels": selector("redis") },
            "policyTypes": ["Ingress"],
            "ingress": [{
                "from": [{ "podSelector": { "matchLabels": selector("service") } }],
                "ports": [{ "protocol": "TCP", "port": REDIS_PORT }],
            }],
        }),
    )
}

/// What the load Job runs.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub namespace: String,
    pub image: String,
    /// Parallel pods, each a `chaoslab load` generator.
    pub pods: u32,
    /// Users per pod.
    pub users: u32,
    /// `--run-time` of each generator (e.g. `2m`).
    pub run_time: String,
}

/// The PVC where each load pod writes `load-<index>.json` for `chaoslab load merge`.
pub fn load_results_pvc(namespace: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata("chaoslab-load-results", namespace, "load"),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": { "requests": { "storage": "1Gi" } },
        },
    })
}

/// An Indexed Job: `pods` generators at once against the service, each
/// writing its JSON summary (with histograms) for an exact merge.
pub fn load_job(spec: &LoadSpec) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(LOAD_JOB_NAME, &spec.namespace, "load"),
        "spec": {
            "completionMode": "Indexed",
            "completions": spec.pods,
            "parallelism": spec.pods,
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": { "labels": labels("load") },
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    "securityContext": pod_security_context(SERVICE_UID),
                    "containers": [{
                        "name": "load",
                        "image": spec.image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["/usr/local/bin/chaoslab"],
                        "args": [
                            "load", "--host", format!("http://{SERVICE_NAME}:{SERVICE_PORT}"),
                            "--users", spec.users.to_string(), "--spawn-rate", spec.users.to_string(),
                            "--run-time", spec.run_time,
                            "--json", "/results/load-$(JOB_COMPLETION_INDEX).json",
                        ],
                        "resources": {
                            "requests": { "cpu": "250m", "memory": "128Mi" },
                            "limits": { "cpu": "500m", "memory": "256Mi" },
                        },
                        "securityContext": container_security_context(),
                        "volumeMounts": [{ "name": "results", "mountPath": "/results" }],
                    }],
                    "volumes": [{ "name": "results", "persistentVolumeClaim": { "claimName": "chaoslab-load-results" } }],
                },
            },
        },
    })
}
