//! `infra recover-swarm`: brings back a Swarm that lost its Raft quorum (a majority of its
//! managers gone for good). Never done by plan or apply on their own: it rebuilds the Swarm
//! from one manager with Docker's `docker swarm init --force-new-cluster`, keeping its services,
//! secrets and configs (docs.docker.com/engine/swarm/admin_guide/#recover-from-disaster); then
//! a normal apply rejoins (or replaces) the other managers.

use super::apply::{ApplyOptions, apply, confirm_to};
use super::load::load;
use super::nodes::{CloudOutside, swarm_ops, with_image_users};
use super::{Context, OpsError, Result};
use crate::cloud::Cloud;
use crate::model::Address;

pub struct RecoverOptions {
    /// The manager to rebuild from (`node.manager[0]`); default: the first that answers.
    pub from: Option<Address>,
    pub apply: ApplyOptions,
}

pub async fn recover_swarm(ctx: &Context, opts: RecoverOptions) -> Result<()> {
    let (loaded, _) = load(ctx).await?;
    let stack = loaded.stack;
    if !stack.swarm {
        return Err(OpsError::Usage(format!(
            "stack {} does not run a Swarm ([swarm] enabled = false)",
            stack.name
        )));
    }
    let backend = super::backend(ctx, &stack.state, stack.region.as_deref()).await?;
    let lock = backend
        .lock("recover-swarm", opts.apply.lock_timeout)
        .await?;
    let rebuilt = async {
        let state = backend.load().await?;
        let named = crate::cloud::Named::of(
            Some(&stack),
            state.iter().flat_map(|s| s.resources.values().map(|r| &r.spec)),
        );
        let pinned = state.map(|s| s.host_keys).unwrap_or_default();
        let cloud =
            Cloud::connect(&stack.name, stack.region.as_deref(), ctx.calls.clone()).await?;
        let live = cloud.read_live(&named).await?;
        let ssh = with_image_users(&cloud, &stack.ssh, live.values().map(|o| &o.spec)).await?;
        let instances = live
            .iter()
            .map(|(a, o)| (a, o.id.as_str(), &o.spec, &o.outputs));
        let managers = crate::swarm::managers(&crate::swarm::nodes(instances, &ssh));
        println!(
            "infra will rebuild the Swarm from one manager (docker swarm init --force-new-cluster): \
             its services, secrets and configs stay; the other managers leave it and rejoin at the apply that follows."
        );
        if !opts.apply.auto_approve && !confirm_to("rebuild the Swarm from one manager").await? {
            return Ok(None);
        }
        let outside = CloudOutside::new(&cloud, &stack.name);
        let swarm = swarm_ops(ctx, &outside, &ssh, &pinned);
        let (survivor, silent) = swarm
            .recover(&managers, opts.from.as_ref())
            .await
            .map_err(|e| OpsError::Swarm(Box::new(e)))?;
        Ok::<_, OpsError>(Some((survivor, silent)))
    }
    .await;
    lock.release().await;
    let Some((survivor, silent)) = rebuilt? else {
        println!("\nRecovery cancelled.");
        return Ok(());
    };
    println!(
        "\n{survivor}: the Swarm runs again, with it as its only manager.{}\nApplying the stack: the other managers rejoin, or are replaced.\n",
        if silent.is_empty() {
            String::new()
        } else {
            format!(" Not answering: {}.", silent.join(", "))
        }
    );
    apply(ctx, opts.apply).await
}
