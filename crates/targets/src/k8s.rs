//! Kubernetes manifests: `chaoslab export k8s` (SPEC §12).
//!
//! Writes plain YAML, one file per concern, and a `kustomization.yaml` so
//! `kubectl apply -k DIR` deploys the seed's service on a cluster: the
//! Deployment with the seed's resources, probes and environment, a Service,
//! an HPA, Redis (StatefulSet + Service + Secret with the service's ACL
//! user) or an external Redis URL, the CHAOS_API_TOKEN Secret, a
//! NetworkPolicy baseline, and under `load/` an Indexed Job running
//! `chaoslab load` in N pods. `--podman` adds `podman.yaml`, the same
//! workload reshaped for `podman kube play` ([`podman`]).
//!
//! Every argument is checked before anything is written: bad input is a
//! [`BadInput`] (exit 2), and the directory is left untouched.

pub mod manifests;
pub mod podman;

use std::path::{Path, PathBuf};

use rand::Rng;
use serde_json::Value;

use crate::BadInput;
use manifests::{LoadSpec, Probes, RedisTarget, ServiceSpec};

/// The image a cluster pulls by default (push `chaoslab image build`'s
/// image there, or pass --image).
pub const DEFAULT_IMAGE: &str = "ghcr.io/chaoslab/chaoslab:latest";
/// The Redis image a cluster pulls by default.
pub const DEFAULT_REDIS_IMAGE: &str = "docker.io/library/redis:7.2";
/// The images `chaoslab image build` makes locally (the podman variant's defaults).
pub const LOCAL_IMAGE: &str = "localhost/chaoslab:latest";
/// See [`LOCAL_IMAGE`].
pub const LOCAL_REDIS_IMAGE: &str = "localhost/chaoslab-redis:latest";

/// Command-line arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Directory to write the manifests into (created if missing).
    #[arg(long, default_value = "chaoslab-k8s")]
    pub out: PathBuf,
    /// The service's image.
    #[arg(long, default_value = DEFAULT_IMAGE)]
    pub image: String,
    /// Redis's image (its `redis-server` must be on PATH).
    #[arg(long, default_value = DEFAULT_REDIS_IMAGE)]
    pub redis_image: String,
    /// Namespace of every object (a DNS label).
    #[arg(long, default_value = "chaoslab")]
    pub namespace: String,
    /// Probe preset: `aca` (the seed's Container Apps probes) or `quick`
    /// (the same at a tenth).
    #[arg(long, default_value = "aca")]
    pub probes: String,
    /// Use this Redis (redis:// or rediss://) instead of deploying one.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Also write `podman.yaml`, the variant `podman kube play` runs on one
    /// machine (local images, host network on loopback, no Services).
    #[arg(long)]
    pub podman: bool,
    /// The service's port in the podman variant.
    #[arg(long, default_value_t = manifests::SERVICE_PORT)]
    pub port: u16,
    /// Redis's port in the podman variant.
    #[arg(long, default_value_t = manifests::REDIS_PORT)]
    pub redis_port: u16,
    /// Parallel pods of the load Job.
    #[arg(long, default_value_t = 3)]
    pub load_pods: u32,
    /// Users per load pod.
    #[arg(long, default_value_t = 10)]
    pub load_users: u32,
    /// How long each load pod runs (e.g. 2m).
    #[arg(long, default_value = "2m")]
    pub load_run_time: String,
}

/// The podman variant's directory of secret files, under the output directory.
pub const PODMAN_SECRETS_DIR: &str = "podman-secrets";

/// Checked settings of one export.
#[derive(Debug, Clone)]
pub struct Export {
    pub out: PathBuf,
    pub namespace: String,
    pub image: String,
    pub redis_image: String,
    pub probes: Probes,
    pub redis_url: Option<String>,
    pub podman: Option<(u16, u16)>,
    pub load: (u32, u32, String),
}

/// True for an RFC 1123 DNS label: 1–63 of `a-z0-9-`, alphanumeric at both ends.
pub fn is_dns_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// Checks a namespace (or any object name that must be a DNS label).
pub fn check_dns_label(what: &str, s: &str) -> Result<(), BadInput> {
    if is_dns_label(s) {
        Ok(())
    } else {
        Err(BadInput(format!(
            "{what} `{s}` is not a valid DNS label (1-63 lowercase letters, digits or '-', starting and ending with a letter or digit)"
        )))
    }
}

/// Parses a probe preset name.
pub fn parse_preset(s: &str) -> Result<chaoslab_lab::Preset, BadInput> {
    match s {
        "aca" => Ok(chaoslab_lab::Preset::Aca),
        "quick" => Ok(chaoslab_lab::Preset::Quick),
        other => Err(BadInput(format!(
            "unknown probe preset `{other}` for --probes (expected aca or quick)"
        ))),
    }
}

fn check_image(flag: &str, s: &str) -> Result<(), BadInput> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(BadInput(format!("{flag} `{s}` is not an image reference")));
    }
    Ok(())
}

fn check_run_time(s: &str) -> Result<(), BadInput> {
    let digits = s.trim_end_matches(['s', 'm', 'h']);
    let ok = !s.is_empty()
        && !digits.is_empty()
        && digits.len() < s.len()
        && s.chars().all(|c| c.is_ascii_digit() || "smh".contains(c));
    if ok {
        Ok(())
    } else {
        Err(BadInput(format!(
            "--load-run-time `{s}` is not a duration like 30s, 2m or 1h"
        )))
    }
}

impl Args {
    /// Checks every argument; nothing is written before this passes.
    pub fn check(&self) -> Result<Export, BadInput> {
        check_dns_label("--namespace", &self.namespace)?;
        let preset = parse_preset(&self.probes)?;
        check_image("--image", &self.image)?;
        check_image("--redis-image", &self.redis_image)?;
        if let Some(url) = &self.redis_url {
            let scheme_ok = url.starts_with("redis://") || url.starts_with("rediss://");
            if !scheme_ok || url.len() <= "rediss://".len() || url.chars().any(char::is_whitespace)
            {
                return Err(BadInput(format!(
                    "--redis-url must be redis://HOST[:PORT] or rediss://… (got `{}`)",
                    redact_url(url)
                )));
            }
            if self.podman {
                return Err(BadInput(
                    "--podman runs its own Redis; leave out --redis-url".into(),
                ));
            }
        }
        if !(1..=100).contains(&self.load_pods) {
            return Err(BadInput(format!(
                "--load-pods {} is out of range (1 to 100)",
                self.load_pods
            )));
        }
        if !(1..=10_000).contains(&self.load_users) {
            return Err(BadInput(format!(
                "--load-users {} is out of range (1 to 10000)",
                self.load_users
            )));
        }
        check_run_time(&self.load_run_time)?;
        if self.podman && (self.port == 0 || self.redis_port == 0 || self.port == self.redis_port) {
            return Err(BadInput(
                "--port and --redis-port must be two different non-zero ports".into(),
            ));
        }
        if self.out.as_os_str().is_empty() {
            return Err(BadInput("--out must name a directory".into()));
        }
        let (image, redis_image) = if self.podman {
            // The podman variant's images are local; keep explicit choices.
            (
                if self.image == DEFAULT_IMAGE {
                    LOCAL_IMAGE.into()
                } else {
                    self.image.clone()
                },
                if self.redis_image == DEFAULT_REDIS_IMAGE {
                    LOCAL_REDIS_IMAGE.into()
                } else {
                    self.redis_image.clone()
                },
            )
        } else {
            (self.image.clone(), self.redis_image.clone())
        };
        Ok(Export {
            out: self.out.clone(),
            namespace: self.namespace.clone(),
            image,
            redis_image,
            probes: Probes::from_preset(preset),
            redis_url: self.redis_url.clone(),
            podman: self.podman.then_some((self.port, self.redis_port)),
            load: (self.load_pods, self.load_users, self.load_run_time.clone()),
        })
    }
}

/// The URL with any password replaced, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot render YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
}

/// One file of the export: its path relative to the output directory, its
/// documents, and whether it holds secrets (written owner-only).
#[derive(Debug, Clone)]
pub struct ManifestFile {
    pub path: &'static str,
    pub documents: Vec<Value>,
    pub secret: bool,
}

fn random_secret(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Fresh secrets of one export.
#[derive(Debug, Clone)]
pub struct Secrets {
    pub token: String,
    pub password: String,
}

impl Secrets {
    /// A 40-character token and a 32-character password, alphanumeric.
    pub fn generate() -> Self {
        Self {
            token: random_secret(40),
            password: random_secret(32),
        }
    }
}

/// Every file of an export. `podman_secrets` is the absolute directory of
/// the podman variant's secret files (see [`podman`]).
pub fn files(export: &Export, secrets: &Secrets, podman_secrets: &Path) -> Vec<ManifestFile> {
    let ns = export.namespace.as_str();
    let mut out = vec![
        ManifestFile {
            path: "namespace.yaml",
            documents: vec![manifests::namespace(ns)],
            secret: false,
        },
        ManifestFile {
            path: "secret-api-token.yaml",
            documents: vec![manifests::api_token_secret(ns, &secrets.token)],
            secret: true,
        },
        service_file(export),
    ];
    out.extend(redis_files(export, &secrets.password));
    out.push(network_policy_file(export));
    out.push(load_job_file(export));
    if let Some((port, redis_port)) = export.podman {
        out.push(podman_file(
            export,
            &secrets.token,
            (port, redis_port),
            podman_secrets,
        ));
    }
    out
}

/// `service.yaml`: the service's Deployment, Service and HPA, pointed at
/// the external Redis URL or the in-cluster Redis.
fn service_file(export: &Export) -> ManifestFile {
    let ns = export.namespace.as_str();
    let spec = ServiceSpec {
        namespace: ns.into(),
        image: export.image.clone(),
        probes: export.probes,
        redis: match &export.redis_url {
            Some(_) => RedisTarget::External,
            None => RedisTarget::InCluster {
                host: manifests::REDIS_NAME.into(),
                port: manifests::REDIS_PORT,
            },
        },
        listen_host: "0.0.0.0".into(),
        port: manifests::SERVICE_PORT,
    };
    ManifestFile {
        path: "service.yaml",
        documents: vec![
            manifests::service_deployment(&spec),
            manifests::service_service(ns),
            manifests::service_hpa(ns),
        ],
        secret: false,
    }
}

/// Redis's files: the URL Secret for an external Redis, or the ACL
/// Secret plus StatefulSet and Service for the in-cluster one.
fn redis_files(export: &Export, password: &str) -> Vec<ManifestFile> {
    let ns = export.namespace.as_str();
    match &export.redis_url {
        Some(url) => vec![ManifestFile {
            path: "secret-redis-url.yaml",
            documents: vec![manifests::redis_url_secret(ns, url)],
            secret: true,
        }],
        None => vec![
            ManifestFile {
                path: "secret-redis.yaml",
                documents: vec![manifests::redis_secret(ns, password)],
                secret: true,
            },
            ManifestFile {
                path: "redis.yaml",
                documents: vec![
                    manifests::redis_statefulset(ns, &export.redis_image),
                    manifests::redis_service(ns),
                ],
                secret: false,
            },
        ],
    }
}

/// `networkpolicy.yaml`: the default-deny baseline, HTTP in, and Redis
/// reachable from the service when Redis runs in the cluster.
fn network_policy_file(export: &Export) -> ManifestFile {
    let ns = export.namespace.as_str();
    let mut policies = vec![
        manifests::network_policy_default_deny(ns),
        manifests::network_policy_allow_http(ns),
    ];
    if export.redis_url.is_none() {
        policies.push(manifests::network_policy_redis_from_service(ns));
    }
    ManifestFile {
        path: "networkpolicy.yaml",
        documents: policies,
        secret: false,
    }
}

/// `load/job.yaml`: the results volume and the Indexed Job running
/// `chaoslab load` in the export's number of pods.
fn load_job_file(export: &Export) -> ManifestFile {
    let ns = export.namespace.as_str();
    let (pods, users, run_time) = export.load.clone();
    let load = LoadSpec {
        namespace: ns.into(),
        image: export.image.clone(),
        pods,
        users,
        run_time,
    };
    ManifestFile {
        path: "load/job.yaml",
        documents: vec![manifests::load_results_pvc(ns), manifests::load_job(&load)],
        secret: false,
    }
}

/// `podman.yaml`: the workload reshaped for `podman kube play` on the
/// given service and Redis ports, its secrets read from `podman_secrets`.
fn podman_file(
    export: &Export,
    token: &str,
    (port, redis_port): (u16, u16),
    podman_secrets: &Path,
) -> ManifestFile {
    ManifestFile {
        path: "podman.yaml",
        documents: podman::documents(&podman::PodmanSpec {
            namespace: export.namespace.clone(),
            image: export.image.clone(),
            redis_image: export.redis_image.clone(),
            probes: export.probes,
            port,
            redis_port,
            token: token.to_string(),
            secrets_dir: podman_secrets.to_path_buf(),
        }),
        secret: true,
    }
}

/// The top-level kustomization: every file but the load Job and the podman variant.
pub fn kustomization(files: &[ManifestFile]) -> Value {
    let resources: Vec<&str> = files
        .iter()
        .map(|f| f.path)
        .filter(|p| !p.contains('/') && *p != "podman.yaml")
        .collect();
    serde_json::json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    })
}

/// Renders documents as one YAML stream, readable alike by YAML 1.2 and
/// YAML 1.1 parsers (Kubernetes' sigs.k8s.io/yaml, PyYAML).
pub fn to_yaml(documents: &[Value]) -> Result<String, serde_yaml_ng::Error> {
    let mut text = String::new();
    for doc in documents {
        text.push_str("---\n");
        text.push_str(&quote_yaml11_words(&serde_yaml_ng::to_string(doc)?));
    }
    Ok(text)
}

/// Words a YAML 1.1 parser reads as booleans where a YAML 1.2 emitter
/// (serde_yaml_ng) leaves them plain: `no` would reach Kubernetes as `false`.
const YAML11_WORDS: &[&str] = &["y", "n", "yes", "no", "on", "off"];

/// Single-quotes every plain scalar value that is a `YAML11_WORDS` word
/// (any case), leaving block scalars' content alone.
pub fn quote_yaml11_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Indentation of the line that opened a block scalar (`|`, `>`).
    let mut block: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let indent = body.len() - body.trim_start().len();
        if let Some(open) = block {
            if body.trim().is_empty() || indent > open {
                out.push_str(line);
                continue;
            }
            block = None;
        }
        let value_start = body
            .rfind(": ")
            .map(|i| i + 2)
            .or_else(|| body.trim_start().starts_with("- ").then(|| indent + 2));
        let fixed = value_start.and_then(|start| {
            let value = &body[start..];
            let word = value.trim_start_matches("- ");
            let is_word = YAML11_WORDS.iter().any(|w| w.eq_ignore_ascii_case(word));
            is_word.then(|| format!("{}'{word}'", &body[..body.len() - word.len()]))
        });
        match fixed {
            Some(fixed) => {
                out.push_str(&fixed);
                if line.ends_with('\n') {
                    out.push('\n');
                }
            }
            None => out.push_str(line),
        }
        let tail = body.trim_end();
        if ["|", "|-", "|+", ">", ">-", ">+"].iter().any(|m| {
            tail.ends_with(&format!(" {m}")) || tail == *m || tail.ends_with(&format!("- {m}"))
        }) {
            block = Some(indent);
        }
    }
    out
}

fn write(path: &Path, text: &str, secret: bool) -> Result<(), ExportError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| ExportError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    // Written beside, then renamed: a reader never sees half a file.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mode = if secret { 0o600 } else { 0o644 };
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    file.write_all(text.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Writes an export; returns the paths written.
pub fn write_export(export: &Export) -> Result<Vec<PathBuf>, ExportError> {
    let err = |source| ExportError::Write {
        path: export.out.clone(),
        source,
    };
    std::fs::create_dir_all(&export.out).map_err(err)?;
    let out = std::fs::canonicalize(&export.out).map_err(err)?;
    let secrets = Secrets::generate();
    let podman_secrets = out.join(PODMAN_SECRETS_DIR);
    let files = files(export, &secrets, &podman_secrets);
    let mut rendered = Vec::new();
    for f in &files {
        rendered.push((f.path, to_yaml(&f.documents)?, f.secret));
    }
    rendered.push((
        "kustomization.yaml",
        serde_yaml_ng::to_string(&kustomization(&files))?,
        false,
    ));
    let load_kustomization = serde_json::json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["job.yaml"],
    });
    rendered.push((
        "load/kustomization.yaml",
        serde_yaml_ng::to_string(&load_kustomization)?,
        false,
    ));
    let mut written = Vec::new();
    for (path, text, secret) in rendered {
        let full = export.out.join(path);
        write(&full, &text, secret)?;
        written.push(full);
    }
    if export.podman.is_some() {
        use std::os::unix::fs::PermissionsExt;
        let dir_err = |source| ExportError::Write {
            path: podman_secrets.clone(),
            source,
        };
        std::fs::create_dir_all(&podman_secrets).map_err(dir_err)?;
        std::fs::set_permissions(&podman_secrets, std::fs::Permissions::from_mode(0o700))
            .map_err(dir_err)?;
        for (name, text) in podman::secret_files(&secrets.password) {
            let full = podman_secrets.join(name);
            write(&full, &text, false)?;
            written.push(full);
        }
    }
    Ok(written)
}

/// Runs the command.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let export = args.check()?;
    let written = write_export(&export)?;
    println!(
        "wrote {} files to {} — deploy with `kubectl apply -k {}`; run load with `kubectl apply -k {}`",
        written.len(),
        export.out.display(),
        export.out.display(),
        export.out.join("load").display()
    );
    if export.podman.is_some() {
        println!(
            "podman variant: `podman kube play {}` (images from `chaoslab image build` and `chaoslab image build --redis`)",
            export.out.join("podman.yaml").display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
