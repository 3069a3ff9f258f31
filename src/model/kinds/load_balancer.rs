//! The load balancer: the ALB, its target groups, listeners and registered targets.

use serde::{Deserialize, Serialize};

use super::{Kind, Place};
use crate::model::{Address, HealthCheck};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancerSpec {
    pub name: String,
    pub subnets: Vec<Address>,
    pub security_groups: Vec<Address>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetGroupSpec {
    pub name: String,
    pub vpc: Address,
    pub port: u16,
    pub health_check: HealthCheck,
    pub deregistration_delay: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListenerSpec {
    pub load_balancer: Address,
    pub port: u16,
    pub protocol: String,
    pub certificate_arn: Option<String>,
    pub ssl_policy: Option<String>,
    pub action: ListenerAction,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerAction {
    Forward { target_group: Address },
    RedirectHttps { port: u16 },
}

/// The instances registered in a target group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetsSpec {
    pub target_group: Address,
    pub instances: Vec<Address>,
    /// What apply waits for once they are registered (see `model::targets::serving`); a
    /// judgement of the plan, not compared.
    #[serde(default)]
    pub health: HealthWait,
}

/// What apply waits for after registering targets, bounded in time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthWait {
    /// Every newly registered target passes the target group's health check.
    #[default]
    All,
    /// At least this many registered targets are healthy (a replicated service published on
    /// its nodes' own port runs on only some of them).
    AtLeast(usize),
    /// Nothing: no node serves the target port; why.
    Skip(String),
}

impl Kind for LoadBalancerSpec {
    const NAME: &'static str = "load_balancer";
    const PLACE: Place = Place::Elbv2;
    const REPLACE_FIELDS: &'static [&'static str] = &["name"];
    fn references(&self) -> Vec<&Address> {
        self.subnets.iter().chain(&self.security_groups).collect()
    }
}

impl Kind for TargetGroupSpec {
    const NAME: &'static str = "target_group";
    const PLACE: Place = Place::Elbv2;
    const REPLACE_FIELDS: &'static [&'static str] = &["name", "vpc", "port"];
    fn references(&self) -> Vec<&Address> {
        vec![&self.vpc]
    }
}

impl Kind for ListenerSpec {
    const NAME: &'static str = "listener";
    const PLACE: Place = Place::Elbv2;
    // Its action (which target group it forwards to) changes in place: ModifyListener.
    const REPLACE_FIELDS: &'static [&'static str] = &["load_balancer", "port"];
    fn references(&self) -> Vec<&Address> {
        let mut refs = vec![&self.load_balancer];
        if let ListenerAction::Forward { target_group } = &self.action {
            refs.push(target_group);
        }
        refs
    }
}

impl Kind for TargetsSpec {
    const NAME: &'static str = "targets";
    const PLACE: Place = Place::Elbv2;
    const REPLACE_FIELDS: &'static [&'static str] = &["target_group"];
    fn references(&self) -> Vec<&Address> {
        [&self.target_group]
            .into_iter()
            .chain(&self.instances)
            .collect()
    }
}
