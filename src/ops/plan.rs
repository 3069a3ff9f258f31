use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use super::replace;
use super::validate::expand_home;
use super::validate::{load, load_with_services};
use super::{Context, OpsError, Result};
use crate::cloud::{Cloud, ImageFacts};
use crate::compose;
use crate::model::resources::{
    Inputs, LABEL_ADDRESS, Resource, SecretInput, ServiceInput, config_address, expand,
    expand_apps, fit_targets, network_address, service_address, sha256_hex, swarm_secret_address,
    swarm_secret_name, value_hmac,
};
use crate::model::{
    Address, AmiSource, Role, Spec, SshSettings, Stack, SwarmConfigSpec, SwarmNetworkSpec,
    ValueSource,
};
use crate::plan::{self, PLAN_FORMAT_VERSION, Plan};
use crate::state::{Backend, ResourceState, State};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanFormat {
    Text,
    Json,
    Markdown,
}

pub struct PlanOptions {
    pub out: Option<PathBuf>,
    pub format: PlanFormat,
    pub request: Request,
    pub lock_timeout: Duration,
}

/// What a plan is asked for beyond the stack file.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Remove everything the stack owns.
    pub destroy: bool,
    /// Replace these objects though nothing about them changed (Terraform's `-replace`).
    pub replace: Vec<Address>,
    /// Roll nodes onto their pool's current AMI (`infra roll-nodes`).
    pub roll: Option<Roll>,
    /// Workers replaced at once in a rolling replacement (at least 1; managers: always 1).
    pub max_unavailable: usize,
    /// Destroy only: leave the Swarm alone (its nodes are gone or out of reach) and remove the
    /// cloud objects.
    pub skip_swarm: bool,
}

/// Which nodes `infra roll-nodes` replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Roll {
    /// Those whose AMI is not their pool's current one.
    Outdated,
    /// Every node.
    All,
}

/// A fresh plan, and what applying it needs.
pub(super) struct Prepared {
    pub plan: Plan,
    pub cloud: Cloud,
    pub state: Option<State>,
}

/// Shows what apply would change; returns whether anything would.
pub async fn plan(ctx: &Context, opts: PlanOptions) -> Result<bool> {
    let (loaded, source) = if opts.request.destroy {
        load(ctx)?
    } else {
        load_with_services(ctx)?
    };
    let stack = loaded.stack;
    let backend = super::backend(ctx, &stack.state, stack.region.as_deref()).await?;
    let lock = backend.lock("plan", opts.lock_timeout).await?;
    let result = prepare(ctx, &stack, &source, &backend, &opts.request).await;
    lock.release().await;
    let plan = result?.plan;
    match opts.format {
        PlanFormat::Text => print!("{}", plan::text::render(&plan, ctx.color)),
        PlanFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&plan::json::render(&plan)).expect("serializes")
        ),
        PlanFormat::Markdown => print!("{}", plan::markdown::render(&plan)),
    }
    if let Some(out) = &opts.out {
        save_plan(&plan, out)?;
        if opts.format == PlanFormat::Text {
            println!(
                "\nSaved the plan to {}. Apply exactly it with: infra apply {}",
                out.display(),
                out.display()
            );
        }
    }
    Ok(plan.has_changes())
}

pub(super) async fn prepare(
    ctx: &Context,
    stack: &Stack,
    source: &str,
    backend: &Backend,
    request: &Request,
) -> Result<Prepared> {
    let destroy = request.destroy;
    let state = backend.load().await?;
    if let Some(s) = &state
        && !s.pending.is_empty()
    {
        let what: Vec<String> = s
            .pending
            .iter()
            .map(|i| format!("{} ({})", i.address, i.action))
            .collect();
        eprintln!(
            "note: the previous run stopped while {} was in flight; this plan starts from what exists in AWS.",
            what.join(", ")
        );
    }
    let cloud = Cloud::connect(&stack.name, stack.region.as_deref(), ctx.calls.clone()).await?;
    // The key that hashes secret values; the first plan of a stack with secrets makes it.
    let key = cloud
        .secrets_key(!destroy && !stack.apps.secrets.is_empty())
        .await?;
    let ((mut desired, published), mut live, secrets) = tokio::try_join!(
        async {
            if destroy {
                Ok(Default::default())
            } else {
                desired(ctx, &cloud, stack, key.as_deref()).await
            }
        },
        async { cloud.read_live().await.map_err(OpsError::from) },
        async {
            cloud
                .read_secrets(key.as_deref())
                .await
                .map_err(OpsError::from)
        },
    )?;
    live.extend(secrets);
    let mut ssh = stack.ssh.clone();
    let mut images = BTreeMap::new();
    let mut notices = Vec::new();
    let skip_swarm = destroy && request.skip_swarm;
    if skip_swarm {
        notices.push("the Swarm is left alone (--skip-swarm): its members, services and secrets go with the instances, and nothing is run on the nodes.".to_string());
    }
    if stack.swarm && !skip_swarm {
        let specs = desired
            .iter()
            .map(|r| &r.spec)
            .chain(live.values().map(|o| &o.spec));
        images = super::checks::describe_images(ctx, &cloud, stack, source, &amis(specs)).await?;
        ssh = users_for(&stack.ssh, &images)?;
        let had_swarm = state
            .as_ref()
            .is_some_and(|s| s.resources.keys().any(|a| a.as_str().starts_with("swarm.")));
        let pinned = state
            .as_ref()
            .map(|s| s.host_keys.clone())
            .unwrap_or_default();
        let (swarm, names) = read_swarm(ctx, &cloud, stack, &ssh, &live, had_swarm, &pinned)
            .await
            .map_err(|e| match destroy {
                true => OpsError::Usage(format!(
                    "{e}\n  A destroy needs a manager to take the Swarm down first. If the nodes are gone or will not answer again, run `infra destroy --skip-swarm`: it removes the cloud objects and leaves the Swarm to go with them."
                )),
                false => e,
            })?;
        live.extend(swarm);
        if let (Some(project), false) = (&stack.apps.project, destroy) {
            check_externals(stack, project, names.as_ref())?;
        }
    }
    adopt_networks(&mut live, &desired);
    replace::name_key_pair(&mut desired, &live);
    let (to_replace, newer) = replace::pin_amis(&mut desired, &live, &published, request);
    notices.extend(newer);
    if let Some(unknown) = to_replace.iter().find(|a| !live.contains_key(*a)) {
        return Err(OpsError::Usage(format!(
            "--replace {unknown}: the stack has no such object now. Addresses are as `infra plan` shows them (node.worker[1], swarm.node.worker[1], lb…); `infra status` lists the nodes."
        )));
    }
    let options = plan::DiffOptions {
        replace: to_replace,
        max_unavailable: request.max_unavailable,
    };
    let changes = plan::diff_with(&desired, state.as_ref(), &live, &options);
    check_network_replacements(&changes)?;
    if !destroy {
        check_bastion_removal(&changes)?;
    }
    plan::graph::steps(&changes)?;
    if !destroy {
        plan::quorum::check(&changes, &live)?;
        super::checks::account(ctx, &cloud, stack, source, &changes, &images).await?;
    }
    let observed = changes
        .iter()
        .filter_map(|c| Some((c.address.clone(), live.get(&c.address)?.outputs.clone())))
        .filter(|(_, outputs)| !outputs.is_empty())
        .collect();
    let unchanged: BTreeMap<_, _> = live
        .into_iter()
        .filter(|(a, _)| !changes.iter().any(|c| &c.address == a))
        .map(|(a, o)| {
            let state = ResourceState {
                id: o.id,
                spec: with_judgement(o.spec, desired.iter().find(|r| r.address == a)),
                outputs: o.outputs,
            };
            (a, state)
        })
        .collect();
    let plan = Plan {
        format_version: PLAN_FORMAT_VERSION,
        stack: stack.name.clone(),
        region: stack.region.clone(),
        lineage: state.as_ref().map(|s| s.lineage),
        serial: state.as_ref().map_or(0, |s| s.serial),
        stack_sha256: sha256_hex(source),
        created: chrono::Utc::now(),
        destroy,
        changes,
        unchanged,
        ssh: (stack.swarm && !skip_swarm).then_some(ssh),
        deploy: stack.apps.deploy.clone(),
        notices,
        observed,
    };
    Ok(Prepared { plan, cloud, state })
}

/// The Swarm's members as `infra status` shows them: any failure to read is reported.
pub(super) async fn read_swarm_live(
    ctx: &Context,
    cloud: &Cloud,
    stack: &Stack,
    live: &crate::model::Live,
    pinned: &[String],
) -> Result<crate::model::Live> {
    let ssh = with_image_users(cloud, &stack.ssh, live.values().map(|o| &o.spec)).await?;
    Ok(read_swarm(ctx, cloud, stack, &ssh, live, true, pinned)
        .await?
        .0)
}

/// What the compose file marks `external` must exist before anything changes (docker stack
/// deploy would fail half-way). Before the Swarm exists nothing can be checked: a warning.
fn check_externals(
    stack: &Stack,
    project: &compose::Project,
    names: Option<&BTreeSet<(String, String)>>,
) -> Result<()> {
    let file = stack
        .apps
        .compose
        .as_ref()
        .map_or("templates/stack.yml.tera", |c| c.path.as_str());
    let Some(names) = names else {
        for e in &project.externals {
            eprintln!(
                "warning: {file}: external {} {:?} cannot be checked until the Swarm exists; docker stack deploy fails if it is missing",
                e.kind.noun(),
                e.name
            );
        }
        return Ok(());
    };
    // Docker's own networks are never listed as swarm-scoped, and stack deploy takes them as
    // they are.
    let builtin = |e: &compose::External| {
        e.kind == compose::Kind::Network && ["host", "bridge", "none"].contains(&e.name.as_str())
    };
    let missing: Vec<String> = project
        .externals
        .iter()
        .filter(|e| !builtin(e) && !names.contains(&(e.kind.noun().to_string(), e.name.clone())))
        .map(|e| {
            format!(
                "{} {:?} ({}s.{})",
                e.kind.noun(),
                e.name,
                e.kind.noun(),
                e.key
            )
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(OpsError::Usage(format!(
        "{file}: external {} not exist on the Swarm: {}.\n  Nothing was changed. Create {} on a manager first (`infra ssh node.manager[0] -- docker secret create NAME -`, the value on stdin; `docker config create`, `docker network create --driver overlay`), or drop `external: true` and let infra create {}.",
        if missing.len() == 1 {
            "object does"
        } else {
            "objects do"
        },
        missing.join(", "),
        if missing.len() == 1 { "it" } else { "them" },
        if missing.len() == 1 { "it" } else { "them" },
    )))
}

/// Removing `[bastion]` changes how the nodes are reached (their group then opens port 22 to
/// admin_cidrs again): Swarm steps in the same apply could be cut off half-way, so the removal is
/// an apply of its own.
fn check_bastion_removal(changes: &[plan::Change]) -> Result<()> {
    let removed = changes.iter().any(|c| {
        c.action == plan::Action::Delete
            && matches!(&c.before, Some(Spec::Instance(i)) if i.pool == Role::Bastion.pool())
    });
    let swarm: Vec<String> = changes
        .iter()
        .filter(|c| c.spec().on_swarm())
        .map(|c| c.address.to_string())
        .collect();
    if !removed || swarm.is_empty() {
        return Ok(());
    }
    Err(OpsError::Usage(format!(
        "node.bastion[0]: removing [bastion] changes how infra reaches the nodes, and this plan also changes the Swarm ({}).\n  Apply the other changes with [bastion] still in the stack file, then remove it in an apply of its own.",
        swarm.join(", ")
    )))
}

/// Docker cannot change a network in place, nor remove one that services use: a network whose
/// definition changed while services still use it cannot be replaced by one apply.
fn check_network_replacements(changes: &[plan::Change]) -> Result<()> {
    for c in changes {
        let (Some(Spec::SwarmNetwork(n)), plan::Action::Replace) = (&c.before, c.action) else {
            continue;
        };
        let users: Vec<String> = changes
            .iter()
            .filter(
                |u| matches!(&u.after, Some(Spec::Service(s)) if s.networks.contains(&c.address)),
            )
            .map(|u| u.address.to_string())
            .collect();
        if !users.is_empty() {
            return Err(OpsError::Usage(format!(
                "{}: the definition of network {:?} changed, and Docker cannot change a network in place nor remove one that {} still use.\n  Give the changed network a new key in the compose file (the services move onto it and the old one is removed), or remove the services from the file, apply, and add them back.",
                c.address,
                n.name,
                users.join(", ")
            )));
        }
    }
    Ok(())
}

/// `ssh` with the login user of each image these instances run (one DescribeImages call).
pub(super) async fn with_image_users<'a>(
    cloud: &Cloud,
    ssh: &SshSettings,
    specs: impl Iterator<Item = &'a Spec>,
) -> Result<SshSettings> {
    users_for(ssh, &cloud.describe_images(&amis(specs)).await?)
}

/// The AMIs these instances run or will run, once each.
fn amis<'a>(specs: impl Iterator<Item = &'a Spec>) -> Vec<String> {
    let amis: BTreeSet<String> = specs
        .filter_map(|s| match s {
            Spec::Instance(i) => Some(i.ami.clone()),
            _ => None,
        })
        .collect();
    amis.into_iter().collect()
}

/// `ssh` with the login user of each image (see [`crate::model::image::login_user`]). A
/// Windows image is an error; so is one whose name tells no user, unless `[ssh] user` is set.
fn users_for(ssh: &SshSettings, images: &BTreeMap<String, ImageFacts>) -> Result<SshSettings> {
    let mut ssh = ssh.clone();
    for (id, image) in images {
        if image.windows {
            return Err(OpsError::Usage(format!(
                "{id} ({:?}) is a Windows image: Swarm nodes run Linux. Choose a Linux AMI for the pool's `ami`.",
                image.name
            )));
        }
        match crate::model::image::login_user(&image.name) {
            Some(user) => {
                ssh.image_users.insert(id.clone(), user.to_string());
            }
            None if ssh.user.is_none() => {
                return Err(OpsError::Usage(format!(
                    "infra cannot tell which user logs in to {id} ({:?}): set [ssh] user to the user its cloud-init creates for the key pair.",
                    image.name
                )));
            }
            None => {}
        }
    }
    Ok(ssh)
}

/// The Swarm's members, read with one SSH call to a reachable manager. Nothing before the Swarm
/// exists; an error when the state knows a Swarm but no manager answers (a plan that ignored it
/// would propose to build a second one).
async fn read_swarm(
    ctx: &Context,
    cloud: &Cloud,
    stack: &Stack,
    ssh: &SshSettings,
    live: &crate::model::Live,
    had_swarm: bool,
    pinned: &[String],
) -> Result<(crate::model::Live, Option<BTreeSet<(String, String)>>)> {
    let instances = live
        .iter()
        .map(|(a, o)| (a, o.id.as_str(), &o.spec, &o.outputs));
    let nodes = crate::swarm::nodes(instances, ssh);
    let managers: Vec<_> = nodes
        .iter()
        .filter(|n| n.role == "manager")
        .cloned()
        .collect();
    if managers.is_empty() {
        return Ok((Default::default(), None));
    }
    let swarm = swarm_ops(ctx, cloud, &stack.name, ssh, pinned);
    match swarm.read(&managers).await {
        Ok(Some((_, view))) => Ok((swarm.observe(&view, &nodes), Some(view.names))),
        Ok(None) => Ok((Default::default(), None)),
        Err(e) if had_swarm => Err(e.into()),
        Err(e) => {
            tracing::debug!("no Swarm to read yet: {e}");
            Ok((Default::default(), None))
        }
    }
}

pub(super) fn swarm_ops<'a>(
    ctx: &Context,
    cloud: &'a Cloud,
    stack: &str,
    ssh: &crate::model::SshSettings,
    pinned: &[String],
) -> crate::swarm::Swarm<'a> {
    crate::swarm::Swarm {
        cloud,
        stack: stack.to_string(),
        settings: ssh.clone(),
        dir: ctx.workspace.state_dir(),
        pinned: pinned.to_vec(),
    }
}

/// The stack's objects as they should be: AMIs resolved (one SSM call per distinct parameter),
/// user-data rendered, then the pure expansion; then secrets and services.
/// A live spec with the plan's judgements that are not compared, from its desired twin: what
/// apply waits for once targets are registered (AWS cannot say; a live read defaults it).
fn with_judgement(live: Spec, desired: Option<&Resource>) -> Spec {
    match (live, desired.map(|r| &r.spec)) {
        (Spec::Targets(mut t), Some(Spec::Targets(d))) => {
            t.health = d.health.clone();
            Spec::Targets(t)
        }
        (live, _) => live,
    }
}

/// Networks an older `docker stack deploy` made for the stack carry no definition hash (and
/// Docker cannot add labels to a network): one that matches its desired twin in everything the
/// Swarm reports is taken as it is, instead of being replaced under the services using it.
fn adopt_networks(live: &mut crate::model::Live, desired: &[Resource]) {
    for r in desired {
        let Spec::SwarmNetwork(want) = &r.spec else {
            continue;
        };
        if let Some(Spec::SwarmNetwork(have)) = live.get_mut(&r.address).map(|o| &mut o.spec)
            && have.definition_sha256.is_empty()
            && (
                &have.name,
                &have.driver,
                have.attachable,
                have.internal,
                have.encrypted,
            ) == (
                &want.name,
                &want.driver,
                want.attachable,
                want.internal,
                want.encrypted,
            )
        {
            have.definition_sha256 = want.definition_sha256.clone();
        }
    }
}

async fn desired(
    ctx: &Context,
    cloud: &Cloud,
    stack: &Stack,
    key: Option<&str>,
) -> Result<(Vec<Resource>, BTreeMap<String, replace::Published>)> {
    let (mut resources, published) = cloud_resources(cloud, stack).await?;
    let (apps, services) = apps(ctx, stack, key.unwrap_or_default())?;
    fit_targets(stack, &mut resources, stack.swarm.then_some(&services[..]));
    resources.extend(apps);
    Ok((resources, published))
}

/// Secrets (read from their sources, kept only as keyed hashes; stored in Parameter Store
/// whether or not infra runs the Swarm) and, with the Swarm, services (rendered into one compose
/// document each, pointing at the Swarm secrets of the current values); and the services, for
/// the target group.
fn apps(ctx: &Context, stack: &Stack, key: &str) -> Result<(Vec<Resource>, Vec<ServiceInput>)> {
    let dir = ctx.workspace.stack_dir();
    let mut secrets = Vec::new();
    for s in &stack.apps.secrets {
        let source = match &s.source {
            ValueSource::Env(var) => format!("env:{var}"),
            ValueSource::File(path) => format!("file:{}", expand_home(&dir, path).display()),
        };
        let address = Address::new(format!("secret.{}", s.name));
        let value = crate::cloud::read_source(&address, &source)?;
        if value.len() > s.max_bytes() {
            let fix = if s.advanced {
                "Parameter Store keeps at most 8 KB a value: store the rest elsewhere (S3) and keep its location here"
            } else {
                "set tier = \"advanced\" for it (values up to 8 KB; AWS charges for advanced parameters)"
            };
            return Err(OpsError::Usage(format!(
                "{address}: the value from {} has {} bytes, more than Parameter Store's {} tier takes ({} bytes).\n  {fix}",
                s.source,
                value.len(),
                if s.advanced { "advanced" } else { "standard" },
                s.max_bytes()
            )));
        }
        secrets.push(SecretInput {
            name: s.name.clone(),
            source,
            value_hmac: value_hmac(key, &value),
            advanced: s.advanced,
        });
    }
    if !stack.swarm {
        return Ok((expand_apps(&stack.name, &secrets, &[], false), Vec::new()));
    }
    let project = stack
        .apps
        .project
        .as_ref()
        .expect("ops::validate::load_with_services reads the project when the Swarm is on");
    let names = compose::Names {
        secrets: secrets
            .iter()
            .map(|s| (s.name.clone(), swarm_secret_name(&s.name, &s.value_hmac)))
            .collect(),
        configs: project
            .configs
            .iter()
            .map(|c| (c.key.clone(), c.name.clone()))
            .collect(),
    };
    let mut objects: Vec<Resource> = project
        .networks
        .iter()
        .map(|n| Resource {
            address: network_address(&n.key),
            spec: Spec::SwarmNetwork(network_spec(n)),
        })
        .collect();
    objects.extend(project.configs.iter().map(|c| Resource {
        address: config_address(&c.name),
        spec: Spec::SwarmConfig(SwarmConfigSpec {
            name: c.name.clone(),
            content_sha256: c.sha256.clone(),
            template_driver: c.template_driver.clone(),
            content: c.content.clone(),
        }),
    }));
    let ours = |keys: &[String], addresses: &dyn Fn(&str) -> Option<Address>| {
        let mut list: Vec<Address> = keys.iter().filter_map(|k| addresses(k)).collect();
        list.sort();
        list
    };
    let services: Vec<ServiceInput> = project
        .services
        .iter()
        .map(|doc| {
            let address = service_address(&doc.name);
            let labels = BTreeMap::from([(LABEL_ADDRESS.to_string(), address.to_string())]);
            let (definition, hash) = doc.document(project, &names, &labels);
            ServiceInput {
                name: doc.name.clone(),
                image: doc.image(),
                mode: doc.mode(),
                ports: doc.ports(),
                placement: doc.placement(),
                secrets: ours(&doc.secrets, &|k| {
                    names.secrets.get(k).map(|n| swarm_secret_address(n))
                }),
                networks: ours(&doc.networks, &|k| {
                    project
                        .networks
                        .iter()
                        .any(|n| n.key == k)
                        .then(|| network_address(k))
                }),
                configs: ours(&doc.configs, &|k| {
                    names.configs.get(k).map(|n| config_address(n))
                }),
                definition: definition.to_string(),
                definition_sha256: hash,
            }
        })
        .collect();
    let mut resources = expand_apps(&stack.name, &secrets, &services, true);
    resources.extend(objects);
    Ok((resources, services))
}

/// A network as planned, with the `docker network create` flags that make it.
fn network_spec(n: &compose::NetworkDef) -> SwarmNetworkSpec {
    let mut args = vec!["--driver".to_string(), n.driver.clone()];
    args.extend(n.attachable.then(|| "--attachable".to_string()));
    args.extend(n.internal.then(|| "--internal".to_string()));
    for (k, v) in &n.options {
        args.extend([
            "--opt".to_string(),
            if v.is_empty() {
                k.clone()
            } else {
                format!("{k}={v}")
            },
        ]);
    }
    for (k, v) in &n.labels {
        args.extend(["--label".to_string(), format!("{k}={v}")]);
    }
    for s in &n.subnets {
        args.extend(["--subnet".to_string(), s.clone()]);
    }
    SwarmNetworkSpec {
        name: n.name.clone(),
        driver: n.driver.clone(),
        attachable: n.attachable,
        internal: n.internal,
        encrypted: n.encrypted(),
        definition_sha256: n.sha256.clone(),
        create_args: args,
    }
}

async fn cloud_resources(
    cloud: &Cloud,
    stack: &Stack,
) -> Result<(Vec<Resource>, BTreeMap<String, replace::Published>)> {
    let resolve = |source: AmiSource| async move {
        match source {
            AmiSource::Id(id) => Ok::<_, OpsError>((id, None)),
            AmiSource::SsmParameter(p) => {
                let (ami, modified) = cloud.ssm_parameter(&p).await?;
                let published = replace::Published {
                    parameter: p,
                    ami: ami.clone(),
                    modified,
                };
                Ok((ami, Some(published)))
            }
        }
    };
    let ((manager_ami, manager_pub), (worker_ami, worker_pub)) =
        if stack.managers.ami == stack.workers.ami {
            let resolved = resolve(stack.managers.ami.clone()).await?;
            (resolved.clone(), resolved)
        } else {
            tokio::try_join!(
                resolve(stack.managers.ami.clone()),
                resolve(stack.workers.ami.clone())
            )?
        };
    let mut published = BTreeMap::new();
    for (pool, p) in [(Role::Manager, manager_pub), (Role::Worker, worker_pub)] {
        if let Some(p) = p {
            published.insert(pool.pool().to_string(), p);
        }
    }
    let render = |role| {
        crate::render::user_data(stack, role).map_err(|source| OpsError::Template {
            what: "user-data",
            source,
        })
    };
    let bastion = match &stack.bastion {
        None => None,
        Some(b) if b.ami == stack.managers.ami => {
            Some((manager_ami.clone(), render(Role::Bastion)?))
        }
        Some(b) => Some((resolve(b.ami.clone()).await?.0, render(Role::Bastion)?)),
    };
    let inputs = Inputs {
        manager_ami,
        worker_ami,
        manager_user_data: render(Role::Manager)?,
        worker_user_data: render(Role::Worker)?,
        bastion,
    };
    Ok((expand(stack, &inputs), published))
}

/// Writes the plan atomically, so a killed run never leaves half a plan file behind.
fn save_plan(plan: &Plan, out: &std::path::Path) -> Result<()> {
    let io = |source| OpsError::Io {
        what: "cannot write plan file",
        path: out.display().to_string(),
        source,
    };
    let tmp = out.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(plan).expect("serializes")).map_err(io)?;
    std::fs::rename(&tmp, out).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HealthWait, TargetsSpec};

    fn targets(health: HealthWait) -> Spec {
        Spec::Targets(TargetsSpec {
            target_group: Address::new("tg.8080"),
            instances: vec![Address::new("node.worker[0]")],
            health,
        })
    }

    /// A live read cannot know what apply waits for: an unchanged target group's targets take
    /// it from the desired spec, or a resumed apply would wait for health no node can give.
    #[test]
    fn unchanged_targets_keep_the_plans_health_judgement() {
        let skip = HealthWait::Skip("[swarm] enabled = false".into());
        let desired = Resource {
            address: Address::new("targets.8080"),
            spec: targets(skip.clone()),
        };
        assert_eq!(
            with_judgement(targets(HealthWait::All), Some(&desired)),
            targets(skip)
        );
        assert_eq!(
            with_judgement(targets(HealthWait::All), None),
            targets(HealthWait::All)
        );
    }
}
