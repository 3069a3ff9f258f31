//! The stack as it should be, with what that needs from outside: AMIs resolved (one SSM call
//! per distinct parameter), user-data rendered, secret values read and hashed; then the pure
//! expansion ([`crate::model::resources`]) and the compose project's translation
//! ([`crate::compose::desired`]).

use std::collections::BTreeMap;

use super::load::expand_home;
use super::replace::Published;
use super::{Context, OpsError, Result};
use crate::cloud::Cloud;
use crate::compose::{self, Project};
use crate::model::resources::{
    Inputs, Resource, SecretInput, ServiceInput, SwarmApps, expand, expand_apps, fit_targets,
    value_hmac,
};
use crate::model::{Address, AmiSource, Role, Stack, SwarmNetworkSpec, ValueSource};
use crate::swarm::docker;

/// Every object the stack should have, and the AMIs its pools take from SSM parameters.
/// `project` is the compose project (with the Swarm on); `key` hashes secret values.
pub(super) async fn desired(
    ctx: &Context,
    cloud: &Cloud,
    stack: &Stack,
    project: Option<&Project>,
    key: Option<&str>,
) -> Result<(Vec<Resource>, BTreeMap<String, Published>)> {
    let (mut resources, published) = cloud_resources(ctx, cloud, stack).await?;
    let secrets = secret_inputs(ctx, stack, key.unwrap_or_default())?;
    let swarm = project.map(|p| swarm_apps(p, &secrets));
    fit_targets(
        stack,
        &mut resources,
        swarm.as_ref().map(|s| &s.services[..]),
    );
    resources.extend(expand_apps(&stack.name, &secrets, swarm.as_ref()));
    Ok((resources, published))
}

/// Secrets read from their sources and kept only as keyed hashes (stored in Parameter Store
/// whether or not infra runs the Swarm).
fn secret_inputs(ctx: &Context, stack: &Stack, key: &str) -> Result<Vec<SecretInput>> {
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
    Ok(secrets)
}

/// The compose project as the Swarm runs it: services pointing at the Swarm secrets of the
/// current values, and the networks with the `docker network create` flags that make them.
fn swarm_apps(project: &Project, secrets: &[SecretInput]) -> SwarmApps {
    let services: Vec<ServiceInput> = compose::desired::service_inputs(project, secrets);
    let networks = project
        .networks
        .iter()
        .map(|n| {
            let spec = SwarmNetworkSpec {
                name: n.name.clone(),
                driver: n.driver.clone(),
                attachable: n.attachable,
                internal: n.internal,
                encrypted: n.encrypted(),
                definition_sha256: n.sha256.clone(),
                create_args: docker::network_create_args(n),
            };
            (n.key.clone(), spec)
        })
        .collect();
    SwarmApps {
        services,
        networks,
        configs: compose::desired::config_specs(project),
    }
}

/// The cloud half: AMIs resolved, user-data rendered, then [`expand`].
async fn cloud_resources(
    ctx: &Context,
    cloud: &Cloud,
    stack: &Stack,
) -> Result<(Vec<Resource>, BTreeMap<String, Published>)> {
    let resolve = |source: AmiSource| async move {
        match source {
            AmiSource::Id(id) => Ok::<_, OpsError>((id, None)),
            AmiSource::SsmParameter(p) => {
                let (ami, modified) = cloud.ssm_parameter(&p).await?;
                let published = Published {
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
    let account = match &stack.registry {
        Some(_) => Some(super::context::account(ctx, cloud).await?),
        None => None,
    };
    let registry = account.as_ref().map(|a| a.registry());
    let render = |role| {
        crate::render::user_data(stack, role, registry.as_deref()).map_err(|source| {
            OpsError::Template {
                what: "user-data",
                source,
            }
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
        account,
        manager_ami,
        worker_ami,
        manager_user_data: render(Role::Manager)?,
        worker_user_data: render(Role::Worker)?,
        bastion,
    };
    Ok((expand(stack, &inputs), published))
}
