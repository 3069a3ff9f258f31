//! The kinds of plan objects, one file per area. Each kind is a spec struct (what the object
//! should look like, references as addresses) and an [`impl Kind`](Kind): its name, where it
//! lives, the fields that replace it and what it references.
//!
//! Adding a kind (docs/architecture.md, "Adding an object kind"): its struct and `impl Kind` in
//! a file here, one line in the `kinds!` list of `model/spec.rs`; then its expansion
//! (`model/resources`), its reader (`cloud/read` or `swarm/observe`) and its executor (the
//! service module that [`Place`] names: `cloud::<service>` or `swarm`).

mod apps;
mod groups;
mod identity;
mod load_balancer;
mod logs;
mod network;
mod nodes;
mod registry;

pub use apps::*;
pub use groups::*;
pub use identity::*;
pub use load_balancer::*;
pub use logs::*;
pub use network::*;
pub use nodes::*;
pub use registry::*;

use serde_json::Value;

use super::{Address, Spec};

/// Where an object lives, and so which reader and executor handle it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Amazon EC2 (VPC objects, security groups, key pairs, instances).
    Ec2,
    /// Elastic Load Balancing v2 (load balancers, target groups, listeners, targets).
    Elbv2,
    /// Systems Manager Parameter Store.
    Ssm,
    /// AWS Identity and Access Management (the nodes' role and instance profile).
    Iam,
    /// Amazon Elastic Container Registry (the stack's image repositories).
    Ecr,
    /// Amazon CloudWatch Logs (the services' log group).
    Logs,
    /// The Swarm on the nodes, reached over SSH through a manager.
    Swarm,
}

/// What every kind of plan object provides; [`super::Spec`] dispatches to it.
pub trait Kind {
    /// Its name in plans and orphan addresses, and its `type` in state and plan files
    /// (snake case of its `Spec` variant: `InternetGateway` is `internet_gateway`).
    const NAME: &'static str;
    /// Where it lives.
    const PLACE: Place;
    /// Fields whose change cannot be made in place: the object is replaced, the others change
    /// in place. AWS: the service has no Modify call that takes the field (a VPC's or subnet's
    /// CIDR, an instance's AMI); Docker: swarmkit's control API refuses it (a config's or
    /// secret's content: "only updates to Labels are allowed"; a network has no update).
    const REPLACE_FIELDS: &'static [&'static str];
    /// Every address it refers to: those exist first and are removed last.
    fn references(&self) -> Vec<&Address>;

    /// Why a change of `field` from `before` to `after` cannot be made in place when the field
    /// is not in [`Self::REPLACE_FIELDS`] because the rule is on its values (a service's mode
    /// *type*), with the rule's source; None when it can.
    fn refuses_in_place(_field: &str, _before: &Value, _after: &Value) -> Option<&'static str> {
        None
    }

    /// Why this object must be replaced too when `dependency`, which it refers to, is replaced
    /// (removed, then created again); None when an update in place follows it.
    fn replaced_with(&self, _dependency: &Spec) -> Option<&'static str> {
        None
    }
}
