//! Reaching the Swarm's nodes for an operation: the login user of each image, and the Swarm
//! read through one manager (for plan, status, recover, ssh and apply).

use std::collections::{BTreeMap, BTreeSet};

use super::{Context, OpsError, Result};
use crate::cloud::{Cloud, ImageFacts};
use crate::model::{Live, Spec, SshSettings, Stack};
use crate::swarm::{Deregistration, Outside, Swarm, SwarmError};

/// The Swarm's members as `infra status` shows them: any failure to read is reported.
pub(super) async fn read_swarm_live(
    ctx: &Context,
    cloud: &Cloud,
    stack: &Stack,
    live: &Live,
    pinned: &[String],
) -> Result<Live> {
    let ssh = with_image_users(cloud, &stack.ssh, live.values().map(|o| &o.spec)).await?;
    Ok(read_swarm(ctx, cloud, stack, &ssh, live, true, pinned)
        .await?
        .0)
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
pub(super) fn amis<'a>(specs: impl Iterator<Item = &'a Spec>) -> Vec<String> {
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
pub(super) fn users_for(
    ssh: &SshSettings,
    images: &BTreeMap<String, ImageFacts>,
) -> Result<SshSettings> {
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
pub(super) async fn read_swarm(
    ctx: &Context,
    cloud: &Cloud,
    stack: &Stack,
    ssh: &SshSettings,
    live: &Live,
    had_swarm: bool,
    pinned: &[String],
) -> Result<(Live, Option<BTreeSet<(String, String)>>)> {
    let instances = live
        .iter()
        .map(|(a, o)| (a, o.id.as_str(), &o.spec, &o.outputs));
    let nodes = crate::swarm::nodes(instances, ssh);
    let managers = crate::swarm::managers(&nodes);
    if managers.is_empty() {
        return Ok((Default::default(), None));
    }
    let outside = CloudOutside::new(cloud, &stack.name);
    let swarm = swarm_ops(ctx, &outside, ssh, pinned);
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

/// The stack's Swarm, its join tokens in Parameter Store and its targets in ELBv2.
pub(super) fn swarm_ops<'a>(
    ctx: &Context,
    outside: &'a CloudOutside<'a>,
    ssh: &SshSettings,
    pinned: &[String],
) -> Swarm<'a> {
    Swarm {
        outside,
        stack: outside.stack.clone(),
        settings: ssh.clone(),
        dir: ctx.workspace.state_dir(),
        pinned: pinned.to_vec(),
    }
}

/// What the Swarm keeps outside the nodes, in AWS: join tokens as SecureString parameters
/// (`/infra/<stack>/swarm/<role>-token`), targets deregistered through ELBv2.
pub(super) struct CloudOutside<'a> {
    pub cloud: &'a Cloud,
    pub stack: String,
}

impl<'a> CloudOutside<'a> {
    pub fn new(cloud: &'a Cloud, stack: &str) -> Self {
        CloudOutside {
            cloud,
            stack: stack.to_string(),
        }
    }
}

/// Where a stack's Swarm join token for `role` is kept (SecureString).
fn token_parameter(stack: &str, role: &str) -> String {
    format!("/infra/{stack}/swarm/{role}-token")
}

/// The parameters a stack's Swarm keeps in Parameter Store (removed on destroy).
pub(super) fn token_parameters(stack: &str) -> Vec<String> {
    ["worker", "manager"]
        .iter()
        .map(|r| token_parameter(stack, r))
        .collect()
}

fn outside(e: crate::cloud::CloudError) -> SwarmError {
    SwarmError::Outside(Box::new(e))
}

#[async_trait::async_trait]
impl Outside for CloudOutside<'_> {
    async fn join_token(&self, role: &str) -> std::result::Result<Option<String>, SwarmError> {
        let name = token_parameter(&self.stack, role);
        self.cloud.get_secret(&name).await.map_err(outside)
    }

    async fn store_join_token(
        &self,
        role: &str,
        token: &str,
    ) -> std::result::Result<(), SwarmError> {
        let name = token_parameter(&self.stack, role);
        self.cloud.put_secret(&name, token).await.map_err(outside)
    }

    async fn deregister(&self, d: &Deregistration) -> std::result::Result<(), SwarmError> {
        self.cloud
            .deregister_target(&d.targets, &d.target_group_arn, &d.instance_id, d.delay)
            .await
            .map_err(outside)
    }
}
