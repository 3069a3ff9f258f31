//! What one object should look like, as one enum over the kinds of [`super::kinds`].
//! References to other objects are addresses, never ids: desired and live specs are compared in
//! address space, and ids are resolved only at apply time.

use serde::{Deserialize, Serialize};

use super::Address;
use super::kinds::*;

/// The one field whose values are never shown, even as hashes.
pub const SENSITIVE_FIELD: (&str, &str) = ("secret", "value");

/// Declares [`Spec`], one variant a kind, and dispatches [`Kind`] to the variant's struct.
macro_rules! kinds {
    ($($variant:ident($spec:ty),)*) => {
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        pub enum Spec {
            $($variant($spec),)*
        }

        impl Spec {
            /// The kind's name ([`Kind::NAME`]).
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Spec::$variant(_) => <$spec as Kind>::NAME,)*
                }
            }

            /// Where the object lives ([`Kind::PLACE`]).
            pub fn place(&self) -> Place {
                match self {
                    $(Spec::$variant(_) => <$spec as Kind>::PLACE,)*
                }
            }

            /// Fields whose change cannot be made in place ([`Kind::REPLACE_FIELDS`]).
            pub fn replace_fields(&self) -> &'static [&'static str] {
                match self {
                    $(Spec::$variant(_) => <$spec as Kind>::REPLACE_FIELDS,)*
                }
            }

            /// Why changing `field` from `before` to `after` replaces the object, by a rule on
            /// values ([`Kind::refuses_in_place`]).
            pub fn refuses_in_place(
                &self,
                field: &str,
                before: &serde_json::Value,
                after: &serde_json::Value,
            ) -> Option<&'static str> {
                match self {
                    $(Spec::$variant(_) => <$spec as Kind>::refuses_in_place(field, before, after),)*
                }
            }

            /// Why replacing `dependency` replaces this object too ([`Kind::replaced_with`]).
            pub fn replaced_with(&self, dependency: &Spec) -> Option<&'static str> {
                match self {
                    $(Spec::$variant(s) => s.replaced_with(dependency),)*
                }
            }

            /// Every address this object refers to ([`Kind::references`]).
            pub fn references(&self) -> Vec<&Address> {
                match self {
                    $(Spec::$variant(s) => s.references(),)*
                }
            }
        }
    };
}

// Every kind of plan object: a new kind is one line here (and its file in model/kinds/).
kinds! {
    Vpc(VpcSpec),
    Subnet(SubnetSpec),
    InternetGateway(InternetGatewaySpec),
    RouteTable(RouteTableSpec),
    SecurityGroup(SecurityGroupSpec),
    KeyPair(KeyPairSpec),
    IamRole(IamRoleSpec),
    InstanceProfile(InstanceProfileSpec),
    Repository(RepositorySpec),
    LogGroup(LogGroupSpec),
    Instance(InstanceSpec),
    LoadBalancer(LoadBalancerSpec),
    TargetGroup(TargetGroupSpec),
    Listener(ListenerSpec),
    Targets(TargetsSpec),
    SwarmNode(SwarmNodeSpec),
    Secret(SecretSpec),
    SwarmSecret(SwarmSecretSpec),
    SwarmNetwork(SwarmNetworkSpec),
    SwarmConfig(SwarmConfigSpec),
    Service(ServiceSpec),
}

impl Spec {
    /// Objects that live on the Swarm (apply reaches them over SSH through a manager).
    pub fn on_swarm(&self) -> bool {
        self.place() == Place::Swarm
    }

    /// The fields that are compared and shown, as JSON values in declaration order.
    /// Bulky inputs that are represented by a hash (user-data, public key, compose definition),
    /// where a secret comes from and what apply waits for are left out.
    pub fn attributes(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut value = serde_json::to_value(self).expect("specs serialize");
        let map = value.as_object_mut().expect("specs are objects");
        map.shift_remove("type");
        map.shift_remove("user_data");
        map.shift_remove("public_key");
        map.shift_remove("source");
        map.shift_remove("definition");
        map.shift_remove("content");
        map.shift_remove("create_args");
        map.shift_remove("health");
        map.shift_remove("advanced");
        std::mem::take(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kind's name is the `type` its spec is stored under in state and plan files.
    #[test]
    fn each_kinds_name_is_its_type_in_files() {
        let specs = [
            Spec::Vpc(VpcSpec {
                cidr: "10.0.0.0/16".into(),
                dns_hostnames: true,
            }),
            Spec::InternetGateway(InternetGatewaySpec { vpc: None }),
            Spec::SwarmSecret(SwarmSecretSpec {
                name: "s_1".into(),
                secret: Address::new("secret.s"),
            }),
            Spec::Service(ServiceSpec {
                image: "web:1".into(),
                mode: "global".into(),
                state: CONVERGED.into(),
                ports: vec![],
                secrets: vec![],
                networks: vec![],
                configs: vec![],
                definition_sha256: String::new(),
                definition: String::new(),
            }),
        ];
        for spec in specs {
            let value = serde_json::to_value(&spec).expect("serializes");
            assert_eq!(value["type"], spec.kind());
        }
    }
}
