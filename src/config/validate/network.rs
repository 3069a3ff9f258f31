//! `[network]`: the VPC block, one public subnet per zone, and the CIDR lists that may reach the
//! stack.

use std::ops::Range;

use ipnet::Ipv4Net;
use toml::Spanned;

use super::Validator;
use crate::config::schema::*;
use crate::model::*;

impl<'a> Validator<'a> {
    fn cidr(&mut self, s: &Spanned<String>, what: &str) -> Option<Ipv4Net> {
        match s.get_ref().parse::<Ipv4Net>() {
            Ok(net) if net.trunc() == net => Some(net),
            Ok(net) => {
                let msg = format!(
                    "{what} {} has host bits set; did you mean {}?",
                    net,
                    net.trunc()
                );
                self.error(s.span(), msg, None);
                None
            }
            Err(_) => {
                let msg = format!("{what} {:?} is not an IPv4 CIDR block", s.get_ref());
                self.error(s.span(), msg, Some("write it like 10.0.0.0/16"));
                None
            }
        }
    }

    fn cidr_list(
        &mut self,
        list: &Option<Vec<Spanned<String>>>,
        what: &str,
        default: &[&str],
    ) -> Vec<Ipv4Net> {
        match list {
            Some(list) => list.iter().filter_map(|c| self.cidr(c, what)).collect(),
            None => default
                .iter()
                .map(|c| c.parse().expect("valid default"))
                .collect(),
        }
    }

    pub(super) fn network(
        &mut self,
        n: &NetworkFile,
        span: Range<usize>,
        region: Option<&str>,
    ) -> Option<Network> {
        let cidr = self.cidr(&n.cidr, "network.cidr");
        if let Some(c) = cidr
            && !(16..=28).contains(&c.prefix_len())
        {
            self.error(
                n.cidr.span(),
                format!("VPC block {c} must have a prefix between /16 and /28"),
                None,
            );
        }
        let mut subnets: Vec<Subnet> = Vec::new();
        for s in n.subnets.get_ref() {
            if let Some(subnet) = self.subnet(s.get_ref(), cidr, region, &subnets) {
                subnets.push(subnet);
            }
        }
        let zones = n.subnets.get_ref().len();
        if zones < 2 {
            let msg = format!("the network has {zones} subnet(s); at least two zones are required");
            let help =
                "an Application Load Balancer needs subnets in two or more availability zones";
            let at = if zones == 0 { span } else { n.subnets.span() };
            self.error(at, msg, Some(help));
        }
        let ingress_cidrs = self.cidr_list(&n.ingress_cidrs, "ingress_cidrs entry", &["0.0.0.0/0"]);
        let admin_cidrs = self.cidr_list(&n.admin_cidrs, "admin_cidrs entry", &[]);
        Some(Network {
            cidr: cidr?,
            subnets,
            ingress_cidrs,
            admin_cidrs,
        })
    }

    /// One `[[network.subnets]]` entry: its zone in the region and not taken, its block a
    /// usable size, inside the VPC's and clear of the `subnets` before it.
    fn subnet(
        &mut self,
        sub: &SubnetFile,
        cidr: Option<Ipv4Net>,
        region: Option<&str>,
        subnets: &[Subnet],
    ) -> Option<Subnet> {
        let zone = sub.zone.get_ref().clone();
        if let Some(region) = region
            && !zone.starts_with(region)
        {
            self.error(
                sub.zone.span(),
                format!("zone {zone:?} is not in region {region}"),
                None,
            );
        }
        if subnets.iter().any(|o| o.zone == zone) {
            let help = "one public subnet per zone; list each zone once";
            self.error(
                sub.zone.span(),
                format!("zone {zone:?} has a subnet already"),
                Some(help),
            );
        }
        let net = self.cidr(&sub.cidr, "subnet cidr")?;
        // Subnets are /16 to /28 (CreateSubnet); the load balancer needs a /27 at least
        // with 8 free addresses in each of its subnets ("Subnets for your Application Load
        // Balancer"), and every subnet here holds it.
        if !(16..=27).contains(&net.prefix_len()) {
            let why = if net.prefix_len() <= 28 && net.prefix_len() >= 16 {
                "too small for the load balancer, which needs a /27 or larger with 8 free addresses in each subnet"
            } else {
                "AWS subnets are /16 to /28"
            };
            self.error(
                sub.cidr.span(),
                format!("subnet {net} cannot be used: {why}"),
                Some("use a /24, for instance"),
            );
            return None;
        }
        if let Some(vpc) = cidr
            && !vpc.contains(&net)
        {
            self.error(
                sub.cidr.span(),
                format!("subnet {net} is outside the VPC block {vpc}"),
                None,
            );
            return None;
        }
        if let Some(o) = subnets
            .iter()
            .find(|o| o.cidr.contains(&net.network()) || net.contains(&o.cidr.network()))
        {
            let msg = format!("subnet {net} overlaps subnet {} ({})", o.cidr, o.zone);
            self.error(sub.cidr.span(), msg, None);
            return None;
        }
        Some(Subnet { zone, cidr: net })
    }
}
