//! Reads everything the stack owns: one call (plus pages) per resource type, whatever the
//! number of nodes. EC2 objects are found by the `infra:stack` tag ([`ec2`]); the load balancer
//! and target groups by their deterministic names ([`elb`]: ELBv2 has no tag filter). Each
//! service's reader runs its calls at once, and both readers run together.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Instance, Tag};

use super::{Cloud, CloudError};
use crate::model::*;

pub(crate) use elb::DEREGISTRATION_DELAY;

pub const TAG_STACK: &str = "infra:stack";
pub const TAG_ADDRESS: &str = "infra:address";
pub const TAG_POOL: &str = "infra:pool";
/// On instances launched together: the address index of each launch index, e.g. `0,2,4`.
pub const TAG_SLOTS: &str = "infra:slots";
pub const TAG_USER_DATA: &str = "infra:user-data-sha256";
pub const TAG_PUBLIC_KEY: &str = "infra:public-key-sha256";

pub(crate) fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// Translates AWS ids into addresses; an id that is not the stack's stays as it is, so the
/// difference shows in the plan.
#[derive(Default)]
pub(super) struct Addresses {
    by_id: BTreeMap<String, Address>,
}

impl Addresses {
    pub(super) fn add(&mut self, id: Option<&str>, address: &Address) {
        if let Some(id) = id {
            self.by_id.insert(id.to_string(), address.clone());
        }
    }
    pub(super) fn of(&self, id: Option<&str>) -> Address {
        let id = id.unwrap_or("(none)");
        self.by_id
            .get(id)
            .cloned()
            .unwrap_or_else(|| Address::new(id))
    }
    pub(super) fn all<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Vec<Address> {
        let mut v: Vec<Address> = ids.into_iter().map(|id| self.of(Some(id))).collect();
        v.sort();
        v
    }
}

pub(super) fn addressed(tags: &[Tag], kind: &str, id: &str) -> Address {
    tag(tags, TAG_ADDRESS).map_or_else(|| Address::new(format!("orphan.{kind}.{id}")), Address::new)
}

pub(super) fn instance_address(i: &Instance) -> Address {
    let tags = i.tags();
    if let Some(a) = tag(tags, TAG_ADDRESS) {
        return Address::new(a);
    }
    // Launched in a batch and killed before the per-instance address tag: the launch index
    // picks this instance's slot.
    let slot = tag(tags, TAG_SLOTS)
        .zip(tag(tags, TAG_POOL))
        .zip(i.ami_launch_index())
        .and_then(|((slots, pool), launch)| {
            let index: usize = slots.split(',').nth(launch as usize)?.parse().ok()?;
            Some(Address::node(pool, index))
        });
    slot.unwrap_or_else(|| {
        Address::new(format!(
            "orphan.instance.{}",
            i.instance_id().unwrap_or("?")
        ))
    })
}

pub(super) fn outputs(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v.to_string())))
        .collect()
}

/// Every page of a describe call, as one list; an error names the call.
macro_rules! all_pages {
    ($request:expr, $call:literal, $resource:expr) => {
        async {
            $request
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .map_err(fail($resource, $call))
        }
    };
}

mod ec2;
mod elb;

/// What the stack may own that no tag filter finds (IAM, ECR and CloudWatch Logs have none on
/// their reads): read by name when the stack file or the state names it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Named {
    /// The nodes' role and instance profile (`infra-<stack>-nodes`).
    pub node_role: bool,
    /// Repository names.
    pub repositories: std::collections::BTreeSet<String>,
    /// The log group's name (`/infra/<stack>`).
    pub log_group: Option<String>,
}

impl Named {
    /// What `stack` and the objects of `known` (a state's, a plan's) name.
    pub fn of<'a>(stack: Option<&Stack>, known: impl IntoIterator<Item = &'a Spec>) -> Named {
        let mut named = Named {
            node_role: stack.is_some_and(Stack::nodes_need_role),
            repositories: stack
                .and_then(|s| s.registry.as_ref())
                .map(|r| r.repositories.iter().cloned().collect())
                .unwrap_or_default(),
            log_group: stack.filter(|s| s.logging.is_some()).map(Stack::log_group),
        };
        for spec in known {
            match spec {
                Spec::IamRole(_) | Spec::InstanceProfile(_) => named.node_role = true,
                Spec::Repository(r) => {
                    named.repositories.insert(r.name.clone());
                }
                Spec::LogGroup(g) => named.log_group = Some(g.name.clone()),
                _ => {}
            }
        }
        named
    }
}

impl Cloud {
    /// Every object the stack owns, by address; one the plan cannot place is an orphan.
    pub async fn read_live(&self, named: &Named) -> Result<Live, CloudError> {
        let iam = async {
            match named.node_role {
                true => self.read_iam().await,
                false => Ok(Live::new()),
            }
        };
        let (ec2, elb, iam, ecr, logs) = tokio::try_join!(
            self.read_ec2(),
            self.read_elb(),
            iam,
            self.read_ecr(&named.repositories),
            self.read_logs(named.log_group.as_deref())
        )?;
        let mut names = Addresses::default();
        for (address, o) in &iam {
            names.add(Some(&o.id), address);
        }
        ec2.name(&mut names);
        let mut live = Live::new();
        live.extend(iam);
        live.extend(ecr);
        live.extend(logs);
        ec2.observe(&names, &mut live);
        elb.observe(&mut names, &mut live);
        Ok(live)
    }
}

pub(super) const LIVE_STATES: &[&str] = &["pending", "running", "stopping", "stopped"];

pub(crate) fn instance_outputs(i: &Instance) -> BTreeMap<String, String> {
    outputs(&[
        ("private_ip", i.private_ip_address()),
        ("public_ip", i.public_ip_address()),
        ("zone", i.placement().and_then(|p| p.availability_zone())),
        (
            "state",
            i.state().and_then(|s| s.name()).map(|n| n.as_str()),
        ),
    ])
}

pub(super) fn insert(
    live: &mut Live,
    address: Address,
    id: Option<&str>,
    spec: Spec,
    outputs: BTreeMap<String, String>,
) {
    let id = id.unwrap_or_default().to_string();
    // Two objects claiming one address (a duplicate): keep the first, mark the other an orphan
    // so the plan removes it.
    let address = if live.contains_key(&address) {
        Address::new(format!("orphan.{}.{}", spec.kind(), id))
    } else {
        address
    };
    live.insert(address, Observed { id, spec, outputs });
}
