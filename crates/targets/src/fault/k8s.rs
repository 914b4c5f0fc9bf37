//! Faults on Kubernetes through `kubectl` (SPEC §12): the network cut as a
//! NetworkPolicy or a Chaos Mesh NetworkChaos, kill as a pod deletion, a
//! failing deploy as a rollout that stalls while the old ReplicaSet
//! serves; `list` and `clear` find what chaoslab applied by its label
//! `chaoslab.io/fault`.
//!
//! Pods are found by the labels `chaoslab export k8s` gives them
//! ([`crate::k8s::manifests::labels`]): `app.kubernetes.io/name=<app>` with
//! `app.kubernetes.io/component=service` for the service (the Deployment is
//! named `<app>`) and `app.kubernetes.io/component=redis` for Redis, which
//! shares the name label: a selector on the name alone would take Redis's
//! pods for the service's.

use std::time::Duration;

use chaoslab_foundation::time::now_rfc3339_secs;
use serde_json::{Value, json};

use super::runner::{Shell, Step, Tool};
use super::yaml::to_yaml;
use super::{Engine, Fault, FaultError, TargetArgs, bad, check_dns_label, seconds};

/// The label on everything a fault applies (its value: which fault).
pub const FAULT_LABEL: &str = "chaoslab.io/fault";
/// Pods' name label, as the export sets it.
pub const NAME_LABEL: &str = crate::k8s::manifests::LABEL_NAME;
/// Pods' component label, as the export sets it.
pub const COMPONENT_LABEL: &str = crate::k8s::manifests::LABEL_COMPONENT;
/// The service pods' value of [`COMPONENT_LABEL`].
pub const SERVICE_COMPONENT: &str = "service";
/// The Redis pods' value of [`COMPONENT_LABEL`].
pub const REDIS_COMPONENT: &str = "redis";
/// The image a `wrong-image` rollout points at: the seed's missing image.
pub const MISSING_IMAGE: &str = "mcr.microsoft.com/chaos-lab/nonexistent:latest";
/// What kubectl says when the cluster has no such resource type (Chaos
/// Mesh not installed).
const NO_RESOURCE_TYPE: &str = "the server doesn't have a resource type";

#[derive(Debug, Clone)]
enum Action {
    Network {
        kind: NetworkKind,
        engine: Engine,
        duration: u64,
    },
    Kill {
        pod: Option<String>,
        all: bool,
        force: bool,
    },
    Deploy {
        variant: String,
    },
    List {
        json: bool,
    },
    Clear {
        id: Option<(String, String)>,
    },
}

#[derive(Debug, Clone)]
enum NetworkKind {
    Block,
    Latency { ms: u64, jitter: u64 },
    Bandwidth { kbps: u64 },
}

impl NetworkKind {
    fn word(&self) -> &'static str {
        match self {
            NetworkKind::Block => "block",
            NetworkKind::Latency { .. } => "latency",
            NetworkKind::Bandwidth { .. } => "bandwidth",
        }
    }
}

/// A checked fault for one cluster.
#[derive(Debug, Clone)]
pub struct Plan {
    context: Option<String>,
    namespace: String,
    app: String,
    action: Action,
}

impl Plan {
    /// Checks everything about `fault` on Kubernetes; nothing runs.
    pub fn new(args: &TargetArgs, fault: &Fault) -> Result<Plan, FaultError> {
        let app = checked_app(args)?;
        let engine = k8s_engine(args.engine)?;
        let action = action_for(fault, engine)?;
        Ok(Plan {
            context: args.context.clone(),
            namespace: args.namespace.clone(),
            app,
            action,
        })
    }

    /// A kubectl step with the context and namespace first.
    fn kubectl<I, S>(&self, args: I) -> Step
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut all: Vec<String> = Vec::new();
        if let Some(context) = &self.context {
            all.push("--context".into());
            all.push(context.clone());
        }
        all.push("--namespace".into());
        all.push(self.namespace.clone());
        all.extend(args.into_iter().map(Into::into));
        Step::new(Tool::Kubectl, all)
    }

    fn selector(&self) -> String {
        format!(
            "{NAME_LABEL}={},{COMPONENT_LABEL}={SERVICE_COMPONENT}",
            self.app
        )
    }

    /// Carries the plan out on `shell` (printing or running).
    pub fn carry_out(&self, shell: &mut dyn Shell) -> Result<(), FaultError> {
        match &self.action {
            Action::Network {
                kind,
                engine,
                duration,
            } => self.network(shell, kind, *engine, *duration),
            Action::Kill { pod, all, force } => self.kill(shell, pod.as_deref(), *all, *force),
            Action::Deploy { variant } => self.deploy(shell, variant),
            Action::List { json } => self.list(shell, *json),
            Action::Clear { id } => self.clear(shell, id.as_ref()),
        }
    }

    fn network(
        &self,
        shell: &mut dyn Shell,
        kind: &NetworkKind,
        engine: Engine,
        duration: u64,
    ) -> Result<(), FaultError> {
        let name = format!("chaoslab-network-{}", kind.word());
        let manifest = match engine {
            Engine::ChaosMesh => network_chaos(&self.namespace, &self.app, &name, kind, duration),
            _ => deny_redis_policy(&self.namespace, &self.app, &name, duration),
        };
        let what = match engine {
            Engine::ChaosMesh => format!("networkchaos/{name}"),
            _ => format!("networkpolicy/{name}"),
        };
        shell.say(&format!(
            "network {} on k8s ({}): {what} in namespace {}",
            kind.word(),
            engine.name(),
            self.namespace
        ))?;
        shell.run(&self.kubectl(["apply", "-f", "-"]).stdin(to_yaml(&manifest)))?;
        if engine == Engine::Networkpolicy && duration > 0 {
            // A NetworkPolicy has no lifetime of its own: chaoslab holds it.
            shell.hold(Duration::from_secs(duration), &what)?;
            shell.run(&self.kubectl(["delete", what.as_str(), "--ignore-not-found"]))?;
        } else if !shell.dry() {
            shell.say(&match (engine, duration) {
                (Engine::ChaosMesh, d) if d > 0 => format!(
                    "{what} applied: Chaos Mesh ends it after {d} s; `chaoslab fault clear --target k8s --all` ends it now"
                ),
                _ => format!(
                    "{what} applied until cleared: `chaoslab fault clear --target k8s --all`"
                ),
            })?;
        }
        Ok(())
    }

    fn kill(
        &self,
        shell: &mut dyn Shell,
        pod: Option<&str>,
        all: bool,
        force: bool,
    ) -> Result<(), FaultError> {
        let grace: &[&str] = if force {
            &["--grace-period=0", "--force"]
        } else {
            &[]
        };
        let delete = |shell: &mut dyn Shell, target: Vec<String>| {
            let mut args = vec!["delete".to_string()];
            args.extend(target);
            args.push("--wait=false".into());
            args.extend(grace.iter().map(|s| s.to_string()));
            shell.run(&self.kubectl(args))
        };
        if let Some(pod) = pod {
            shell.say(&format!("kill on k8s: delete pod {pod}"))?;
            return delete(shell, vec![format!("pod/{pod}")]);
        }
        if all {
            shell.say(&format!(
                "kill --all on k8s: delete every pod of {}",
                self.app
            ))?;
            return delete(shell, vec!["pods".into(), "-l".into(), self.selector()]);
        }
        shell.say(&format!(
            "kill on k8s: delete one running pod of {} (picked at random from PODS)",
            self.app
        ))?;
        let pods = shell.read(
            "PODS",
            &self.kubectl([
                "get",
                "pods",
                "-l",
                &self.selector(),
                "--field-selector=status.phase=Running",
                "-o",
                "name",
            ]),
        )?;
        let pod = if shell.dry() {
            shell.say("POD: one line of PODS, picked at random")?;
            super::runner::var("POD")
        } else {
            let names: Vec<&str> = pods
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            if names.is_empty() {
                return Err(FaultError::Failed(format!(
                    "no running pod labelled {} in namespace {}",
                    self.selector(),
                    self.namespace
                )));
            }
            names[pick(names.len())].to_string()
        };
        delete(shell, vec![pod])
    }

    fn deploy(&self, shell: &mut dyn Shell, variant: &str) -> Result<(), FaultError> {
        let deployment = format!("deployment/{}", self.app);
        shell.say(&format!(
            "deploy {variant} on k8s: a rollout of {deployment} that cannot become ready; the old ReplicaSet keeps serving"
        ))?;
        let state = shell.read(
            "STATE",
            &self.kubectl([
                "get",
                deployment.as_str(),
                "-o",
                r"jsonpath={.metadata.annotations.deployment\.kubernetes\.io/revision} {.metadata.labels.chaoslab\.io/fault}",
            ]),
        )?;
        let revision = if shell.dry() {
            shell.say("REVISION: the first word of STATE (the revision to go back to)")?;
            super::runner::var("REVISION")
        } else {
            let mut words = state.split_whitespace();
            let revision = words.next().unwrap_or("").to_string();
            if let Some(active) = words.next() {
                return Err(FaultError::Failed(format!(
                    "{deployment} already has a deploy fault ({active}): clear it first with `chaoslab fault clear --target k8s --all`"
                )));
            }
            revision
        };
        let label = format!("deploy-{variant}");
        let mark = json!({"metadata": {
            "labels": {FAULT_LABEL: label},
            "annotations": {"chaoslab.io/restore-revision": revision, "chaoslab.io/started": now_rfc3339_secs()},
        }});
        shell.run(&self.kubectl([
            "patch",
            deployment.as_str(),
            "--type=merge",
            "-p",
            &mark.to_string(),
        ]))?;
        match variant {
            "wrong-image" => shell.run(&self.kubectl([
                "set",
                "image",
                deployment.as_str(),
                &format!("*={MISSING_IMAGE}"),
            ]))?,
            _ => shell.run(&self.kubectl([
                "set",
                "env",
                deployment.as_str(),
                "REDIS_PORT=invalid",
            ]))?,
        }
        if !shell.dry() {
            shell.say(&format!(
                "watch it stall: kubectl --namespace {} rollout status {deployment}; undo: chaoslab fault clear --target k8s --all",
                self.namespace
            ))?;
        }
        Ok(())
    }

    fn list(&self, shell: &mut dyn Shell, json_out: bool) -> Result<(), FaultError> {
        let main = shell.read(
            "APPLIED",
            &self.kubectl([
                "get",
                "networkpolicies,deployments",
                "-l",
                FAULT_LABEL,
                "-o",
                "json",
            ]),
        )?;
        let chaos = shell.read_tolerating(
            "CHAOS",
            &self.kubectl(["get", "networkchaos", "-l", FAULT_LABEL, "-o", "json"]),
            NO_RESOURCE_TYPE,
        )?;
        if shell.dry() {
            return Ok(());
        }
        let mut rows = Vec::new();
        for text in [main, chaos] {
            if text.trim().is_empty() {
                continue;
            }
            let list: Value = serde_json::from_str(&text).map_err(|e| {
                FaultError::Failed(format!("kubectl printed JSON chaoslab cannot read: {e}"))
            })?;
            for item in list["items"].as_array().into_iter().flatten() {
                let meta = &item["metadata"];
                rows.push(json!({
                    "id": format!("{}/{}", item["kind"].as_str().unwrap_or("?").to_ascii_lowercase(),
                        meta["name"].as_str().unwrap_or("?")),
                    "fault": meta["labels"][FAULT_LABEL],
                    "started": meta["annotations"]["chaoslab.io/started"],
                    "duration_seconds": meta["annotations"]["chaoslab.io/duration-seconds"]
                        .as_str().and_then(|s| s.parse::<u64>().ok()),
                    "namespace": meta["namespace"],
                }));
            }
        }
        let text = if json_out {
            serde_json::to_string_pretty(&rows).unwrap_or_default() + "\n"
        } else {
            table(&rows)
        };
        shell.say(text.trim_end())
    }

    fn clear(
        &self,
        shell: &mut dyn Shell,
        id: Option<&(String, String)>,
    ) -> Result<(), FaultError> {
        let (policies, chaos, deployments) = match id {
            None => (true, true, true),
            Some((kind, _)) => (
                kind == "networkpolicy",
                kind == "networkchaos",
                kind == "deployment",
            ),
        };
        let by = |name: Option<&str>| -> Vec<String> {
            match name {
                Some(name) => vec![name.to_string()],
                None => vec!["-l".into(), FAULT_LABEL.into()],
            }
        };
        let name = id.map(|(_, n)| n.as_str());
        shell.say(&format!(
            "clear on k8s: what carries the label {FAULT_LABEL} in namespace {}",
            self.namespace
        ))?;
        if policies {
            let mut args = vec!["delete".to_string(), "networkpolicies".into()];
            args.extend(by(name));
            args.push("--ignore-not-found".into());
            shell.run(&self.kubectl(args))?;
        }
        if chaos {
            let mut args = vec!["delete".to_string(), "networkchaos".into()];
            args.extend(by(name));
            args.push("--ignore-not-found".into());
            shell.read_tolerating("DELETED", &self.kubectl(args), NO_RESOURCE_TYPE)?;
        }
        if deployments {
            let mut args = vec!["get".to_string(), "deployments".into()];
            args.extend(by(name));
            args.extend([
                "-o".into(),
                r#"jsonpath={range .items[*]}{.metadata.name} {.metadata.annotations.chaoslab\.io/restore-revision}{"\n"}{end}"#.into(),
            ]);
            let marked = shell.read("MARKED", &self.kubectl(args))?;
            let pairs: Vec<(String, String)> = if shell.dry() {
                shell.say("for each line NAME REVISION of MARKED:")?;
                vec![(super::runner::var("NAME"), super::runner::var("REVISION"))]
            } else {
                marked
                    .lines()
                    .filter_map(|l| {
                        let mut w = l.split_whitespace();
                        Some((w.next()?.to_string(), w.next().unwrap_or("").to_string()))
                    })
                    .collect()
            };
            for (name, revision) in pairs {
                let deployment = format!("deployment/{name}");
                let mut undo = vec!["rollout".to_string(), "undo".into(), deployment.clone()];
                if !revision.is_empty() {
                    undo.push(format!("--to-revision={revision}"));
                }
                shell.run(&self.kubectl(undo))?;
                let unmark = json!({"metadata": {
                    "labels": {FAULT_LABEL: null},
                    "annotations": {"chaoslab.io/restore-revision": null, "chaoslab.io/started": null},
                }});
                shell.run(&self.kubectl([
                    "patch".to_string(),
                    deployment,
                    "--type=merge".into(),
                    "-p".into(),
                    unmark.to_string(),
                ]))?;
            }
        }
        Ok(())
    }
}

/// Checks the namespace, the app (Deployment) name and the context;
/// returns the app name (default `chaoslab`).
fn checked_app(args: &TargetArgs) -> Result<String, FaultError> {
    check_dns_label("namespace", &args.namespace)?;
    let app = args.app.clone().unwrap_or_else(|| "chaoslab".into());
    check_dns_label("app (Deployment) name", &app)?;
    if let Some(context) = &args.context
        && (context.is_empty() || context.starts_with('-'))
    {
        return Err(bad(format!("--context `{context}` is not a context name")));
    }
    Ok(app)
}

/// The engine on k8s: NetworkPolicy by default or Chaos Mesh; an aca
/// engine is bad input.
fn k8s_engine(engine: Option<Engine>) -> Result<Engine, FaultError> {
    match engine {
        None | Some(Engine::Networkpolicy) => Ok(Engine::Networkpolicy),
        Some(Engine::ChaosMesh) => Ok(Engine::ChaosMesh),
        Some(other) => Err(bad(format!(
            "--engine {} is for --target aca; on k8s use networkpolicy (default) or chaos-mesh",
            other.name()
        ))),
    }
}

/// What `fault` does on k8s with `engine`, its numbers and names checked.
fn action_for(fault: &Fault, engine: Engine) -> Result<Action, FaultError> {
    match fault {
        Fault::NetworkBlock { mode, duration, .. } => block_action(mode, *duration, engine),
        Fault::NetworkLatency {
            ms,
            jitter,
            duration,
        } => latency_action(*ms, *jitter, *duration, engine),
        Fault::NetworkBandwidth { kbps, duration } => bandwidth_action(*kbps, *duration, engine),
        Fault::Kill {
            replica,
            all,
            signal,
        } => kill_action(replica.as_ref(), *all, signal),
        Fault::Deploy { variant } => deploy_action(variant),
        Fault::LocalOnly(kind) => Err(bad(format!(
            "`fault {kind}` is a local-lab fault; on k8s: network, kill, deploy, list, clear"
        ))),
        Fault::List { json } => Ok(Action::List { json: *json }),
        Fault::Clear { id, .. } => Ok(Action::Clear {
            id: id.as_deref().map(parse_id).transpose()?,
        }),
    }
}

/// The network cut: a NetworkPolicy denies new connections; Chaos Mesh
/// can also drop every packet (blackhole). Nothing on k8s resets.
fn block_action(mode: &str, duration: i64, engine: Engine) -> Result<Action, FaultError> {
    let duration = seconds("--duration", duration)?;
    match (engine, mode) {
        (Engine::Networkpolicy, "deny-new") => {}
        (Engine::ChaosMesh, "deny-new" | "blackhole") => {}
        (Engine::Networkpolicy, "blackhole" | "reset") | (_, "reset") => {
            return Err(bad(format!(
                "--mode {mode} is not available on k8s with --engine {}: a NetworkPolicy denies new connections (deny-new); Chaos Mesh's partition drops every packet (deny-new or blackhole)",
                engine.name()
            )));
        }
        _ => {
            return Err(bad(format!(
                "unknown mode `{mode}`: use deny-new, blackhole or reset"
            )));
        }
    }
    Ok(Action::Network {
        kind: NetworkKind::Block,
        engine,
        duration,
    })
}

/// Added latency, which only Chaos Mesh carries out.
fn latency_action(
    ms: i64,
    jitter: i64,
    duration: i64,
    engine: Engine,
) -> Result<Action, FaultError> {
    Ok(Action::Network {
        kind: NetworkKind::Latency {
            ms: seconds("--ms", ms)?,
            jitter: seconds("--jitter", jitter)?,
        },
        engine: need_chaos_mesh(engine, "latency")?,
        duration: seconds("--duration", duration)?,
    })
}

/// A bandwidth limit of at least 1 kbps, which only Chaos Mesh carries out.
fn bandwidth_action(kbps: i64, duration: i64, engine: Engine) -> Result<Action, FaultError> {
    let kbps = seconds("--kbps", kbps)?;
    if kbps == 0 {
        return Err(bad("--kbps must be 1 or more on k8s"));
    }
    Ok(Action::Network {
        kind: NetworkKind::Bandwidth { kbps },
        engine: need_chaos_mesh(engine, "bandwidth")?,
        duration: seconds("--duration", duration)?,
    })
}

/// A pod deletion: forced for KILL, graceful for TERM; a named pod must be
/// a valid Kubernetes name.
fn kill_action(replica: Option<&String>, all: bool, signal: &str) -> Result<Action, FaultError> {
    let force = match signal.to_ascii_uppercase().trim_start_matches("SIG") {
        "KILL" => true,
        "TERM" => false,
        _ => {
            return Err(bad(format!(
                "unknown signal `{signal}`: use KILL (a forced pod deletion) or TERM (a graceful one)"
            )));
        }
    };
    if let Some(pod) = replica {
        check_dns_subdomain("pod name (--replica)", pod)?;
    }
    Ok(Action::Kill {
        pod: replica.cloned(),
        all,
        force,
    })
}

/// A failing rollout: wrong-image or bad-env (bad-port is local-only).
fn deploy_action(variant: &str) -> Result<Action, FaultError> {
    match variant {
        "wrong-image" | "bad-env" => Ok(Action::Deploy {
            variant: variant.to_string(),
        }),
        "bad-port" => Err(bad(
            "deploy bad-port is a local-lab fault; on k8s use wrong-image or bad-env",
        )),
        other => Err(bad(format!(
            "unknown deploy variant `{other}`: use wrong-image or bad-env"
        ))),
    }
}

fn need_chaos_mesh(engine: Engine, what: &str) -> Result<Engine, FaultError> {
    if engine == Engine::ChaosMesh {
        Ok(engine)
    } else {
        Err(bad(format!(
            "network {what} on k8s needs --engine chaos-mesh (a NetworkPolicy can only allow or deny)"
        )))
    }
}

/// A `kind/name` from `fault list`.
fn parse_id(id: &str) -> Result<(String, String), FaultError> {
    let (kind, name) = id.split_once('/').unwrap_or(("", id));
    let kind = kind.to_ascii_lowercase();
    if !matches!(
        kind.as_str(),
        "networkpolicy" | "networkchaos" | "deployment"
    ) {
        return Err(bad(format!(
            "`{id}` is not a k8s fault id: use kind/name as `chaoslab fault list --target k8s` prints it (networkpolicy/…, networkchaos/…, deployment/…), or --all"
        )));
    }
    check_dns_subdomain("name", name)?;
    Ok((kind, name.to_string()))
}

/// A DNS subdomain (RFC 1123): what Kubernetes requires of most names.
fn check_dns_subdomain(what: &str, name: &str) -> Result<(), FaultError> {
    let ok = !name.is_empty() && name.len() <= 253 && name.split('.').all(super::is_dns_label);
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "{what} `{name}` is not a valid Kubernetes name"
        )))
    }
}

fn metadata(namespace: &str, name: &str, fault: &str, duration: u64, about: &str) -> Value {
    json!({
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": "chaoslab", FAULT_LABEL: fault},
        "annotations": {
            "chaoslab.io/started": now_rfc3339_secs(),
            "chaoslab.io/duration-seconds": duration.to_string(),
            "chaoslab.io/about": about,
        },
    })
}

/// The network cut as a NetworkPolicy: the service's pods may send to any
/// pod but Redis's and to DNS, nothing else. NetworkPolicies only add
/// allowances, so this cuts Redis off as long as no other policy allows
/// the service's egress to Redis (the export's baseline allows Redis's
/// ingress from the service, which does not reopen the path: both ends
/// must allow).
pub fn deny_redis_policy(namespace: &str, app: &str, name: &str, duration: u64) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(namespace, name, "network-block", duration,
            "chaoslab fault network block: the service's pods may reach every pod but Redis's (the seed's NSG rule DenyRedisTraffic)"),
        "spec": {
            "podSelector": {"matchLabels": {NAME_LABEL: app, COMPONENT_LABEL: SERVICE_COMPONENT}},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [
                    {"podSelector": {"matchExpressions": [
                        {"key": COMPONENT_LABEL, "operator": "NotIn", "values": [REDIS_COMPONENT]}
                    ]}},
                    {"namespaceSelector": {"matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [namespace]}
                    ]}},
                ]},
                {"ports": [
                    {"protocol": "UDP", "port": 53},
                    {"protocol": "TCP", "port": 53},
                ]},
            ],
        },
    })
}

/// The network fault as a Chaos Mesh NetworkChaos from the service's pods
/// to Redis's.
fn network_chaos(
    namespace: &str,
    app: &str,
    name: &str,
    kind: &NetworkKind,
    duration: u64,
) -> Value {
    let mut spec = json!({
        "mode": "all",
        "selector": {"namespaces": [namespace], "labelSelectors": {NAME_LABEL: app, COMPONENT_LABEL: SERVICE_COMPONENT}},
        "direction": "to",
        "target": {
            "mode": "all",
            "selector": {"namespaces": [namespace], "labelSelectors": {NAME_LABEL: app, COMPONENT_LABEL: REDIS_COMPONENT}},
        },
    });
    match kind {
        NetworkKind::Block => spec["action"] = json!("partition"),
        NetworkKind::Latency { ms, jitter } => {
            spec["action"] = json!("delay");
            spec["delay"] = json!({"latency": format!("{ms}ms"), "jitter": format!("{jitter}ms")});
        }
        NetworkKind::Bandwidth { kbps } => {
            // Chaos Mesh's rate unit kbps is kilobytes per second, as --kbps.
            spec["action"] = json!("bandwidth");
            spec["bandwidth"] =
                json!({"rate": format!("{kbps}kbps"), "limit": 20971520, "buffer": 10000});
        }
    }
    if duration > 0 {
        spec["duration"] = json!(format!("{duration}s"));
    }
    json!({
        "apiVersion": "chaos-mesh.org/v1alpha1",
        "kind": "NetworkChaos",
        "metadata": metadata(namespace, name, &format!("network-{}", kind.word()), duration,
            "chaoslab fault network: Chaos Mesh between the service's pods and Redis's"),
        "spec": spec,
    })
}

/// An index below `n` (n > 0), random enough to pick a pod.
fn pick(n: usize) -> usize {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(std::time::SystemTime::now()) % n as u64) as usize
}

fn table(rows: &[Value]) -> String {
    if rows.is_empty() {
        return "no active faults\n".into();
    }
    let cell = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => format!("{n}s"),
        _ => "-".into(),
    };
    let lines: Vec<[String; 4]> =
        std::iter::once(["ID", "FAULT", "STARTED", "DURATION"].map(String::from))
            .chain(rows.iter().map(|r| {
                [
                    cell(&r["id"]),
                    cell(&r["fault"]),
                    cell(&r["started"]),
                    match r["duration_seconds"].as_u64() {
                        Some(0) | None => "until cleared".into(),
                        Some(s) => format!("{s}s"),
                    },
                ]
            }))
            .collect();
    let mut widths = [0usize; 4];
    for line in &lines {
        for (w, c) in widths.iter_mut().zip(line) {
            *w = (*w).max(c.chars().count());
        }
    }
    lines
        .iter()
        .map(|line| {
            let cells: Vec<String> = line
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            cells.join("  ").trim_end().to_string() + "\n"
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_selects_the_service_and_excludes_redis() {
        let p = deny_redis_policy("ns", "chaoslab", "chaoslab-network-block", 60);
        assert_eq!(
            p["spec"]["podSelector"]["matchLabels"],
            crate::k8s::manifests::selector("service"),
            "the export's service pods, and only those"
        );
        assert_eq!(p["spec"]["policyTypes"], json!(["Egress"]));
        assert_eq!(
            p["spec"]["egress"][0]["to"][0]["podSelector"]["matchExpressions"][0],
            json!({"key": COMPONENT_LABEL, "operator": "NotIn", "values": ["redis"]})
        );
        assert_eq!(p["metadata"]["labels"][FAULT_LABEL], "network-block");
    }

    /// Whether `labels` satisfy a NetworkPolicy/label selector's
    /// matchLabels and NotIn expressions (all this module writes).
    fn matches(selector: &Value, labels: &Value) -> bool {
        let exact = selector["matchLabels"]
            .as_object()
            .map(|m| m.iter().all(|(k, v)| &labels[k] == v))
            .unwrap_or(true);
        let not_in = selector["matchExpressions"]
            .as_array()
            .map(|e| {
                e.iter().all(|x| {
                    let values = x["values"].as_array().unwrap();
                    !values.contains(&labels[x["key"].as_str().unwrap()])
                })
            })
            .unwrap_or(true);
        exact && not_in
    }

    #[test]
    fn the_cut_takes_the_exported_service_pods_and_spares_nothing_but_redis() {
        // The labels `chaoslab export k8s` puts on each pod template.
        let service = crate::k8s::manifests::labels("service");
        let redis =
            crate::k8s::manifests::redis_statefulset("ns", "redis")["spec"]["template"]["metadata"]
                ["labels"]
                .clone();
        let p = deny_redis_policy("ns", "chaoslab", "chaoslab-network-block", 60);
        assert!(matches(&p["spec"]["podSelector"], &service));
        assert!(
            !matches(&p["spec"]["podSelector"], &redis),
            "Redis is not cut off itself"
        );
        let allowed = &p["spec"]["egress"][0]["to"][0]["podSelector"];
        assert!(!matches(allowed, &redis), "the service may not reach Redis");
        assert!(matches(allowed, &service));
        let chaos = network_chaos("ns", "chaoslab", "x", &NetworkKind::Block, 60);
        let from = json!({"matchLabels": chaos["spec"]["selector"]["labelSelectors"]});
        let to = json!({"matchLabels": chaos["spec"]["target"]["selector"]["labelSelectors"]});
        assert!(matches(&from, &service) && !matches(&from, &redis));
        assert!(matches(&to, &redis) && !matches(&to, &service));
    }

    #[test]
    fn ids_are_kind_and_name() {
        assert_eq!(
            parse_id("networkpolicy/chaoslab-network-block").unwrap(),
            ("networkpolicy".into(), "chaoslab-network-block".into())
        );
        assert!(parse_id("f-1").is_err());
        assert!(parse_id("deployment/Bad_Name").is_err());
    }
}
