//! What a plan is asked for beyond the stack file: destroy, replacements, a roll.

use crate::model::Address;

/// What a plan is asked for beyond the stack file.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Remove everything the stack owns.
    pub destroy: bool,
    /// Replace these objects though nothing about them changed (Terraform's `-replace`).
    pub replace: Vec<Address>,
    /// Roll nodes onto their pool's current AMI (`infra roll-nodes`).
    pub roll: Option<Roll>,
    /// Workers replaced at once in a rolling replacement (at least 1; managers: always 1).
    pub max_unavailable: usize,
    /// Destroy only: leave the Swarm alone (its nodes are gone or out of reach) and remove the
    /// cloud objects.
    pub skip_swarm: bool,
    /// Only the stack's ECR repositories (`--registry-only`): made before the first push, so
    /// that the services' images can be pushed before they are deployed.
    pub registry_only: bool,
}

/// Which nodes `infra roll-nodes` replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Roll {
    /// Those whose AMI is not their pool's current one.
    Outdated,
    /// Every node.
    All,
}
