//! The nodes' identity in IAM: the role every node of the stack assumes, and the instance
//! profile that hands it to the instances.

use serde::{Deserialize, Serialize};

use super::{Kind, Place};
use crate::model::Address;

/// `iam.role.nodes`: the role the nodes assume, with infra's own inline policy (what the
/// stack's features need) and the managed policies the user attaches (`[nodes] iam_policies`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IamRoleSpec {
    /// `infra-<stack>-nodes`.
    pub name: String,
    /// Who may assume it: EC2 (JSON, as IAM stores it).
    pub trust_policy: String,
    /// infra's inline policy `infra-nodes` (JSON); compared by content.
    pub policy: String,
    /// Managed policy ARNs attached to the role, sorted.
    pub managed_policies: Vec<String>,
}

/// `iam.instance_profile.nodes`: what RunInstances takes; holds exactly one role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceProfileSpec {
    /// `infra-<stack>-nodes`.
    pub name: String,
    pub role: Address,
}

impl Kind for IamRoleSpec {
    const NAME: &'static str = "iam_role";
    const PLACE: Place = Place::Iam;
    // IAM has no rename: UpdateRole takes neither the name nor the path.
    // https://docs.aws.amazon.com/IAM/latest/APIReference/API_UpdateRole.html
    const REPLACE_FIELDS: &'static [&'static str] = &["name"];
    fn references(&self) -> Vec<&Address> {
        vec![]
    }
}

impl Kind for InstanceProfileSpec {
    const NAME: &'static str = "instance_profile";
    const PLACE: Place = Place::Iam;
    // Instance profiles have no rename either; their role is swapped in place
    // (RemoveRoleFromInstanceProfile, AddRoleToInstanceProfile).
    const REPLACE_FIELDS: &'static [&'static str] = &["name"];
    fn references(&self) -> Vec<&Address> {
        vec![&self.role]
    }
}
