//! Azure Container Apps: `chaoslab export aca` (SPEC §12, issue 14 item 6).
//!
//! Writes what Azure takes, never calls Azure itself:
//! - Bicep in the seed's module layout (`main.bicep` + `modules/`), embedded
//!   from `templates/aca/` unchanged: every choice a user makes is a
//!   parameter, written to `main.parameters.json` (which names no resource
//!   group: `az deployment group create -g` says where it goes);
//! - `containerapp.yaml` for `az containerapp create --yaml`: the same
//!   container app (identity, probes, resources, scale rule, env, secrets) as
//!   a Container Apps API document.
//!
//! Every input is checked before the first file is written (bad input:
//! [`crate::BadInput`], exit 2, nothing written). The chaos API token is
//! generated once and kept, with the name suffix, when exporting again into
//! the same directory; the files holding it are owner-only.

mod checks;
mod yaml;

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};

use crate::BadInput;

/// The Bicep files, by path under the output directory.
pub const BICEP_FILES: &[(&str, &str)] = &[
    ("main.bicep", include_str!("../templates/aca/main.bicep")),
    (
        "modules/managed-identity.bicep",
        include_str!("../templates/aca/modules/managed-identity.bicep"),
    ),
    (
        "modules/monitoring.bicep",
        include_str!("../templates/aca/modules/monitoring.bicep"),
    ),
    (
        "modules/network.bicep",
        include_str!("../templates/aca/modules/network.bicep"),
    ),
    (
        "modules/redis.bicep",
        include_str!("../templates/aca/modules/redis.bicep"),
    ),
    (
        "modules/container-registry.bicep",
        include_str!("../templates/aca/modules/container-registry.bicep"),
    ),
    (
        "modules/container-apps-environment.bicep",
        include_str!("../templates/aca/modules/container-apps-environment.bicep"),
    ),
    (
        "modules/container-app.bicep",
        include_str!("../templates/aca/modules/container-app.bicep"),
    ),
    (
        "modules/alert-rules.bicep",
        include_str!("../templates/aca/modules/alert-rules.bicep"),
    ),
];

/// The parameters file.
pub const PARAMETERS_FILE: &str = "main.parameters.json";
/// The Container App YAML.
pub const YAML_FILE: &str = "containerapp.yaml";

/// The port `chaoslab serve` listens on in the container.
const PORT: u16 = 8000;
/// Azure Managed Redis's TLS port.
const REDIS_PORT: u16 = 10000;

/// Probe timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbePreset {
    /// The seed's: liveness TCP 60/10/10/5; readiness GET /health 10/5/3/2/2
    /// (initial delay, period, timeout seconds; failure, success thresholds).
    Aca,
    /// The same shape at about a tenth of the times (whole seconds, at least
    /// 1), for demonstrations.
    Quick,
}

impl ProbePreset {
    fn name(self) -> &'static str {
        match self {
            ProbePreset::Aca => "aca",
            ProbePreset::Quick => "quick",
        }
    }

    /// (initial delay, period, timeout, failure threshold) of the TCP
    /// liveness probe and the same plus the success threshold of the HTTP
    /// readiness probe, as `modules/container-app.bicep` has them.
    fn timings(self) -> ([u32; 4], [u32; 5]) {
        match self {
            ProbePreset::Aca => ([60, 10, 10, 5], [10, 5, 3, 2, 2]),
            ProbePreset::Quick => ([6, 1, 1, 5], [1, 1, 1, 2, 2]),
        }
    }
}

/// Command-line arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Directory to write into (created if missing). Files the export
    /// writes are replaced; other files are left alone.
    #[arg(long, value_name = "DIR", default_value = "aca")]
    pub out: PathBuf,
    /// Container app name: a DNS label of 2-24 lower-case letters, digits
    /// and hyphens. The other resource names derive from it (cae-NAME,
    /// id-NAME, vnet-NAME, …).
    #[arg(long, env = "AZURE_CONTAINER_APP_NAME", default_value = "chaoslab")]
    pub name: String,
    /// Azure region, by its short name (`az account list-locations -o table`).
    #[arg(long, env = "AZURE_LOCATION", default_value = "japaneast")]
    pub location: String,
    /// Container image of the service. Without it the parameters file
    /// deploys the infrastructure only, so the image can be pushed to the
    /// new registry first, and the YAML names REGISTRY/chaoslab:VERSION.
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Letters and digits (4-8) that make the registry and Redis names
    /// globally unique. Default: the suffix of an earlier export in --out,
    /// or a new random one.
    #[arg(long)]
    pub suffix: Option<String>,
    /// Probe timings: `aca` (the seed's) or `quick` (a tenth, for demos).
    #[arg(long, value_enum, default_value = "aca")]
    pub probes: ProbePreset,
    /// Minimum replicas of the scale rule.
    #[arg(long, default_value_t = 1)]
    pub min_replicas: u32,
    /// Maximum replicas of the scale rule.
    #[arg(long, default_value_t = 5)]
    pub max_replicas: u32,
    /// Average CPU utilisation (percent) above which the app scales out.
    #[arg(long, default_value_t = 70)]
    pub cpu_utilization: u32,
    /// Ingress reachable from the VNet only (default: from the internet).
    #[arg(long)]
    pub internal: bool,
    /// Object id of a principal given AcrPush on the registry, e.g. yours:
    /// `az ad signed-in-user show --query id -o tsv`.
    #[arg(long, env = "AZURE_PRINCIPAL_ID", value_name = "GUID")]
    pub push_principal_id: Option<String>,
    /// Resource group, for the resource IDs in containerapp.yaml only (the
    /// Bicep goes wherever `az deployment group create -g` puts it).
    #[arg(long, env = "AZURE_RESOURCE_GROUP")]
    pub resource_group: Option<String>,
    /// Subscription id, for the resource IDs in containerapp.yaml.
    #[arg(long, env = "AZURE_SUBSCRIPTION_ID", value_name = "GUID")]
    pub subscription: Option<String>,
    /// Client id of the app's managed identity (the Bicep deployment's
    /// output of the same name), for AZURE_CLIENT_ID in containerapp.yaml.
    #[arg(long, env = "AZURE_MANAGED_IDENTITY_CLIENT_ID", value_name = "GUID")]
    pub identity_client_id: Option<String>,
}

/// Resource names, derived from the app name and the suffix exactly as
/// `main.bicep`'s parameter defaults derive them; the parameters file
/// states each one so the YAML and the Bicep agree by construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub app: String,
    pub identity: String,
    pub log_analytics: String,
    pub application_insights: String,
    pub vnet: String,
    pub nsg: String,
    pub environment: String,
    pub redis: String,
    pub registry: String,
}

impl Names {
    pub fn new(app: &str, suffix: &str) -> Names {
        let vnet = format!("vnet-{app}");
        Names {
            app: app.to_string(),
            identity: format!("id-{app}"),
            log_analytics: format!("log-{app}"),
            application_insights: format!("appi-{app}"),
            nsg: format!("nsg-{vnet}-chaos"),
            vnet,
            environment: format!("cae-{app}"),
            redis: format!("redis-{app}-{suffix}"),
            registry: format!("cr{}{suffix}", app.replace('-', "")),
        }
    }
}

/// What an earlier export in the output directory chose and should keep.
#[derive(Debug, Default)]
struct Earlier {
    suffix: Option<String>,
    token: Option<String>,
}

/// Runs the command.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let export = Export::plan(args)?;
    export.write(&args.out)?;
    export.report(&args.out);
    Ok(())
}

/// Everything the export writes, computed before anything is written.
struct Export {
    names: Names,
    suffix: String,
    files: Vec<(String, String, bool)>,
    placeholders: Vec<&'static str>,
    image_given: bool,
    yaml_image: String,
}

impl Export {
    fn plan(args: &Args) -> anyhow::Result<Export> {
        let bad = |msg: String| anyhow::Error::new(BadInput(msg));
        checks::app_name(&args.name).map_err(bad)?;
        checks::location(&args.location).map_err(bad)?;
        if let Some(image) = &args.image {
            checks::image(image).map_err(bad)?;
        }
        if let Some(suffix) = &args.suffix {
            checks::suffix(suffix).map_err(bad)?;
        }
        checks::scale(args.min_replicas, args.max_replicas, args.cpu_utilization).map_err(bad)?;
        if let Some(id) = &args.push_principal_id {
            checks::guid("--push-principal-id", id).map_err(bad)?;
        }
        if let Some(group) = &args.resource_group {
            checks::resource_group(group).map_err(bad)?;
        }
        if let Some(sub) = &args.subscription {
            checks::guid("--subscription", sub).map_err(bad)?;
        }
        if let Some(id) = &args.identity_client_id {
            checks::guid("--identity-client-id", id).map_err(bad)?;
        }
        if args.out.exists() && !args.out.is_dir() {
            return Err(bad(format!(
                "--out {} exists and is not a directory",
                args.out.display()
            )));
        }
        let earlier = read_earlier(&args.out)?;
        let suffix = match (&args.suffix, earlier.suffix) {
            (Some(s), _) => s.clone(),
            (None, Some(s)) => s,
            (None, None) => random_suffix(),
        };
        let token = earlier.token.unwrap_or_else(random_token);
        let names = Names::new(&args.name, &suffix);

        let parameters = parameters_file(args, &names, &suffix, &token);
        let mut placeholders = Vec::new();
        let yaml_image = args.image.clone().unwrap_or_else(|| {
            format!(
                "{}.azurecr.io/chaoslab:{}",
                names.registry,
                env!("CARGO_PKG_VERSION")
            )
        });
        let app = container_app_document(args, &names, &token, &yaml_image, &mut placeholders);
        let yaml_text = yaml::to_yaml(
            &app,
            &[
                "chaoslab on Azure Container Apps: the container app as an API document,",
                "written by `chaoslab export aca`. Create it in an environment deployed",
                "from main.bicep (with image empty: the infrastructure only):",
                &format!(
                    "  az containerapp create -n {} -g RESOURCE_GROUP --yaml {YAML_FILE}",
                    names.app
                ),
                "Holds the chaos API token: keep this file private.",
            ],
        );
        let mut files: Vec<(String, String, bool)> = BICEP_FILES
            .iter()
            .map(|(path, text)| (path.to_string(), text.to_string(), false))
            .collect();
        let mut parameters_text = serde_json::to_string_pretty(&parameters)?;
        parameters_text.push('\n');
        files.push((PARAMETERS_FILE.to_string(), parameters_text, true));
        files.push((YAML_FILE.to_string(), yaml_text, true));
        Ok(Export {
            names,
            suffix,
            files,
            placeholders,
            image_given: args.image.is_some(),
            yaml_image,
        })
    }

    /// Writes every file, each atomically (a temporary file renamed over
    /// the target); files with secrets are owner-only from the start.
    fn write(&self, out: &Path) -> anyhow::Result<()> {
        for (path, text, secret) in &self.files {
            let target = out.join(path);
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            write_atomically(&target, text.as_bytes(), *secret)
                .with_context(|| format!("cannot write {}", target.display()))?;
        }
        Ok(())
    }

    fn report(&self, out: &Path) {
        let n = &self.names;
        println!(
            "wrote {} files to {} (main.bicep, {} modules, {PARAMETERS_FILE}, {YAML_FILE})",
            self.files.len(),
            out.display(),
            self.files.len() - 3
        );
        println!(
            "names: app {}, environment {}, identity {}, registry {}, redis {}, nsg {} (suffix {}: \
             exporting again into {} keeps it)",
            n.app,
            n.environment,
            n.identity,
            n.registry,
            n.redis,
            n.nsg,
            self.suffix,
            out.display()
        );
        let dir = out.display();
        println!("deploy: az group create -n RESOURCE_GROUP -l LOCATION");
        println!(
            "        az deployment group create -g RESOURCE_GROUP -f {dir}/main.bicep -p @{dir}/{PARAMETERS_FILE}"
        );
        if !self.image_given {
            println!(
                "        (no --image: that deploys the infrastructure only; push the image to {}.azurecr.io, \
                 then deploy again adding -p image={})",
                n.registry, self.yaml_image
            );
        }
        if !self.placeholders.is_empty() {
            eprintln!(
                "note: {YAML_FILE} still has placeholders for {} (take them from the deployment's outputs)",
                self.placeholders.join(", ")
            );
        }
    }
}

/// The deployment parameters: every name stated, no resource group.
fn parameters_file(args: &Args, names: &Names, suffix: &str, token: &str) -> Value {
    let v = |value: Value| json!({ "value": value });
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "appName": v(json!(names.app)),
            "location": v(json!(args.location)),
            "image": v(json!(args.image.clone().unwrap_or_default())),
            "resourceSuffix": v(json!(suffix)),
            "identityName": v(json!(names.identity)),
            "logAnalyticsName": v(json!(names.log_analytics)),
            "applicationInsightsName": v(json!(names.application_insights)),
            "vnetName": v(json!(names.vnet)),
            "nsgName": v(json!(names.nsg)),
            "environmentName": v(json!(names.environment)),
            "redisName": v(json!(names.redis)),
            "registryName": v(json!(names.registry)),
            "chaosApiToken": v(json!(token)),
            "probePreset": v(json!(args.probes.name())),
            "minReplicas": v(json!(args.min_replicas)),
            "maxReplicas": v(json!(args.max_replicas)),
            "cpuUtilization": v(json!(args.cpu_utilization)),
            "externalIngress": v(json!(!args.internal)),
            "pushPrincipalId": v(json!(args.push_principal_id.clone().unwrap_or_default())),
        }
    })
}

/// The container app as `az containerapp create --yaml` takes it: the
/// Container Apps API's ContainerApp resource (`properties` nested, no
/// `resourceGroup`: `-g` gives it). Values the export cannot know without a
/// deployment (subscription, resource group, identity client id) are
/// flags; a missing one becomes a visible `REPLACE_WITH_…` placeholder,
/// listed in `placeholders`.
fn container_app_document(
    args: &Args,
    names: &Names,
    token: &str,
    image: &str,
    placeholders: &mut Vec<&'static str>,
) -> Value {
    let ids = DeploymentIds::new(args, names, placeholders);
    let (secrets, env) = secrets_and_env(args, names, token, &ids.client_id);
    json!({
        "name": names.app,
        "type": "Microsoft.App/containerApps",
        "location": args.location,
        "tags": {"chaoslab-app": names.app},
        "identity": {
            "type": "UserAssigned",
            "userAssignedIdentities": { ids.identity.clone(): {} }
        },
        "properties": {
            "environmentId": ids.environment,
            "workloadProfileName": "Consumption",
            "configuration": configuration_section(args, names, &ids.identity, secrets),
            "template": {
                "containers": [container_section(args, image, env)],
                "scale": scale_section(args)
            }
        }
    })
}

/// The IDs in the container app that only a deployment knows: from the
/// flags, or `REPLACE_WITH_…` placeholders (each recorded in `placeholders`).
struct DeploymentIds {
    /// The user-assigned managed identity's resource ID.
    identity: String,
    /// The Container Apps environment's resource ID.
    environment: String,
    /// The managed identity's client id, for AZURE_CLIENT_ID.
    client_id: String,
}

impl DeploymentIds {
    /// Builds the IDs, recording each missing flag in `placeholders`
    /// (subscription, resource group, client id, in that order).
    fn new(args: &Args, names: &Names, placeholders: &mut Vec<&'static str>) -> DeploymentIds {
        let mut known = |value: &Option<String>, what: &'static str, marker: &str| match value {
            Some(v) => v.clone(),
            None => {
                placeholders.push(what);
                marker.to_string()
            }
        };
        let subscription = known(
            &args.subscription,
            "the subscription (--subscription)",
            "REPLACE_WITH_SUBSCRIPTION_ID",
        );
        let group = known(
            &args.resource_group,
            "the resource group (--resource-group)",
            "REPLACE_WITH_RESOURCE_GROUP",
        );
        let client_id = known(
            &args.identity_client_id,
            "the identity's client id (--identity-client-id)",
            "REPLACE_WITH_MANAGED_IDENTITY_CLIENT_ID",
        );
        let rg = format!("/subscriptions/{subscription}/resourceGroups/{group}/providers");
        DeploymentIds {
            identity: format!(
                "{rg}/Microsoft.ManagedIdentity/userAssignedIdentities/{}",
                names.identity
            ),
            environment: format!(
                "{rg}/Microsoft.App/managedEnvironments/{}",
                names.environment
            ),
            client_id,
        }
    }
}

/// The app's secrets and the container's environment: the service's
/// settings for Redis over Entra ID, the chaos API token, and Application
/// Insights when its connection string is in this process's environment.
fn secrets_and_env(
    args: &Args,
    names: &Names,
    token: &str,
    client_id: &str,
) -> (Vec<Value>, Vec<Value>) {
    let redis_host = format!("{}.{}.redis.azure.net", names.redis, args.location);
    let mut secrets = vec![json!({"name": "chaos-api-token", "value": token})];
    let mut env = vec![
        json!({"name": "APP_HOST", "value": "0.0.0.0"}),
        json!({"name": "APP_PORT", "value": PORT.to_string()}),
        json!({"name": "REDIS_HOST", "value": redis_host}),
        json!({"name": "REDIS_PORT", "value": REDIS_PORT.to_string()}),
        json!({"name": "REDIS_SSL", "value": "true"}),
        json!({"name": "REDIS_USE_ENTRA_ID", "value": "true"}),
        json!({"name": "AZURE_CLIENT_ID", "value": client_id}),
        json!({"name": "CHAOS_API_TOKEN", "secretRef": "chaos-api-token"}),
        json!({"name": "LOG_LEVEL", "value": "INFO"}),
    ];
    // The Application Insights connection string exists only once the
    // component does; taken from the environment (never from argv) when set.
    if let Some(conn) = std::env::var("APPLICATIONINSIGHTS_CONNECTION_STRING")
        .ok()
        .filter(|s| !s.trim().is_empty())
    {
        secrets.push(json!({"name": "appinsights-connection-string", "value": conn}));
        env.push(json!({
            "name": "APPLICATIONINSIGHTS_CONNECTION_STRING",
            "secretRef": "appinsights-connection-string"
        }));
    }
    (secrets, env)
}

/// `properties.configuration`: single revision, the ingress, the registry
/// pulled with the managed identity, and the app's secrets.
fn configuration_section(
    args: &Args,
    names: &Names,
    identity_id: &str,
    secrets: Vec<Value>,
) -> Value {
    json!({
        "activeRevisionsMode": "Single",
        "ingress": {
            "external": !args.internal,
            "targetPort": PORT,
            "transport": "auto",
            "allowInsecure": false
        },
        "registries": [
            {"server": format!("{}.azurecr.io", names.registry), "identity": identity_id}
        ],
        "secrets": secrets
    })
}

/// The one container of `properties.template.containers`: the image
/// running `serve` with the seed's resources, probes and environment.
fn container_section(args: &Args, image: &str, env: Vec<Value>) -> Value {
    json!({
        "name": "chaoslab",
        "image": image,
        "args": ["serve"],
        "resources": {"cpu": 0.25, "memory": "0.5Gi"},
        "probes": probes_section(args.probes),
        "env": env
    })
}

/// The container's probes with the preset's timings: liveness on the TCP
/// port, readiness on `GET /health`.
fn probes_section(preset: ProbePreset) -> Value {
    let (live, ready) = preset.timings();
    json!([
        {
            "type": "Liveness",
            "tcpSocket": {"port": PORT},
            "initialDelaySeconds": live[0],
            "periodSeconds": live[1],
            "timeoutSeconds": live[2],
            "failureThreshold": live[3],
            "successThreshold": 1
        },
        {
            "type": "Readiness",
            "httpGet": {"path": "/health", "port": PORT, "scheme": "HTTP"},
            "initialDelaySeconds": ready[0],
            "periodSeconds": ready[1],
            "timeoutSeconds": ready[2],
            "failureThreshold": ready[3],
            "successThreshold": ready[4]
        }
    ])
}

/// `properties.template.scale`: the replica bounds and the CPU rule.
fn scale_section(args: &Args) -> Value {
    json!({
        "minReplicas": args.min_replicas,
        "maxReplicas": args.max_replicas,
        "rules": [{
            "name": "cpu-rule",
            "custom": {
                "type": "cpu",
                "metadata": {
                    "type": "Utilization",
                    "value": args.cpu_utilization.to_string()
                }
            }
        }]
    })
}

/// The suffix and token of an earlier export in `out`, if its parameters
/// file is there and readable; a file that is not ours is ignored.
fn read_earlier(out: &Path) -> anyhow::Result<Earlier> {
    let path = out.join(PARAMETERS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Earlier::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let Ok(doc) = serde_json::from_str::<Value>(&text) else {
        return Ok(Earlier::default());
    };
    let field = |name: &str| {
        doc.pointer(&format!("/parameters/{name}/value"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Ok(Earlier {
        suffix: field("resourceSuffix").filter(|s| checks::suffix(s).is_ok()),
        token: field("chaosApiToken").filter(|t| t.len() >= 32),
    })
}

fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    // A letter first, so the suffix never looks like a number.
    let mut s = String::from(ALPHABET[rng.random_range(0..26)] as char);
    for _ in 0..5 {
        s.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    s
}

/// 256 random bits in hex (rand's thread generator is a CSPRNG seeded by
/// the OS).
fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_atomically(target: &Path, bytes: &[u8], owner_only: bool) -> std::io::Result<()> {
    use std::io::Write;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = target.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if owner_only { 0o600 } else { 0o644 });
    }
    let result = (|| {
        let mut file = options.open(&tmp)?;
        #[cfg(unix)]
        if owner_only {
            use std::os::unix::fs::PermissionsExt;
            // The mode above is masked by the umask; a secret file is 0600
            // whatever it was.
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(extra: &[&str]) -> Args {
        let argv = ["export-aca"].iter().chain(extra).copied();
        Cli::try_parse_from(argv).expect("arguments parse").args
    }

    #[test]
    fn names_follow_main_bicep_defaults() {
        let n = Names::new("chaos-lab", "k3x9q1");
        assert_eq!(n.environment, "cae-chaos-lab");
        assert_eq!(n.nsg, "nsg-vnet-chaos-lab-chaos");
        assert_eq!(n.registry, "crchaoslabk3x9q1");
        assert_eq!(n.redis, "redis-chaos-lab-k3x9q1");
        let main = BICEP_FILES[0].1;
        for default in [
            "param identityName string = 'id-${appName}'",
            "param logAnalyticsName string = 'log-${appName}'",
            "param applicationInsightsName string = 'appi-${appName}'",
            "param vnetName string = 'vnet-${appName}'",
            "param nsgName string = 'nsg-${vnetName}-chaos'",
            "param environmentName string = 'cae-${appName}'",
            "param redisName string = 'redis-${appName}-${resourceSuffix}'",
            "param registryName string = 'cr${replace(appName, '-', '')}${resourceSuffix}'",
        ] {
            assert!(main.contains(default), "main.bicep lost `{default}`");
        }
    }

    #[test]
    fn every_parameter_written_is_declared_in_main_bicep() {
        let a = args(&[]);
        let doc = parameters_file(&a, &Names::new("chaoslab", "abcd12"), "abcd12", "t");
        let main = BICEP_FILES[0].1;
        for key in doc["parameters"].as_object().unwrap().keys() {
            assert!(
                main.contains(&format!("param {key} ")),
                "{key} is not a parameter of main.bicep"
            );
        }
    }

    #[test]
    fn probe_presets_match_the_bicep() {
        let (live, ready) = ProbePreset::Aca.timings();
        assert_eq!((live, ready), ([60, 10, 10, 5], [10, 5, 3, 2, 2]));
        let app = BICEP_FILES
            .iter()
            .find(|(p, _)| *p == "modules/container-app.bicep")
            .unwrap()
            .1;
        for line in [
            "initialDelaySeconds: 60",
            "timeoutSeconds: 10",
            "failureThreshold: 5",
            "initialDelaySeconds: 10",
            "periodSeconds: 5",
            "timeoutSeconds: 3",
            "successThreshold: 2",
            "initialDelaySeconds: 6",
        ] {
            assert!(app.contains(line), "container-app.bicep lost `{line}`");
        }
    }

    #[test]
    fn suffixes_and_tokens_are_well_formed() {
        for _ in 0..50 {
            let s = random_suffix();
            assert!(checks::suffix(&s).is_ok(), "{s}");
            assert!(s.starts_with(|c: char| c.is_ascii_lowercase()));
        }
        let t = random_token();
        assert_eq!(t.len(), 64);
        assert_ne!(t, random_token());
    }

    #[test]
    fn bad_input_is_refused_before_planning_anything() {
        for extra in [
            &["--name", "Bad_Name"][..],
            &["--location", "Japan East"],
            &["--suffix", "x"],
            &["--min-replicas", "6"],
            &["--subscription", "nope"],
            &["--image", "a b"],
        ] {
            let err = Export::plan(&args(extra)).err().expect("refused");
            assert!(err.downcast_ref::<BadInput>().is_some(), "{err}");
        }
    }
}
