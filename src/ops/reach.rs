//! What the day-2 commands (`logs`, `exec`, `details`, `doctor`) start from: the stack, what
//! AWS holds now, and the nodes as SSH reaches them.

use super::load::load;
use super::nodes::{CloudOutside, swarm_ops, with_image_users};
use super::{Context, OpsError, Result};
use crate::cloud::{Cloud, Named};
use crate::model::{Live, SshSettings, Stack};
use crate::state::State;
use crate::swarm::{Node, Swarm};

pub(super) struct Reached {
    pub stack: Stack,
    pub cloud: Cloud,
    /// What AWS holds now (one read, tag-filtered).
    pub live: Live,
    pub settings: SshSettings,
    /// The stack's nodes (not the bastion), as SSH reaches them.
    pub nodes: Vec<Node>,
    /// The host keys pinned in the state.
    pub host_keys: Vec<String>,
}

/// The stack file and its state; an error before the first apply.
pub(super) async fn applied(ctx: &Context) -> Result<(Stack, State)> {
    let (loaded, _) = load(ctx).await?;
    let stack = loaded.stack;
    let backend = super::backend(ctx, &stack.state, stack.region.as_deref()).await?;
    let state = backend.load().await?.ok_or_else(|| {
        OpsError::Usage(format!("stack {} has no state: apply it first", stack.name))
    })?;
    Ok((stack, state))
}

/// Reads the stack file, the state (an error before the first apply) and what AWS holds.
pub(super) async fn reach(ctx: &Context) -> Result<Reached> {
    let (stack, state) = applied(ctx).await?;
    let cloud = Cloud::connect(&stack.name, stack.region.as_deref(), ctx.calls.clone()).await?;
    let named = Named::of(Some(&stack), state.resources.values().map(|r| &r.spec));
    let live = cloud.read_live(&named).await?;
    let settings = with_image_users(&cloud, &stack.ssh, live.values().map(|o| &o.spec)).await?;
    let instances = live
        .iter()
        .map(|(a, o)| (a, o.id.as_str(), &o.spec, &o.outputs));
    let nodes = crate::swarm::nodes(instances, &settings);
    Ok(Reached {
        stack,
        cloud,
        live,
        settings,
        nodes,
        host_keys: state.host_keys,
    })
}

impl Reached {
    /// The stack's Swarm, reached through `outside` (made of [`Reached::cloud`]).
    pub fn swarm<'a>(&self, ctx: &Context, outside: &'a CloudOutside<'a>) -> Swarm<'a> {
        swarm_ops(ctx, outside, &self.settings, &self.host_keys)
    }

    pub fn outside(&self) -> CloudOutside<'_> {
        CloudOutside::new(&self.cloud, &self.stack.name)
    }

    pub fn managers(&self) -> Vec<Node> {
        crate::swarm::managers(&self.nodes)
    }

    /// Docker's name of a service of the stack: `web`, `swarm.service.web` and `sandbox_web`
    /// all name `sandbox_web`.
    pub fn service_name(&self, service: &str) -> String {
        let short = service.trim_start_matches("swarm.service.");
        let prefix = format!("{}_", self.stack.name);
        if short.starts_with(&prefix) {
            short.to_string()
        } else {
            format!("{prefix}{short}")
        }
    }
}
