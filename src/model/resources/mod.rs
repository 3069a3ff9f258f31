//! Expands a stack into the objects it needs, by area: the network, the security groups, the
//! nodes, the load balancer, and the application half (secrets, Swarm objects, services).
//! Pure: inputs that need I/O (AMI ids, user-data, secret hashes) come in resolved.

mod apps;
mod groups;
mod identity;
mod load_balancer;
mod network;
mod nodes;

use sha2::{Digest, Sha256};

use super::*;

pub use apps::*;
pub use groups::ESP;
pub use identity::{
    Account, INSTANCE_PROFILE, LOG_GROUP, ROLE, lifecycle_policy, node_policy, repository_address,
    trust_policy,
};
pub use load_balancer::{fit_targets, target_group_address, targets_address};
pub use nodes::{LABEL_ADDRESS, swarm_address, swarm_labels};

/// One object the stack should have.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub address: Address,
    pub spec: Spec,
}

/// What the stack file does not say but the expansion needs: inputs resolved or rendered outside
/// this pure module (AMI ids from SSM, user-data from templates).
pub struct Inputs {
    pub manager_ami: String,
    pub worker_ami: String,
    pub manager_user_data: String,
    pub worker_user_data: String,
    /// With `[bastion]`: its image and user-data.
    pub bastion: Option<(String, String)>,
    /// The account and region, when the stack has a registry (repository ARNs need them).
    pub account: Option<Account>,
}

/// Deterministic AWS names, so the load balancer and target group can be found by name
/// (ELBv2 has no tag filter) and a retried create cannot make a second one.
pub struct Names;

impl Names {
    pub fn load_balancer(stack: &str) -> String {
        format!("infra-{stack}")
    }
    /// One target group a target port: a new port is a new group (its name may not be the
    /// old one's), so the listener can switch to it once it is healthy. 32 characters at most:
    /// stack names have 20 (`MAX_NAME_LEN`), ports 5 digits.
    pub fn target_group(stack: &str, port: u16) -> String {
        format!("infra-{stack}-{port}")
    }

    /// The port of a target group of `stack` named by [`Names::target_group`].
    pub fn target_group_port(stack: &str, name: &str) -> Option<u16> {
        let port = name.strip_prefix(&format!("infra-{stack}-"))?;
        port.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| port.parse().ok())?
    }
    pub fn key_pair(stack: &str) -> String {
        format!("infra-{stack}")
    }
    pub fn security_group(stack: &str, role: &str) -> String {
        format!("infra-{stack}-{role}")
    }
    /// The nodes' IAM role and its instance profile (one name for both, as the console does).
    pub fn node_role(stack: &str) -> String {
        format!("infra-{stack}-nodes")
    }
}

pub fn sha256_hex(data: &str) -> String {
    hex::encode(Sha256::digest(data.as_bytes()))
}

/// `hmac-sha256:<hex>` of a secret value, keyed with the stack's hashing key.
pub fn value_hmac(key: &str, value: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(value.as_bytes());
    format!("hmac-sha256:{}", hex::encode(mac.finalize().into_bytes()))
}

pub fn addr(s: &str) -> Address {
    Address::new(s)
}

/// Every cloud object of the stack, and with the Swarm its members; the application half is
/// [`expand_apps`].
pub fn expand(stack: &Stack, inputs: &Inputs) -> Vec<Resource> {
    let mut out = Vec::new();
    network::expand(stack, &mut out);
    groups::expand(stack, &mut out);
    identity::expand(stack, inputs.account.as_ref(), &mut out);
    let nodes = nodes::expand(stack, inputs, &mut out);
    load_balancer::expand(stack, &nodes, &mut out);
    if stack.swarm {
        nodes::members(stack, &mut out);
    }
    out
}

/// The stack's subnets, one a zone: `subnet[0]`, `subnet[1]`, …
fn subnet_addresses(stack: &Stack) -> Vec<Address> {
    (0..stack.network.subnets.len())
        .map(|i| Address::indexed("subnet", i))
        .collect()
}
