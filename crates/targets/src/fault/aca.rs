//! Faults on Azure Container Apps through `az`, as the seed's scripts ran
//! them (SPEC §12): the network cut is the NSG rule `DenyRedisTraffic`
//! (priority 100, Inbound, Deny, Tcp, destination port 10000 — the
//! fields of the seed's `inject-network-failure.sh`, whose NSG sits on the
//! Redis private endpoint's subnet), then a redis-reset of the app through
//! its ingress; or Azure Chaos Studio's NSG security-rule fault with
//! `--engine chaos-studio`. A failing deploy is a revision with the seed's
//! missing image (or `REDIS_PORT=invalid`); Container Apps keeps the
//! previous revision serving. `list` and `clear` find the rule by name and
//! the revisions by their suffix `chaoslab-fault-…`.

use std::time::Duration;

use serde_json::{Value, json};

use super::k8s::MISSING_IMAGE;
use super::runner::{Shell, Step, Tool, var};
use super::{Engine, Fault, FaultError, TargetArgs, bad, check_dns_label, seconds};

/// The seed's rule name (design notes: ルール名 "DenyRedisTraffic").
pub const RULE_NAME: &str = "DenyRedisTraffic";
/// The seed's rule priority.
pub const RULE_PRIORITY: u32 = 100;
/// Azure Managed Redis's port, which the seed's rule denies.
pub const REDIS_PORT: u16 = 10000;
/// The seed's rule description.
pub const RULE_DESCRIPTION: &str = "Chaos engineering: Block Redis traffic";
/// The Chaos Studio experiment chaoslab creates.
pub const EXPERIMENT: &str = "chaoslab-deny-redis-traffic";
/// Microsoft.Chaos API version.
pub const CHAOS_API: &str = "2024-01-01";
/// Revision suffixes of failing deploys start with this.
pub const FAULT_SUFFIX: &str = "chaoslab-fault-";

#[derive(Debug, Clone)]
enum Action {
    Block {
        duration: u64,
        reset: bool,
    },
    StudioBlock {
        duration: u64,
    },
    Deploy {
        variant: String,
    },
    List,
    Clear {
        rule: bool,
        revisions: Option<Option<String>>,
        experiment: bool,
    },
}

/// A checked fault for one Container App environment.
#[derive(Debug, Clone)]
pub struct Plan {
    resource_group: String,
    app: Option<String>,
    nsg: Option<String>,
    subscription: Option<String>,
    location: Option<String>,
    action: Action,
    /// Seconds since the epoch, for revision suffixes.
    stamp: u64,
}

impl Plan {
    /// Checks everything about `fault` on Container Apps; nothing runs.
    pub fn new(args: &TargetArgs, fault: &Fault) -> Result<Plan, FaultError> {
        let engine = aca_engine(args)?;
        let resource_group = args.resource_group.clone().ok_or_else(|| {
            bad("--target aca needs --resource-group (or AZURE_RESOURCE_GROUP, as azd sets it)")
        })?;
        check_resource_group(&resource_group)?;
        let app = checked_app(args)?;
        if let Some(nsg) = &args.nsg {
            check_azure_name("NSG name", nsg, 80)?;
        }
        let checked = Checked { args, engine, app };
        let action = match fault {
            Fault::NetworkBlock {
                mode,
                duration,
                no_reset,
            } => checked.network_block(mode, *duration, *no_reset)?,
            Fault::NetworkLatency { .. } | Fault::NetworkBandwidth { .. } => {
                return Err(bad(
                    "network latency and bandwidth are not available on aca: an NSG rule only allows or denies",
                ));
            }
            Fault::Kill { .. } => {
                return Err(bad(
                    "kill is not available on aca (Container Apps has no replica deletion); `az containerapp revision restart` restarts every replica",
                ));
            }
            Fault::Deploy { variant } => checked.deploy(variant)?,
            Fault::LocalOnly(kind) => {
                return Err(bad(format!(
                    "`fault {kind}` is a local-lab fault; on aca: network block, deploy, list, clear"
                )));
            }
            Fault::List { .. } => checked.list()?,
            Fault::Clear { id, .. } => checked.clear(id.as_deref())?,
        };
        Ok(Plan {
            resource_group,
            app: checked.app,
            nsg: args.nsg.clone(),
            subscription: args.subscription.clone(),
            location: args.location.clone(),
            action,
            stamp: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        })
    }

    /// The tools a real run needs.
    pub fn tools(&self) -> Vec<Tool> {
        match &self.action {
            Action::Block { reset: true, .. } => vec![Tool::Az, Tool::Curl],
            _ => vec![Tool::Az],
        }
    }

    fn az<I, S>(&self, args: I) -> Step
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Step::new(Tool::Az, args)
    }

    fn rg(&self) -> &str {
        &self.resource_group
    }

    fn app(&self) -> &str {
        self.app.as_deref().unwrap_or_default()
    }

    fn nsg(&self) -> &str {
        self.nsg.as_deref().unwrap_or_default()
    }

    fn nsg_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/networkSecurityGroups/{}",
            self.subscription.as_deref().unwrap_or_default(),
            self.rg(),
            self.nsg()
        )
    }

    fn experiment_url(&self, tail: &str) -> String {
        format!(
            "https://management.azure.com/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Chaos/experiments/{EXPERIMENT}{tail}?api-version={CHAOS_API}",
            self.subscription.as_deref().unwrap_or_default(),
            self.rg()
        )
    }

    /// Carries the plan out on `shell` (printing or running).
    pub fn carry_out(&self, shell: &mut dyn Shell) -> Result<(), FaultError> {
        match &self.action {
            Action::Block { duration, reset } => self.block(shell, *duration, *reset),
            Action::StudioBlock { duration } => self.studio_block(shell, *duration),
            Action::Deploy { variant } => self.deploy(shell, variant),
            Action::List => self.list(shell),
            Action::Clear {
                rule,
                revisions,
                experiment,
            } => self.clear(shell, *rule, revisions.as_ref(), *experiment),
        }
    }

    fn rule_step(&self, verb: &str) -> Vec<String> {
        [
            "network",
            "nsg",
            "rule",
            verb,
            "--resource-group",
            self.rg(),
            "--nsg-name",
            self.nsg(),
            "--name",
            RULE_NAME,
        ]
        .map(String::from)
        .to_vec()
    }

    fn block(&self, shell: &mut dyn Shell, duration: u64, reset: bool) -> Result<(), FaultError> {
        shell.say(&format!(
            "network block on aca (nsg): the seed's rule {RULE_NAME} on NSG {}, then a redis-reset of {}",
            self.nsg(),
            if reset { self.app() } else { "nobody (--no-reset)" }
        ))?;
        let mut create = self.rule_step("create");
        create.extend(
            [
                "--priority",
                &RULE_PRIORITY.to_string(),
                "--direction",
                "Inbound",
                "--access",
                "Deny",
                "--protocol",
                "Tcp",
                "--destination-port-ranges",
                &REDIS_PORT.to_string(),
                "--description",
                RULE_DESCRIPTION,
                "--output",
                "none",
            ]
            .map(String::from),
        );
        shell.run(&self.az(create))?;
        let mut show = self.rule_step("show");
        show.extend(["--query", "provisioningState", "--output", "tsv"].map(String::from));
        shell.poll_until(
            &self.az(show),
            "Succeeded",
            Duration::from_secs(3),
            Duration::from_secs(120),
        )?;
        if reset {
            self.redis_reset(shell)?;
        }
        if duration > 0 {
            shell.hold(
                Duration::from_secs(duration),
                &format!("the NSG rule {RULE_NAME}"),
            )?;
            let mut delete = self.rule_step("delete");
            delete.extend(["--output", "none"].map(String::from));
            shell.run(&self.az(delete))?;
        } else if !shell.dry() {
            shell.say(&format!(
                "{RULE_NAME} stays until cleared: `chaoslab fault clear --target aca --all`"
            ))?;
        }
        Ok(())
    }

    /// The seed's `POST /chaos/redis-reset {"force": true}` through the
    /// app's ingress, so pooled connections must be made again.
    fn redis_reset(&self, shell: &mut dyn Shell) -> Result<(), FaultError> {
        let fqdn = shell.read(
            "FQDN",
            &self.az([
                "containerapp",
                "show",
                "--resource-group",
                self.rg(),
                "--name",
                self.app(),
                "--query",
                "properties.configuration.ingress.fqdn",
                "--output",
                "tsv",
            ]),
        )?;
        let fqdn = if shell.dry() {
            fqdn
        } else {
            let fqdn = fqdn.trim().to_string();
            if fqdn.is_empty()
                || !fqdn
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                return Err(FaultError::Failed(format!(
                    "{} has no usable ingress FQDN (`{fqdn}`): the rule is in place; reset the app's Redis connections yourself",
                    self.app()
                )));
            }
            fqdn
        };
        let mut args: Vec<String> = [
            "--fail-with-body",
            "--silent",
            "--show-error",
            "--connect-timeout",
            "10",
            "--max-time",
            "30",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"force": true}"#,
        ]
        .map(String::from)
        .to_vec();
        let token = std::env::var("CHAOS_API_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        let mut step;
        if let Some(token) = token {
            // The token goes through stdin, never argv (SPEC §13).
            args.extend(["-H".into(), "@-".into()]);
            args.push(format!("https://{fqdn}/chaos/redis-reset"));
            step = Step::new(Tool::Curl, args).stdin(format!("Authorization: Bearer {token}\n"));
            step.stdin_shown = Some("Authorization: Bearer $CHAOS_API_TOKEN\n".into());
        } else {
            args.push(format!("https://{fqdn}/chaos/redis-reset"));
            step = Step::new(Tool::Curl, args);
        }
        match shell.run(&step) {
            Ok(()) => Ok(()),
            Err(FaultError::Failed(why)) => shell.say(&format!(
                "warning: the redis-reset failed ({why}); the rule is in place but pooled connections may carry on"
            )),
            Err(other) => Err(other),
        }
    }

    fn studio_block(&self, shell: &mut dyn Shell, duration: u64) -> Result<(), FaultError> {
        let nsg_id = self.nsg_id();
        let target =
            format!("{nsg_id}/providers/Microsoft.Chaos/targets/Microsoft-NetworkSecurityGroup");
        shell.say(&format!(
            "network block on aca (chaos-studio): experiment {EXPERIMENT} runs Chaos Studio's NSG fault on {} for {duration} s",
            self.nsg()
        ))?;
        let put = |url: String, body: &Value| -> Step {
            Step::new(
                Tool::Az,
                [
                    "rest".to_string(),
                    "--method".into(),
                    "put".into(),
                    "--url".into(),
                    url,
                    "--body".into(),
                    body.to_string(),
                ],
            )
        };
        shell.run(&put(
            format!("https://management.azure.com{target}?api-version={CHAOS_API}"),
            &json!({"properties": {}}),
        ))?;
        shell.run(&put(
            format!("https://management.azure.com{target}/capabilities/SecurityRule-1.0?api-version={CHAOS_API}"),
            &json!({"properties": {}}),
        ))?;
        let mut create = put(self.experiment_url(""), &self.experiment(&target, duration));
        create
            .args
            .extend(["--query", "identity.principalId", "--output", "tsv"].map(String::from));
        let principal = shell.read("PRINCIPAL", &create)?;
        let principal = if shell.dry() {
            principal
        } else {
            principal.trim().to_string()
        };
        shell.run(&self.az([
            "role",
            "assignment",
            "create",
            "--assignee-object-id",
            &principal,
            "--assignee-principal-type",
            "ServicePrincipal",
            "--role",
            "Network Contributor",
            "--scope",
            &nsg_id,
            "--output",
            "none",
        ]))?;
        shell.run(&self.az([
            "rest",
            "--method",
            "post",
            "--url",
            &self.experiment_url("/start"),
        ]))?;
        if !shell.dry() {
            shell.say(&format!(
                "experiment {EXPERIMENT} started: Chaos Studio removes the rule after {duration} s; `chaoslab fault clear --target aca --engine chaos-studio --all` cancels it"
            ))?;
        }
        Ok(())
    }

    /// The Chaos Studio experiment: the seed's rule as the NSG fault's
    /// parameters.
    pub fn experiment(&self, target: &str, duration: u64) -> Value {
        let param = |key: &str, value: String| json!({"key": key, "value": value});
        json!({
            "location": self.location.as_deref().unwrap_or_default(),
            "identity": {"type": "SystemAssigned"},
            "tags": {"chaoslab-fault": "network-block"},
            "properties": {
                "selectors": [{
                    "type": "List",
                    "id": "nsg",
                    "targets": [{"type": "ChaosTarget", "id": target}],
                }],
                "steps": [{
                    "name": RULE_NAME,
                    "branches": [{
                        "name": "nsg",
                        "actions": [{
                            "type": "continuous",
                            "name": "urn:csci:microsoft:networkSecurityGroup:securityRule/1.0",
                            "duration": format!("PT{duration}S"),
                            "selectorId": "nsg",
                            "parameters": [
                                param("name", RULE_NAME.into()),
                                param("protocol", "TCP".into()),
                                param("sourceAddresses", r#"["*"]"#.into()),
                                param("destinationAddresses", r#"["*"]"#.into()),
                                param("action", "Deny".into()),
                                param("destinationPortRanges", format!(r#"["{REDIS_PORT}"]"#)),
                                param("sourcePortRanges", r#"["*"]"#.into()),
                                param("priority", RULE_PRIORITY.to_string()),
                                param("direction", "Inbound".into()),
                            ],
                        }],
                    }],
                }],
            },
        })
    }

    fn deploy(&self, shell: &mut dyn Shell, variant: &str) -> Result<(), FaultError> {
        let suffix = format!("{FAULT_SUFFIX}{}", self.stamp);
        shell.say(&format!(
            "deploy {variant} on aca: revision {}--{suffix} cannot start; the previous revision keeps serving",
            self.app()
        ))?;
        let mut update: Vec<String> = [
            "containerapp",
            "update",
            "--resource-group",
            self.rg(),
            "--name",
            self.app(),
        ]
        .map(String::from)
        .to_vec();
        match variant {
            "wrong-image" => update.extend(["--image".into(), MISSING_IMAGE.into()]),
            _ => update.extend(["--set-env-vars".into(), "REDIS_PORT=invalid".into()]),
        }
        update.extend([
            "--revision-suffix".into(),
            suffix.clone(),
            "--output".into(),
            "none".into(),
        ]);
        shell.run(&self.az(update))?;
        shell.run(&self.az([
            "containerapp",
            "revision",
            "list",
            "--resource-group",
            self.rg(),
            "--name",
            self.app(),
            "--query",
            &format!(
                "[?contains(name, '{suffix}')].{{name:name, active:properties.active, running:properties.runningState, health:properties.healthState}}"
            ),
            "--output",
            "table",
        ]))
    }

    fn list(&self, shell: &mut dyn Shell) -> Result<(), FaultError> {
        let mut lines = Vec::new();
        if self.nsg.is_some() {
            let mut list: Vec<String> = [
                "network",
                "nsg",
                "rule",
                "list",
                "--resource-group",
                self.rg(),
                "--nsg-name",
                self.nsg(),
            ]
            .map(String::from)
            .to_vec();
            list.extend(
                [
                    "--query".to_string(),
                    format!("[?name=='{RULE_NAME}'].{{name:name, priority:priority, access:access, direction:direction, port:destinationPortRange}}"),
                    "--output".into(),
                    "json".into(),
                ],
            );
            let rules = shell.read("RULES", &self.az(list))?;
            for rule in parse_list(&rules, shell.dry())? {
                lines.push(format!(
                    "nsg-rule/{}  priority {}  {} {} port {}",
                    rule["name"].as_str().unwrap_or("?"),
                    rule["priority"],
                    rule["access"].as_str().unwrap_or("?"),
                    rule["direction"].as_str().unwrap_or("?"),
                    rule["port"].as_str().unwrap_or("?"),
                ));
            }
        }
        if self.app.is_some() {
            let revisions = shell.read("REVISIONS", &self.fault_revisions("{name:name, active:properties.active, created:properties.createdTime, health:properties.healthState}"))?;
            for rev in parse_list(&revisions, shell.dry())? {
                lines.push(format!(
                    "revision/{}  created {}  health {}",
                    rev["name"].as_str().unwrap_or("?"),
                    rev["created"].as_str().unwrap_or("?"),
                    rev["health"].as_str().unwrap_or("?"),
                ));
            }
        }
        if shell.dry() {
            return Ok(());
        }
        if lines.is_empty() {
            lines.push("no active faults".into());
        }
        shell.say(&lines.join("\n"))
    }

    /// The active revisions whose suffix marks a fault, projected by `shape`.
    fn fault_revisions(&self, shape: &str) -> Step {
        self.az([
            "containerapp",
            "revision",
            "list",
            "--resource-group",
            self.rg(),
            "--name",
            self.app(),
            "--query",
            &format!("[?contains(name, '--{FAULT_SUFFIX}') && properties.active].{shape}"),
            "--output",
            "json",
        ])
    }

    fn clear(
        &self,
        shell: &mut dyn Shell,
        rule: bool,
        revisions: Option<&Option<String>>,
        experiment: bool,
    ) -> Result<(), FaultError> {
        shell.say("clear on aca: what chaoslab applied, by name")?;
        if rule {
            let mut delete = self.rule_step("delete");
            delete.extend(["--output", "none"].map(String::from));
            shell.run(&self.az(delete))?;
        }
        if let Some(only) = revisions {
            let names = self.revisions_to_clear(shell, only.as_ref())?;
            if !names.is_empty() {
                self.restore_good_revision(shell)?;
                for name in names {
                    shell.run(&self.revision_step("deactivate", ["--revision", &name]))?;
                }
            }
        }
        if experiment {
            shell.run(&self.az([
                "rest",
                "--method",
                "post",
                "--url",
                &self.experiment_url("/cancel"),
            ]))?;
        }
        Ok(())
    }

    /// The fault revisions to deactivate: `only`, or every active one
    /// (in a dry run, a loop over what `az` would list).
    fn revisions_to_clear(
        &self,
        shell: &mut dyn Shell,
        only: Option<&String>,
    ) -> Result<Vec<String>, FaultError> {
        if let Some(name) = only {
            return Ok(vec![name.clone()]);
        }
        let found = shell.read("FAULTY", &self.fault_revisions("name"))?;
        if shell.dry() {
            shell.say("for each NAME in FAULTY (nothing to do when it is empty):")?;
            return Ok(vec![var("NAME")]);
        }
        Ok(parse_list(&found, false)?
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect())
    }

    /// Back to the newest revision that is not a fault's: a copy of it
    /// becomes the latest revision.
    fn restore_good_revision(&self, shell: &mut dyn Shell) -> Result<(), FaultError> {
        let newest_good = format!(
            "sort_by([?!contains(name, '--{FAULT_SUFFIX}')], &properties.createdTime)[-1].name"
        );
        let good = shell.read(
            "GOOD",
            &self.revision_step("list", ["--query", &newest_good, "--output", "tsv"]),
        )?;
        let good = if shell.dry() {
            good
        } else {
            good.trim().to_string()
        };
        if good.is_empty() {
            return Err(FaultError::Failed(format!(
                "{} has no revision without a fault to go back to",
                self.app()
            )));
        }
        let suffix = format!("chaoslab-restore-{}", self.stamp);
        shell.run(&self.revision_step(
            "copy",
            ["--from-revision", &good, "--revision-suffix", &suffix],
        ))
    }

    /// `az containerapp revision VERB` on the app with `extra` arguments;
    /// output `none` unless `extra` names one.
    fn revision_step<const N: usize>(&self, verb: &str, extra: [&str; N]) -> Step {
        let mut args = vec![
            "containerapp",
            "revision",
            verb,
            "--resource-group",
            self.rg(),
            "--name",
            self.app(),
        ];
        args.extend(extra);
        if !extra.contains(&"--output") {
            args.extend(["--output", "none"]);
        }
        self.az(args)
    }
}

/// The engine of a fault on aca: the NSG rule (default) or Chaos Studio.
fn aca_engine(args: &TargetArgs) -> Result<Engine, FaultError> {
    match args.engine {
        None | Some(Engine::Nsg) => Ok(Engine::Nsg),
        Some(Engine::ChaosStudio) => Ok(Engine::ChaosStudio),
        Some(other) => Err(bad(format!(
            "--engine {} is for --target k8s; on aca use nsg (default) or chaos-studio",
            other.name()
        ))),
    }
}

/// The container app, from `--app` or azd's `AZURE_CONTAINER_APP_NAME`,
/// checked as Container Apps checks its names.
fn checked_app(args: &TargetArgs) -> Result<Option<String>, FaultError> {
    let app = args.app.clone().or_else(|| {
        std::env::var("AZURE_CONTAINER_APP_NAME")
            .ok()
            .filter(|s| !s.is_empty())
    });
    if let Some(app) = &app {
        check_dns_label("container app name", app)?;
        if app.len() > 32 {
            return Err(bad(format!(
                "container app name `{app}` is longer than Container Apps allows (32)"
            )));
        }
    }
    Ok(app)
}

/// The checked arguments a fault's action is chosen from.
struct Checked<'a> {
    args: &'a TargetArgs,
    engine: Engine,
    app: Option<String>,
}

impl Checked<'_> {
    fn need_app(&self) -> Result<String, FaultError> {
        self.app.clone().ok_or_else(|| {
            bad("this fault needs the container app: --app (or CHAOSLAB_APP / AZURE_CONTAINER_APP_NAME)")
        })
    }

    fn need_nsg(&self) -> Result<String, FaultError> {
        self.args
            .nsg
            .clone()
            .ok_or_else(|| bad("this fault needs the NSG: --nsg (or AZURE_NSG_NAME)"))
    }

    /// `network block`: the NSG rule (then a redis-reset through the
    /// ingress unless `no_reset`), or Chaos Studio's fault.
    fn network_block(
        &self,
        mode: &str,
        duration: i64,
        no_reset: bool,
    ) -> Result<Action, FaultError> {
        let duration = seconds("--duration", duration)?;
        if mode != "deny-new" {
            return Err(bad(format!(
                "--mode {mode} is not available on aca: an NSG rule denies new connections (deny-new, as the seed's rule)"
            )));
        }
        self.need_nsg()?;
        if self.engine != Engine::ChaosStudio {
            if !no_reset {
                self.need_app()?;
            }
            return Ok(Action::Block {
                duration,
                reset: !no_reset,
            });
        }
        if duration == 0 {
            return Err(bad(
                "Chaos Studio's faults need a duration: --duration 1 or more seconds",
            ));
        }
        need_subscription(self.args)?;
        let location = self
            .args
            .location
            .clone()
            .ok_or_else(|| bad("--engine chaos-studio needs --location (or AZURE_LOCATION)"))?;
        if location.is_empty() || !location.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad(format!(
                "--location `{location}` is not an Azure region name"
            )));
        }
        Ok(Action::StudioBlock { duration })
    }

    /// `deploy`: a failing revision (the seed's missing image, or a bad
    /// environment).
    fn deploy(&self, variant: &str) -> Result<Action, FaultError> {
        match variant {
            "wrong-image" | "bad-env" => {}
            "bad-port" => {
                return Err(bad(
                    "deploy bad-port is a local-lab fault; on aca use wrong-image or bad-env",
                ));
            }
            other => {
                return Err(bad(format!(
                    "unknown deploy variant `{other}`: use wrong-image or bad-env"
                )));
            }
        }
        self.need_app()?;
        Ok(Action::Deploy {
            variant: variant.to_string(),
        })
    }

    /// `list`: the rule and the fault revisions.
    fn list(&self) -> Result<Action, FaultError> {
        if self.args.nsg.is_none() && self.app.is_none() {
            return Err(bad("fault list on aca needs --nsg and/or --app"));
        }
        if self.engine == Engine::ChaosStudio {
            return Err(bad(
                "fault list on aca lists the NSG rule and the revisions; see the experiment in the portal or with `az rest`",
            ));
        }
        Ok(Action::List)
    }

    /// `clear`: everything chaoslab applied (no `id`), or the one fault `id`
    /// names.
    fn clear(&self, id: Option<&str>) -> Result<Action, FaultError> {
        let clear = |rule, revisions, experiment| Action::Clear {
            rule,
            revisions,
            experiment,
        };
        let Some(id) = id else {
            if self.args.nsg.is_none() && self.app.is_none() {
                return Err(bad("fault clear on aca needs --nsg and/or --app"));
            }
            if self.engine == Engine::ChaosStudio {
                need_subscription(self.args)?;
            }
            let revisions = self.app.as_ref().map(|_| None);
            return Ok(clear(
                self.args.nsg.is_some(),
                revisions,
                self.engine == Engine::ChaosStudio,
            ));
        };
        match id.split_once('/') {
            Some(("nsg-rule", RULE_NAME)) => {
                self.need_nsg()?;
                Ok(clear(true, None, false))
            }
            Some(("revision", name)) if name.contains(&format!("--{FAULT_SUFFIX}")) => {
                check_azure_name("revision name", name, 64)?;
                self.need_app()?;
                Ok(clear(false, Some(Some(name.to_string())), false))
            }
            Some(("experiment", EXPERIMENT)) => {
                need_subscription(self.args)?;
                Ok(clear(false, None, true))
            }
            _ => Err(bad(format!(
                "`{id}` is not an aca fault id: nsg-rule/{RULE_NAME}, revision/<app>--{FAULT_SUFFIX}…, experiment/{EXPERIMENT}, or --all"
            ))),
        }
    }
}

fn parse_list(text: &str, dry: bool) -> Result<Vec<Value>, FaultError> {
    if dry || text.trim().is_empty() {
        return Ok(Vec::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(Value::Null) => Ok(Vec::new()),
        Ok(_) | Err(_) => Err(FaultError::Failed(format!(
            "az printed something chaoslab cannot read as a JSON list: {}",
            text.lines().next().unwrap_or("")
        ))),
    }
}

fn need_subscription(args: &TargetArgs) -> Result<(), FaultError> {
    let subscription = args.subscription.as_deref().ok_or_else(|| {
        bad("--engine chaos-studio needs --subscription (or AZURE_SUBSCRIPTION_ID)")
    })?;
    check_guid(subscription)
}

fn check_guid(s: &str) -> Result<(), FaultError> {
    let groups: Vec<&str> = s.split('-').collect();
    let ok = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "subscription `{s}` is not a subscription id (a GUID)"
        )))
    }
}

/// Azure's rule for resource group names: 1-90 of letters, digits, `-_.()`,
/// not ending with a period.
fn check_resource_group(name: &str) -> Result<(), FaultError> {
    let ok = !name.is_empty()
        && name.len() <= 90
        && !name.ends_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'));
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "resource group `{name}` is not a valid name (1-90 letters, digits, - _ . ( ), not ending with a period)"
        )))
    }
}

/// NSG and revision names: letters, digits, `_.-`, starting with a letter
/// or digit.
fn check_azure_name(what: &str, name: &str, max: usize) -> Result<(), FaultError> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "{what} `{name}` is not a valid name (letters, digits, - _ ., at most {max})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_azure_checks_them() {
        assert!(check_resource_group("rg-chaos_lab.(1)").is_ok());
        assert!(check_resource_group("rg.").is_err());
        assert!(check_resource_group("rg;rm").is_err());
        assert!(check_guid("00000000-1111-2222-3333-444444444444").is_ok());
        assert!(check_guid("not-a-guid").is_err());
        assert!(check_azure_name("NSG name", "nsg-redis_1.a", 80).is_ok());
        assert!(check_azure_name("NSG name", "-nsg", 80).is_err());
    }
}
