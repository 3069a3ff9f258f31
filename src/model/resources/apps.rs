//! The application half: secrets in Parameter Store and, with the Swarm, their Swarm secrets,
//! the networks, configs and services of the compose project.

use super::Resource;
use crate::model::*;

/// A secret as the plan needs it: where it comes from and the keyed hash of its value.
pub struct SecretInput {
    pub name: String,
    pub source: String,
    pub value_hmac: String,
    pub advanced: bool,
}

/// A service as rendered from the compose file (see `compose::ServiceDoc`).
pub struct ServiceInput {
    pub name: String,
    pub image: String,
    pub mode: String,
    pub ports: Vec<String>,
    /// `deploy.placement.constraints`.
    pub placement: Vec<String>,
    pub secrets: Vec<Address>,
    pub networks: Vec<Address>,
    pub configs: Vec<Address>,
    pub definition: String,
    pub definition_sha256: String,
}

/// An image reference as Docker keeps it, without a pinned digest or the default registry:
/// `docker.io/library/nginx@sha256:…` and `nginx` are both `nginx:latest`.
pub fn normalize_image(image: &str) -> String {
    let name = image.split('@').next().unwrap_or(image);
    let name = name
        .strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .unwrap_or(name);
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// Parameter Store name of a stack's secret.
pub fn secret_parameter(stack: &str, name: &str) -> String {
    format!("/infra/{stack}/secrets/{name}")
}

/// `greeting` with value hash `hmac-sha256:1f2e…` → `greeting_1f2e3d4c5b`.
pub fn swarm_secret_name(name: &str, value_hmac: &str) -> String {
    let hex = value_hmac.rsplit(':').next().unwrap_or_default();
    format!("{name}_{}", &hex[..hex.len().min(10)])
}

pub fn swarm_secret_address(swarm_name: &str) -> Address {
    Address::new(format!("swarm.secret.{swarm_name}"))
}

/// `swarm.network.<key in the compose file>`.
pub fn network_address(key: &str) -> Address {
    Address::new(format!("swarm.network.{key}"))
}

/// `swarm.config.<name and content hash>`.
pub fn config_address(swarm_name: &str) -> Address {
    Address::new(format!("swarm.config.{swarm_name}"))
}

pub fn service_address(name: &str) -> Address {
    Address::new(format!("swarm.service.{name}"))
}

/// What the Swarm runs for the stack: the compose project's services, its networks (by their
/// key in the file) and configs.
pub struct SwarmApps {
    pub services: Vec<ServiceInput>,
    pub networks: Vec<(String, SwarmNetworkSpec)>,
    pub configs: Vec<SwarmConfigSpec>,
}

/// The application half: secrets in Parameter Store, and with the Swarm (`swarm`) their Swarm
/// secrets, the services, networks and configs.
pub fn expand_apps(
    stack: &str,
    secrets: &[SecretInput],
    swarm: Option<&SwarmApps>,
) -> Vec<Resource> {
    let mut out = Vec::new();
    for s in secrets {
        let secret = Address::new(format!("secret.{}", s.name));
        out.push(Resource {
            address: secret.clone(),
            spec: Spec::Secret(SecretSpec {
                parameter: secret_parameter(stack, &s.name),
                value: s.value_hmac.clone(),
                source: s.source.clone(),
                advanced: s.advanced,
            }),
        });
        if swarm.is_none() {
            continue;
        }
        let name = swarm_secret_name(&s.name, &s.value_hmac);
        out.push(Resource {
            address: swarm_secret_address(&name),
            spec: Spec::SwarmSecret(SwarmSecretSpec { name, secret }),
        });
    }
    let Some(swarm) = swarm else {
        return out;
    };
    for s in &swarm.services {
        out.push(Resource {
            address: service_address(&s.name),
            spec: Spec::Service(ServiceSpec {
                image: normalize_image(&s.image),
                mode: s.mode.clone(),
                state: CONVERGED.into(),
                ports: s.ports.clone(),
                secrets: s.secrets.clone(),
                networks: s.networks.clone(),
                configs: s.configs.clone(),
                definition_sha256: s.definition_sha256.clone(),
                definition: s.definition.clone(),
            }),
        });
    }
    for (key, spec) in &swarm.networks {
        out.push(Resource {
            address: network_address(key),
            spec: Spec::SwarmNetwork(spec.clone()),
        });
    }
    out.extend(swarm.configs.iter().map(|c| Resource {
        address: config_address(&c.name),
        spec: Spec::SwarmConfig(c.clone()),
    }));
    out
}
