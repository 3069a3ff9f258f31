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
    pub user_data_sha256: String,
    /// The rendered script; kept in plans (apply needs it) but not compared or shown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_data: String,
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
            .collect()
    }
}
