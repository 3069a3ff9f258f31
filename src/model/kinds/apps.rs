//! The application half: secrets in Parameter Store, and on the Swarm its members, secrets,
//! networks, configs and services.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Kind, Place};
use crate::model::{Address, Spec};

/// A node's membership of the Swarm. Joining is creating it; a rejoin replaces it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwarmNodeSpec {
    /// The instance this member runs on.
    pub instance: Address,
    /// `manager` or `worker`.
    pub role: String,
    /// `active`, `pause` or `drain`.
    pub availability: String,
    /// `ready` when it is a working member; anything else (`down`) means it must rejoin.
    pub state: String,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// A secret's value in Parameter Store (SecureString). Only a keyed hash of the value is
/// compared, shown (masked) and kept: the value itself is read from its source at apply time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecretSpec {
    pub parameter: String,
    /// `hmac-sha256:<hex>` of the value, keyed with the stack's hashing key.
    pub value: String,
    /// Where apply reads the value (`env:NAME` or `file:/path`); not compared.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Parameter Store's advanced tier; not compared (Parameter Store lists values without it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub advanced: bool,
}

/// A Swarm secret, named after its secret and a short keyed hash of the content: a new value is
/// a new Swarm secret, and services roll onto it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwarmSecretSpec {
    pub name: String,
    /// The Parameter Store secret it is made from.
    pub secret: Address,
}

/// An overlay network of the stack's compose file, created by infra (`docker network create`)
/// so that it is a plan object; Docker cannot change a network in place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwarmNetworkSpec {
    /// `<stack>_<key>`, or the file's `name:`.
    pub name: String,
    pub driver: String,
    pub attachable: bool,
    pub internal: bool,
    /// IPsec between nodes (`driver_opts: encrypted`).
    pub encrypted: bool,
    /// Hash of the whole definition (options, labels, subnets): any other change shows here.
    pub definition_sha256: String,
    /// `docker network create` flags; kept in plans (apply needs them) but not compared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create_args: Vec<String>,
}

/// A config of the stack's compose file, read from a file on the user's side and named after its
/// key and a hash of its content: new content is a new config, and services roll onto it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwarmConfigSpec {
    pub name: String,
    pub content_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_driver: Option<String>,
    /// The content; kept in plans (apply needs it) but not compared.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content: String,
}

/// A Swarm service, deployed with `docker stack deploy`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub image: String,
    /// `global`, `replicated N`, `replicated-job` or `global-job`.
    pub mode: String,
    /// [`CONVERGED`], or what Docker reports that will not resolve by itself: an update or a
    /// rollback paused, tasks short because one failed or cannot be placed (`update paused
    /// (…)`, `1 of 2 tasks running; web.2 rejected: …`), which apply retries.
    #[serde(default = "converged")]
    pub state: String,
    pub ports: Vec<String>,
    pub secrets: Vec<Address>,
    /// The networks and configs infra created that it uses.
    #[serde(default)]
    pub networks: Vec<Address>,
    #[serde(default)]
    pub configs: Vec<Address>,
    /// Hash of the whole compose definition: any other change shows here.
    pub definition_sha256: String,
    /// The compose document to deploy; kept in plans (apply needs it) but not compared.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub definition: String,
}

impl Kind for SwarmNodeSpec {
    const NAME: &'static str = "swarm_node";
    const PLACE: Place = Place::Swarm;
    const REPLACE_FIELDS: &'static [&'static str] = &["instance", "state"];
    fn references(&self) -> Vec<&Address> {
        vec![&self.instance]
    }
}

impl Kind for SecretSpec {
    const NAME: &'static str = "secret";
    const PLACE: Place = Place::Ssm;
    const REPLACE_FIELDS: &'static [&'static str] = &["parameter"];
    fn references(&self) -> Vec<&Address> {
        vec![]
    }
}

impl Kind for SwarmSecretSpec {
    const NAME: &'static str = "swarm_secret";
    const PLACE: Place = Place::Swarm;
    const REPLACE_FIELDS: &'static [&'static str] = &["name", "secret"];
    fn references(&self) -> Vec<&Address> {
        vec![&self.secret]
    }
}

impl Kind for SwarmNetworkSpec {
    const NAME: &'static str = "swarm_network";
    const PLACE: Place = Place::Swarm;
    const REPLACE_FIELDS: &'static [&'static str] = &[
        "name",
        "driver",
        "attachable",
        "internal",
        "encrypted",
        "definition_sha256",
    ];
    fn references(&self) -> Vec<&Address> {
        vec![]
    }
}

impl Kind for SwarmConfigSpec {
    const NAME: &'static str = "swarm_config";
    const PLACE: Place = Place::Swarm;
    const REPLACE_FIELDS: &'static [&'static str] = &["name", "content_sha256", "template_driver"];
    fn references(&self) -> Vec<&Address> {
        vec![]
    }
}

/// A service's [`ServiceSpec::state`] when nothing is left to do.
pub const CONVERGED: &str = "converged";

fn converged() -> String {
    CONVERGED.to_string()
}

impl Kind for ServiceSpec {
    const NAME: &'static str = "service";
    const PLACE: Place = Place::Swarm;
    /// Everything else Docker updates in place, as a rolling update: swarmkit's
    /// `controlapi.UpdateService` refuses only a rename (the name is the address here), a
    /// mode type change (below) and the deprecated `Spec.Networks` alone (not written here).
    const REPLACE_FIELDS: &'static [&'static str] = &[];
    fn references(&self) -> Vec<&Address> {
        self.secrets
            .iter()
            .chain(&self.networks)
            .chain(&self.configs)
            .collect()
    }

    /// Between replicated, global and the job modes: swarmkit's `controlapi.UpdateService`
    /// refuses any change of the mode's type (`service mode change is not allowed`); the
    /// replica count changes in place.
    fn refuses_in_place(field: &str, before: &Value, after: &Value) -> Option<&'static str> {
        let kind = |v: &Value| {
            v.as_str()
                .and_then(|m| m.split(' ').next().map(str::to_string))
        };
        (field == "mode" && kind(before) != kind(after)).then_some(
            "mode cannot change in place (Docker: \"service mode change is not allowed\"): \
             the service is removed, then created, and runs no task in between",
        )
    }

    /// Docker removes no network a service still uses (`network … is in use by service …`),
    /// and a network's definition cannot change in place.
    fn replaced_with(&self, dependency: &Spec) -> Option<&'static str> {
        matches!(dependency, Spec::SwarmNetwork(_)).then_some(
            "Docker cannot remove a network a service uses: the service is removed, then \
             created on the new network, and runs no task in between",
        )
    }
}
