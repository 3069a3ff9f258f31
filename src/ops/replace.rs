//! What a plan replaces on purpose, and what it keeps: nodes keep the AMI they were created
//! with until a replacement is asked for (`--replace`, `infra roll-nodes`); a new public key gets
//! a key pair name of its own, so that nodes can roll onto it.

use std::collections::{BTreeMap, BTreeSet};

use super::{Request, Roll};
use crate::model::resources::Resource;
use crate::model::{Address, Live, Role, Spec};

/// An AMI a pool takes from an SSM parameter, as resolved by this plan.
#[derive(Clone, Debug)]
pub(super) struct Published {
    pub parameter: String,
    pub ami: String,
    /// When the parameter was last written (RFC 3339).
    pub modified: Option<String>,
}

/// The key pair keeps the name it has while its key is unchanged; a new key is imported under a
/// name of its own (`infra-<stack>-<hash>`, EC2 key names are unique), so that the old pair
/// stays until the last node launched with it has rolled.
pub(super) fn name_key_pair(desired: &mut [Resource], live: &Live) {
    for r in desired.iter_mut() {
        let Spec::KeyPair(want) = &mut r.spec else {
            continue;
        };
        let Some(Spec::KeyPair(have)) = live.get(&r.address).map(|o| &o.spec) else {
            continue;
        };
        if have.public_key_sha256 == want.public_key_sha256 {
            want.name = have.name.clone();
        } else if have.name == want.name {
            want.name = format!("{}-{}", want.name, &want.public_key_sha256[..8]);
        }
    }
}

/// Nodes keep the AMI they were created with: a pool's SSM parameter is resolved when a node is
/// first created, and a parameter that moved later replaces nothing by itself. A node is put on
/// the current AMI on purpose: `--replace ADDRESS`, or `infra roll-nodes` (`roll`). Returns the
/// addresses to replace and a notice per pool that has a newer AMI than some of its nodes run.
pub(super) fn pin_amis(
    desired: &mut [Resource],
    live: &Live,
    published: &BTreeMap<String, Published>,
    request: &Request,
) -> (BTreeSet<Address>, Vec<String>) {
    let mut replace: BTreeSet<Address> = request.replace.iter().cloned().collect();
    let mut outdated: BTreeMap<&str, Vec<(Address, String)>> = BTreeMap::new();
    for r in desired.iter_mut() {
        let Spec::Instance(want) = &mut r.spec else {
            continue;
        };
        if request.roll == Some(Roll::All)
            && want.pool != Role::Bastion.pool()
            && live.contains_key(&r.address)
        {
            replace.insert(r.address.clone());
        }
        let Some(p) = published.get(&want.pool) else {
            continue;
        };
        let Some(Spec::Instance(have)) = live.get(&r.address).map(|o| &o.spec) else {
            continue;
        };
        if have.ami == want.ami {
            continue;
        }
        if request.roll.is_some() || replace.contains(&r.address) {
            replace.insert(r.address.clone());
        } else {
            want.ami = have.ami.clone();
            outdated
                .entry(p.parameter.as_str())
                .or_default()
                .push((r.address.clone(), have.ami.clone()));
        }
    }
    let notices = outdated
        .into_iter()
        .map(|(parameter, nodes)| {
            let p = published
                .values()
                .find(|p| p.parameter == parameter)
                .expect("found above");
            let when = p
                .modified
                .as_deref()
                .map(|m| format!(", published {m}"))
                .unwrap_or_default();
            let list: Vec<String> = nodes.iter().map(|(a, ami)| format!("{a} ({ami})")).collect();
            format!(
                "a newer AMI is available: {} ({parameter}{when}). {} node(s) keep the AMI they were created with: {}.\n  Take it on purpose: `infra roll-nodes` replaces them one at a time, the new node first; `infra apply --replace {}` replaces one.",
                p.ami,
                nodes.len(),
                list.join(", "),
                nodes[0].0
            )
        })
        .collect();
    (replace, notices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{InstanceSpec, Observed};

    fn node(ami: &str) -> Spec {
        Spec::Instance(InstanceSpec {
            pool: "worker".into(),
            instance_type: "t3.small".into(),
            ami: ami.into(),
            subnet: Address::new("subnet[0]"),
            security_groups: vec![],
            key_pair: Address::new("key_pair"),
            root_volume_gb: 20,
            imdsv2_required: true,
            metadata_hop_limit: 1,
            instance_profile: None,
            user_data_sha256: String::new(),
            user_data: String::new(),
        })
    }

    fn ami_of(r: &Resource) -> &str {
        match &r.spec {
            Spec::Instance(i) => &i.ami,
            _ => unreachable!(),
        }
    }

    /// A moved parameter replaces nothing and is noticed once; `--replace` and `roll-nodes`
    /// take the current AMI; a node not yet created gets it.
    #[test]
    fn nodes_keep_their_ami_until_asked() {
        let (w0, w1, w2) = (
            Address::node("worker", 0),
            Address::node("worker", 1),
            Address::node("worker", 2),
        );
        let desired = || -> Vec<Resource> {
            [&w0, &w1, &w2]
                .iter()
                .map(|a| Resource {
                    address: (*a).clone(),
                    spec: node("ami-new"),
                })
                .collect()
        };
        let live: Live = [&w0, &w1]
            .iter()
            .map(|a| {
                let o = Observed {
                    id: "i-1".into(),
                    spec: node("ami-old"),
                    outputs: Default::default(),
                };
                ((*a).clone(), o)
            })
            .collect();
        let published = BTreeMap::from([(
            "worker".to_string(),
            Published {
                parameter: "/images/node".into(),
                ami: "ami-new".into(),
                modified: Some("2026-11-30T10:00:00Z".into()),
            },
        )]);
        let mut kept = desired();
        let (replace, notices) = pin_amis(&mut kept, &live, &published, &Request::default());
        assert!(replace.is_empty());
        assert_eq!(
            kept.iter().map(ami_of).collect::<Vec<_>>(),
            ["ami-old", "ami-old", "ami-new"]
        );
        assert_eq!(notices.len(), 1);
        assert!(
            notices[0].starts_with("a newer AMI is available: ami-new (/images/node, published 2026-11-30T10:00:00Z). 2 node(s) keep"),
            "{}",
            notices[0]
        );
        let mut one = desired();
        let asked = Request {
            replace: vec![w1.clone()],
            ..Default::default()
        };
        let (replace, _) = pin_amis(&mut one, &live, &published, &asked);
        assert_eq!(replace, BTreeSet::from([w1.clone()]));
        assert_eq!(
            one.iter().map(ami_of).collect::<Vec<_>>(),
            ["ami-old", "ami-new", "ami-new"]
        );
        let mut all = desired();
        let roll = Request {
            roll: Some(Roll::Outdated),
            ..Default::default()
        };
        let (replace, notices) = pin_amis(&mut all, &live, &published, &roll);
        assert_eq!(replace, BTreeSet::from([w0, w1]));
        assert!(notices.is_empty());
    }
}
