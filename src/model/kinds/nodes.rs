//! The nodes: the key pair they are launched with, and the instances.

use serde::{Deserialize, Serialize};

use super::{Kind, Place};
use crate::model::Address;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyPairSpec {
    pub name: String,
    /// Compared instead of the key itself: AWS cannot give the key back.
    pub public_key_sha256: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub public_key: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceSpec {
    pub pool: String,
    pub instance_type: String,
    pub ami: String,
    pub subnet: Address,
    pub security_groups: Vec<Address>,
    pub key_pair: Address,
    pub root_volume_gb: u32,
    pub imdsv2_required: bool,
    /// How many network hops a metadata response may travel (1–64): 1 keeps it on the node,
    /// out of reach of containers behind Docker's bridge, which are one hop further.
    #[serde(default = "one_hop")]
    pub metadata_hop_limit: u8,
    /// `iam.instance_profile.nodes` when the stack's nodes need an identity; changed in place
    /// (AssociateIamInstanceProfile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_profile: Option<Address>,
    pub user_data_sha256: String,
    /// The rendered script; kept in plans (apply needs it) but not compared or shown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_data: String,
}

/// EC2's own default hop limit, and what states written before the field hold.
fn one_hop() -> u8 {
    1
}

impl Kind for KeyPairSpec {
    const NAME: &'static str = "key_pair";
    const PLACE: Place = Place::Ec2;
    const REPLACE_FIELDS: &'static [&'static str] = &["name", "public_key_sha256"];
    fn references(&self) -> Vec<&Address> {
        vec![]
    }
}

impl Kind for InstanceSpec {
    const NAME: &'static str = "instance";
    const PLACE: Place = Place::Ec2;
    const REPLACE_FIELDS: &'static [&'static str] = &[
        "pool",
        "instance_type",
        "ami",
        "subnet",
        "key_pair",
        "root_volume_gb",
        "imdsv2_required",
        "user_data_sha256",
    ];
    fn references(&self) -> Vec<&Address> {
        [&self.subnet, &self.key_pair]
            .into_iter()
            .chain(&self.security_groups)
            .chain(&self.instance_profile)
            .collect()
    }
}
