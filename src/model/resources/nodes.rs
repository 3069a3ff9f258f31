//! The nodes: the key pair, the bastion, the managers and workers spread across the zones, and
//! with the Swarm the member each node should be.

use super::{Inputs, Names, Resource, addr, sha256_hex, subnet_addresses};
use crate::model::*;

/// Adds the key pair and the instances; returns the Swarm nodes' addresses (not the bastion's).
pub(super) fn expand(stack: &Stack, inputs: &Inputs, out: &mut Vec<Resource>) -> Vec<Address> {
    let mut add = |address: Address, spec: Spec| out.push(Resource { address, spec });
    let subnets = subnet_addresses(stack);
    let (sg_node, sg_bastion) = (addr("sg.node"), addr("sg.bastion"));
    let key = addr("key_pair");
    add(
        key.clone(),
        Spec::KeyPair(KeyPairSpec {
            name: Names::key_pair(&stack.name),
            public_key_sha256: sha256_hex(&stack.public_key),
            public_key: stack.public_key.clone(),
        }),
    );

    if let (Some(pool), Some((ami, user_data))) = (&stack.bastion, &inputs.bastion) {
        add(
            Address::node(pool.role.pool(), 0),
            Spec::Instance(InstanceSpec {
                pool: pool.role.pool().into(),
                instance_type: pool.instance_type.clone(),
                ami: ami.clone(),
                subnet: subnets[0].clone(),
                security_groups: vec![sg_bastion],
                key_pair: key.clone(),
                root_volume_gb: pool.root_volume_gb,
                imdsv2_required: true,
                metadata_hop_limit: 1,
                instance_profile: None,
                user_data_sha256: sha256_hex(user_data),
                user_data: user_data.clone(),
            }),
        );
    }

    let profile = stack
        .nodes_need_role()
        .then(|| addr(super::INSTANCE_PROFILE));
    let mut nodes = Vec::new();
    for (pool, ami, user_data) in [
        (
            &stack.managers,
            &inputs.manager_ami,
            &inputs.manager_user_data,
        ),
        (&stack.workers, &inputs.worker_ami, &inputs.worker_user_data),
    ] {
        for i in 0..pool.count {
            let address = Address::node(pool.role.pool(), i);
            nodes.push(address.clone());
            add(
                address,
                Spec::Instance(InstanceSpec {
                    pool: pool.role.pool().into(),
                    instance_type: pool.instance_type.clone(),
                    ami: ami.clone(),
                    // Spread each pool across the zones.
                    subnet: subnets[i % subnets.len()].clone(),
                    security_groups: vec![sg_node.clone()],
                    key_pair: key.clone(),
                    root_volume_gb: pool.root_volume_gb,
                    imdsv2_required: true,
                    metadata_hop_limit: stack.node_access.metadata_hop_limit,
                    instance_profile: profile.clone(),
                    user_data_sha256: sha256_hex(user_data),
                    user_data: user_data.clone(),
                }),
            );
        }
    }

    nodes
}

/// The Swarm member of each node: its role, `active`, and the labels infra sets.
pub(super) fn members(stack: &Stack, out: &mut Vec<Resource>) {
    for pool in [&stack.managers, &stack.workers] {
        for i in 0..pool.count {
            let instance = Address::node(pool.role.pool(), i);
            let zone = &stack.network.subnets[i % stack.network.subnets.len()].zone;
            let spec = SwarmNodeSpec {
                instance: instance.clone(),
                role: pool.role.pool().to_string(),
                availability: "active".into(),
                state: "ready".into(),
                labels: swarm_labels(&instance, pool.role, zone),
            };
            out.push(Resource {
                address: swarm_address(&instance),
                spec: Spec::SwarmNode(spec),
            });
        }
    }
}

/// `node.worker[2]` → `swarm.node.worker[2]`.
pub fn swarm_address(instance: &Address) -> Address {
    Address::new(format!("swarm.{instance}"))
}

/// The Swarm node label naming the instance a member runs on.
pub const LABEL_ADDRESS: &str = "infra.address";

/// The labels infra puts on each Swarm node: to recognise it, and for placement constraints.
pub fn swarm_labels(
    instance: &Address,
    role: Role,
    zone: &str,
) -> std::collections::BTreeMap<String, String> {
    std::collections::BTreeMap::from([
        (LABEL_ADDRESS.to_string(), instance.to_string()),
        ("infra.pool".to_string(), role.pool().to_string()),
        ("infra.zone".to_string(), zone.to_string()),
    ])
}
