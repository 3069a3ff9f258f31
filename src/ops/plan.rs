use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use super::validate::expand_home;
use super::validate::load;
use super::{Context, OpsError, Result};
use crate::cloud::{Cloud, ImageFacts};
use crate::model::resources::{
    Inputs, LABEL_ADDRESS, Resource, SecretInput, ServiceInput, expand, expand_apps, fit_targets,
    service_address, sha256_hex, swarm_secret_address, swarm_secret_name, value_hmac,
};
use crate::model::{Address, AmiSource, Role, Spec, SshSettings, Stack, ValueSource};
use crate::plan::{self, PLAN_FORMAT_VERSION, Plan};
use crate::render::compose;
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
    pub destroy: bool,
    pub lock_timeout: Duration,
}

/// A fresh plan, and what applying it needs.
pub(super) struct Prepared {
    pub plan: Plan,
    pub cloud: Cloud,
    pub state: Option<State>,
}

/// Shows what apply would change; returns whether anything would.
pub async fn plan(ctx: &Context, opts: PlanOptions) -> Result<bool> {
    let (loaded, source) = load(ctx)?;
    let stack = loaded.stack;
    let backend = super::backend(ctx, &stack.state, stack.region.as_deref()).await?;
    let lock = backend.lock("plan", opts.lock_timeout).await?;
    let result = prepare(ctx, &stack, &source, &backend, opts.destroy).await;
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
    destroy: bool,
) -> Result<Prepared> {
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
    let (desired, mut live, secrets) = tokio::try_join!(
        async {
            if destroy {
                Ok(Vec::new())
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
    if stack.swarm {
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
        live.extend(read_swarm(ctx, &cloud, stack, &ssh, &live, had_swarm, &pinned).await?);
    }
    let changes = plan::diff(&desired, state.as_ref(), &live);
    plan::graph::steps(&changes)?;
    if !destroy {
        plan::quorum::check(&changes, &live)?;
        super::checks::account(ctx, &cloud, stack, source, &changes, &images).await?;
    }
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
        ssh: stack.swarm.then_some(ssh),
        deploy: stack.apps.deploy.clone(),
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
    read_swarm(ctx, cloud, stack, &ssh, live, true, pinned).await
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
) -> Result<crate::model::Live> {
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
        return Ok(Default::default());
    }
    let swarm = swarm_ops(ctx, cloud, &stack.name, ssh, pinned);
    match swarm.read(&managers).await {
        Ok(Some((_, view))) => {
            let by_ip = nodes
                .iter()
                .map(|n| (n.private_ip.clone(), n.host.address.clone()))
                .collect();
            Ok(swarm.observe(&view, &by_ip))
        }
        Ok(None) => Ok(Default::default()),
        Err(e) if had_swarm => Err(e.into()),
        Err(e) => {
            tracing::debug!("no Swarm to read yet: {e}");
            Ok(Default::default())
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

async fn desired(
    ctx: &Context,
    cloud: &Cloud,
    stack: &Stack,
    key: Option<&str>,
) -> Result<Vec<Resource>> {
    let mut resources = cloud_resources(cloud, stack).await?;
    let (apps, services) = apps(ctx, stack, key.unwrap_or_default())?;
    fit_targets(stack, &mut resources, stack.swarm.then_some(&services[..]));
    resources.extend(apps);
    Ok(resources)
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
    let swarm_names: BTreeMap<String, String> = secrets
        .iter()
        .map(|s| (s.name.clone(), swarm_secret_name(&s.name, &s.value_hmac)))
        .collect();
    let file = stack.apps.compose.as_ref().map_or_else(
        || "templates/stack.yml.tera".to_string(),
        |c| c.path.clone(),
    );
    let docs = compose::services(&compose::compose_text(stack)?, &file)?;
    let services: Vec<ServiceInput> = docs
        .iter()
        .map(|doc| {
            let address = service_address(&doc.name);
            let labels = BTreeMap::from([(LABEL_ADDRESS.to_string(), address.to_string())]);
            let (definition, hash) = doc.document(&swarm_names, &labels);
            let mut secrets: Vec<Address> = doc
                .secrets()
                .iter()
                .filter_map(|n| swarm_names.get(n))
                .map(|n| swarm_secret_address(n))
                .collect();
            secrets.sort();
            ServiceInput {
                name: doc.name.clone(),
                image: doc.image(),
                mode: doc.mode(),
                ports: doc.ports(),
                placement: doc.placement(),
                secrets,
                definition: definition.to_string(),
                definition_sha256: hash,
            }
        })
        .collect();
    Ok((
        expand_apps(&stack.name, &secrets, &services, true),
        services,
    ))
}

async fn cloud_resources(cloud: &Cloud, stack: &Stack) -> Result<Vec<Resource>> {
    let resolve = |source: AmiSource| async move {
        match source {
            AmiSource::Id(id) => Ok::<_, OpsError>(id),
            AmiSource::SsmParameter(p) => Ok(cloud.ssm_parameter(&p).await?),
        }
    };
    let (manager_ami, worker_ami) = if stack.managers.ami == stack.workers.ami {
        let ami = resolve(stack.managers.ami.clone()).await?;
        (ami.clone(), ami)
    } else {
        tokio::try_join!(
            resolve(stack.managers.ami.clone()),
            resolve(stack.workers.ami.clone())
        )?
    };
    let render = |role| {
        crate::render::user_data(stack, role).map_err(|source| OpsError::Template {
            what: "user-data",
            source,
        })
    };
    let inputs = Inputs {
        manager_ami,
        worker_ami,
        manager_user_data: render(Role::Manager)?,
        worker_user_data: render(Role::Worker)?,
    };
    Ok(expand(stack, &inputs))
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
