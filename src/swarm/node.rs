//! The Swarm's nodes as SSH reaches them, from the instance records.

use std::collections::BTreeMap;
use std::time::Duration;

use super::ssh::NodeHost;
use crate::model::{Address, Role, Spec, SshSettings};

/// A node the Swarm code can reach: how to ssh to it, and the address it advertises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub host: NodeHost,
    pub role: String,
    pub private_ip: String,
}

/// The Swarm's nodes as ssh reaches them, from instance records: the public address; the
/// private one through the stack's bastion once it exists (`[bastion]`: until then its nodes
/// still accept SSH from admin_cidrs), or through `[ssh] jump_host`.
pub fn nodes<'a>(
    instances: impl IntoIterator<Item = (&'a Address, &'a str, &'a Spec, &'a BTreeMap<String, String>)>,
    settings: &SshSettings,
) -> Vec<Node> {
    let mut bastion = None;
    let mut nodes = Vec::new();
    for (address, id, spec, outputs) in instances {
        let Spec::Instance(i) = spec else { continue };
        let Some(private_ip) = outputs.get("private_ip") else {
            continue;
        };
        let public = outputs.get("public_ip");
        let host = NodeHost {
            address: address.clone(),
            instance_id: id.to_string(),
            host: public.unwrap_or(private_ip).clone(),
            user: settings.user_for(&i.ami).to_string(),
            image_user: settings.image_users.get(&i.ami).cloned(),
            jump: None,
        };
        if i.pool == Role::Bastion.pool() {
            bastion = Some(Box::new(host));
            continue;
        }
        let behind_jump_host = settings.jump_host.is_some() || public.is_none();
        nodes.push(Node {
            host: NodeHost {
                host: if behind_jump_host {
                    private_ip.clone()
                } else {
                    host.host.clone()
                },
                ..host
            },
            role: i.pool.clone(),
            private_ip: private_ip.clone(),
        });
    }
    if let Some(bastion) = bastion {
        for n in &mut nodes {
            n.host.host = n.private_ip.clone();
            n.host.jump = Some(bastion.clone());
        }
    }
    nodes
}

/// The managers among `nodes`.
pub fn managers(nodes: &[Node]) -> Vec<Node> {
    nodes
        .iter()
        .filter(|n| n.role == "manager")
        .cloned()
        .collect()
}

/// Where a leaving node is a load balancer target.
#[derive(Clone, Debug)]
pub struct Deregistration {
    pub targets: Address,
    pub target_group_arn: String,
    pub instance_id: String,
    pub delay: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With a bastion, every node is reached on its private address through it, and the
    /// bastion itself is no Swarm node; without one, on the public address.
    #[test]
    fn nodes_are_reached_through_the_bastion_once_it_exists() {
        let instance = |pool: &str| {
            Spec::Instance(crate::model::InstanceSpec {
                pool: pool.into(),
                instance_type: "t3.micro".into(),
                ami: "ami-1".into(),
                subnet: Address::new("subnet[0]"),
                security_groups: vec![],
                key_pair: Address::new("key_pair"),
                root_volume_gb: 8,
                imdsv2_required: true,
                metadata_hop_limit: 1,
                instance_profile: None,
                user_data_sha256: String::new(),
                user_data: String::new(),
            })
        };
        let outputs = |public: &str, private: &str| {
            BTreeMap::from([
                ("public_ip".to_string(), public.to_string()),
                ("private_ip".to_string(), private.to_string()),
            ])
        };
        let (manager, bastion) = (instance("manager"), instance("bastion"));
        let (m_out, b_out) = (
            outputs("203.0.113.1", "10.0.1.1"),
            outputs("203.0.113.9", "10.0.1.9"),
        );
        let (m_addr, b_addr) = (Address::node("manager", 0), Address::node("bastion", 0));
        let settings = SshSettings::default();
        let direct = nodes([(&m_addr, "i-m", &manager, &m_out)], &settings);
        assert_eq!(
            (direct[0].host.host.as_str(), direct[0].host.jump.is_none()),
            ("203.0.113.1", true)
        );
        let jumped = nodes(
            [
                (&m_addr, "i-m", &manager, &m_out),
                (&b_addr, "i-b", &bastion, &b_out),
            ],
            &settings,
        );
        assert_eq!(jumped.len(), 1, "the bastion is no Swarm node");
        let host = &jumped[0].host;
        assert_eq!(host.host, "10.0.1.1");
        let jump = host.jump.as_ref().expect("through the bastion");
        assert_eq!(
            (jump.instance_id.as_str(), jump.host.as_str()),
            ("i-b", "203.0.113.9")
        );
    }
}
