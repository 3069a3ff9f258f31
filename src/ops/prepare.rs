//! A fresh plan: the state, the live cloud and Swarm, and the stack as it should be, read
//! together; what is kept on purpose fitted in (AMIs, key pair names, adopted networks); the
//! diff; and the refusals checked before anything changes.

use std::collections::BTreeMap;

use super::desired::desired;
use super::load::Input;
use super::nodes::{amis, read_swarm, users_for};
use super::replace::{self, Published};
use super::{Context, OpsError, Request, Result, checks, refusals, registry};
use crate::cloud::{Cloud, ImageFacts, Named};
use crate::model::resources::{Resource, sha256_hex};
use crate::model::{Live, Spec, SshSettings};
use crate::plan::{self, Change, PLAN_FORMAT_VERSION, Plan};
use crate::state::{Backend, ResourceState, State};

/// A fresh plan, and what applying it needs.
pub(super) struct Prepared {
    pub plan: Plan,
    pub cloud: Cloud,
    pub state: Option<State>,
}

/// Makes the plan for `input` as `request` asks, reading the state from `backend` (locked by
/// the caller).
pub(super) async fn prepare(
    ctx: &Context,
    input: &Input,
    backend: &Backend,
    request: &Request,
) -> Result<Prepared> {
    let (stack, destroy) = (&input.stack, request.destroy);
    let state = backend.load().await?;
    note_interrupted_run(state.as_ref());
    let cloud = Cloud::connect(&stack.name, stack.region.as_deref(), ctx.calls.clone()).await?;
    let named = Named::of(
        Some(stack),
        state
            .iter()
            .flat_map(|s| s.resources.values().map(|r| &r.spec)),
    );
    let (mut desired, published, mut live) = read(ctx, &cloud, input, &named, destroy).await?;
    let mut notices = Vec::new();
    let skip_swarm = destroy && request.skip_swarm;
    if skip_swarm {
        notices.push("the Swarm is left alone (--skip-swarm): its members, services and secrets go with the instances, and nothing is run on the nodes.".to_string());
    }
    let (ssh, images) = if stack.swarm && !skip_swarm {
        read_swarm_half(
            ctx,
            &cloud,
            input,
            &desired,
            &mut live,
            state.as_ref(),
            destroy,
        )
        .await?
    } else {
        (stack.ssh.clone(), BTreeMap::new())
    };
    registry::carry_force_delete(&mut live, state.as_ref());
    let mut changes = diff(
        &mut desired,
        &mut live,
        &published,
        request,
        state.as_ref(),
        &mut notices,
    )?;
    registry::keep_full_repositories(&cloud, &mut changes, &mut notices).await?;
    if request.registry_only && !destroy {
        changes.retain(|c| {
            matches!(
                c.after.as_ref().or(c.before.as_ref()),
                Some(Spec::Repository(_))
            )
        });
    }
    if !destroy {
        refusals::check_bastion_removal(&changes)?;
    }
    if !destroy && !request.registry_only {
        let host = match stack.registry {
            Some(_) => Some(super::context::account(ctx, &cloud).await?.registry()),
            None => None,
        };
        registry::check_pull_rights(stack, host.as_deref(), &desired)?;
        if let Some(host) = &host {
            registry::check_images(&cloud, stack, host, &changes, &desired).await?;
        }
    }
    plan::graph::steps(&changes)?;
    if !destroy {
        plan::quorum::check(&changes, &live)?;
        checks::account(ctx, &cloud, stack, &input.source, &changes, &images).await?;
    }
    let (observed, unchanged) = split_live(live, &changes, &desired);
    let plan = Plan {
        format_version: PLAN_FORMAT_VERSION,
        stack: stack.name.clone(),
        region: stack.region.clone(),
        lineage: state.as_ref().map(|s| s.lineage),
        serial: state.as_ref().map_or(0, |s| s.serial),
        stack_sha256: sha256_hex(&input.source),
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

/// A run killed mid-apply left intents in the state: said once, since the plan starts from AWS.
fn note_interrupted_run(state: Option<&State>) {
    let Some(s) = state.filter(|s| !s.pending.is_empty()) else {
        return;
    };
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

/// The desired objects (none for a destroy) and the live cloud objects and secrets, read at
/// once.
async fn read(
    ctx: &Context,
    cloud: &Cloud,
    input: &Input,
    named: &Named,
    destroy: bool,
) -> Result<(Vec<Resource>, BTreeMap<String, Published>, Live)> {
    let stack = &input.stack;
    // The key that hashes secret values; the first plan of a stack with secrets makes it.
    let key = cloud
        .secrets_key(!destroy && !stack.apps.secrets.is_empty())
        .await?;
    let ((desired, published), mut live, secrets) = tokio::try_join!(
        async {
            if destroy {
                Ok(Default::default())
            } else {
                desired(ctx, cloud, stack, input.project.as_ref(), key.as_deref()).await
            }
        },
        async { cloud.read_live(named).await.map_err(OpsError::from) },
        async {
            cloud
                .read_secrets(key.as_deref())
                .await
                .map_err(OpsError::from)
        },
    )?;
    live.extend(secrets);
    Ok((desired, published, live))
}

/// The Swarm's half of the live objects, added to `live`, read through one manager with the
/// login user of each image; externals the compose file needs are checked. Returns the SSH
/// settings with those users, and the images.
async fn read_swarm_half(
    ctx: &Context,
    cloud: &Cloud,
    input: &Input,
    desired: &[Resource],
    live: &mut Live,
    state: Option<&State>,
    destroy: bool,
) -> Result<(SshSettings, BTreeMap<String, ImageFacts>)> {
    let stack = &input.stack;
    let specs = desired
        .iter()
        .map(|r| &r.spec)
        .chain(live.values().map(|o| &o.spec));
    let images = checks::describe_images(ctx, cloud, stack, &input.source, &amis(specs)).await?;
    let ssh = users_for(&stack.ssh, &images)?;
    let had_swarm =
        state.is_some_and(|s| s.resources.keys().any(|a| a.as_str().starts_with("swarm.")));
    let pinned = state.map(|s| s.host_keys.clone()).unwrap_or_default();
    let (swarm, names) = read_swarm(ctx, cloud, stack, &ssh, live, had_swarm, &pinned)
        .await
        .map_err(|e| match destroy {
            true => OpsError::Usage(format!(
                "{e}\n  A destroy needs a manager to take the Swarm down first. If the nodes are gone or will not answer again, run `infra destroy --skip-swarm`: it removes the cloud objects and leaves the Swarm to go with them."
            )),
            false => e,
        })?;
    live.extend(swarm);
    if let Some(project) = &input.project {
        refusals::check_externals(stack, project, names.as_ref())?;
    }
    Ok((ssh, images))
}

/// What is kept on purpose fitted in (networks adopted into `live`; the key pair's name and
/// the nodes' AMIs into `desired`, their notices to `notices`), then the diff.
fn diff(
    desired: &mut [Resource],
    live: &mut Live,
    published: &BTreeMap<String, Published>,
    request: &Request,
    state: Option<&State>,
    notices: &mut Vec<String>,
) -> Result<Vec<Change>> {
    adopt_networks(live, desired);
    replace::name_key_pair(desired, live);
    let (to_replace, newer) = replace::pin_amis(desired, live, published, request);
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
    Ok(plan::diff_with(desired, state, live, &options))
}

/// The live facts of the objects that change (for apply), and the objects that do not (kept
/// in the state as they are).
fn split_live(
    live: Live,
    changes: &[Change],
    desired: &[Resource],
) -> (
    BTreeMap<crate::model::Address, BTreeMap<String, String>>,
    BTreeMap<crate::model::Address, ResourceState>,
) {
    let observed = changes
        .iter()
        .filter_map(|c| Some((c.address.clone(), live.get(&c.address)?.outputs.clone())))
        .filter(|(_, outputs)| !outputs.is_empty())
        .collect();
    let unchanged = live
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
    (observed, unchanged)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, HealthWait, TargetsSpec};

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
