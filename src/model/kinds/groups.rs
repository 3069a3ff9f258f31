//! Security groups and their ingress rules.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Kind, Place};
use crate::model::Address;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroupSpec {
    pub name: String,
    pub description: String,
    pub vpc: Address,
    pub ingress: Vec<Rule>,
}

/// An ingress rule; serialized as its readable form, e.g. `tcp/443 from 0.0.0.0/0`, or
/// `esp from sg.node` for IP protocol 50 (which has no ports).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rule {
    /// `tcp`, `udp` or `-1` (all).
    pub protocol: String,
    pub from_port: u16,
    pub to_port: u16,
    pub source: Source,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    Cidr(String),
    Group(Address),
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ports = if self.from_port == self.to_port {
            self.from_port.to_string()
        } else {
            format!("{}-{}", self.from_port, self.to_port)
        };
        let source = match &self.source {
            Source::Cidr(c) => c.clone(),
            Source::Group(a) => a.to_string(),
        };
        match self.protocol.as_str() {
            "tcp" | "udp" => write!(f, "{}/{} from {}", self.protocol, ports, source),
            // IP protocol 50; other protocols have no ports.
            "50" => write!(f, "esp from {source}"),
            other => write!(f, "{other} from {source}"),
        }
    }
}

impl std::str::FromStr for Rule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("not a rule: {s:?} (expected like tcp/443 from 0.0.0.0/0)");
        let (proto_ports, source) = s.split_once(" from ").ok_or_else(bad)?;
        let (protocol, ports) = match proto_ports.split_once('/') {
            Some(pp) => pp,
            None if proto_ports == "esp" => ("50", "0"),
            None => (proto_ports, "0"),
        };
        let (from, to) = ports.split_once('-').unwrap_or((ports, ports));
        let source = if source.parse::<ipnet::Ipv4Net>().is_ok() {
            Source::Cidr(source.to_string())
        } else {
            Source::Group(Address::new(source))
        };
        Ok(Rule {
            protocol: protocol.to_string(),
            from_port: from.parse().map_err(|_| bad())?,
            to_port: to.parse().map_err(|_| bad())?,
            source,
        })
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Kind for SecurityGroupSpec {
    const NAME: &'static str = "security_group";
    const PLACE: Place = Place::Ec2;
    const REPLACE_FIELDS: &'static [&'static str] = &["name", "description", "vpc"];
    fn references(&self) -> Vec<&Address> {
        let groups = self.ingress.iter().filter_map(|r| match &r.source {
            Source::Group(a) => Some(a),
            Source::Cidr(_) => None,
        });
        [&self.vpc].into_iter().chain(groups).collect()
    }
}
