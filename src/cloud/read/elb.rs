//! The stack's load balancer objects, found by their deterministic names (ELBv2 has no tag
//! filter): the load balancer, its listeners, the target groups with their deregistration
//! delay, and the targets registered in each with their health.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types::{
    ActionTypeEnum, Listener, LoadBalancer, TargetGroup, TargetHealthDescription,
};

use super::{Addresses, insert, outputs};
use crate::cloud::{Cloud, CloudError, NOT_FOUND_YET, fail, retry_on};
use crate::model::resources::Names;
use crate::model::*;

pub(crate) const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";

/// What ELBv2 holds of the stack.
pub(super) struct ElbObjects {
    lb: Option<LoadBalancer>,
    listeners: Vec<Listener>,
    /// Each target group with its targets' health and its deregistration delay (seconds).
    target_groups: Vec<(Address, TargetGroup, Vec<TargetHealthDescription>, u32)>,
}

impl Cloud {
    /// The load balancer and target groups by name, then the listeners, each group's targets
    /// and its attributes.
    pub(super) async fn read_elb(&self) -> Result<ElbObjects, CloudError> {
        let (lb, target_groups) =
            tokio::try_join!(self.find_load_balancer(), self.find_target_groups())?;
        let (listeners, groups_read) = tokio::try_join!(
            async {
                let Some(arn) = lb.as_ref().and_then(|l| l.load_balancer_arn()) else {
                    return Ok(vec![]);
                };
                let out = self
                    .elb
                    .describe_listeners()
                    .load_balancer_arn(arn)
                    .send()
                    .await
                    .map_err(fail("lb", "elbv2:DescribeListeners"))?;
                Ok(out.listeners.unwrap_or_default())
            },
            // Each target group's targets and deregistration delay (one group, but for the
            // moment a new one takes over from the old).
            futures::future::try_join_all(target_groups.iter().map(|(address, t)| async move {
                let arn = t.target_group_arn().unwrap_or_default();
                // A group just created is listed before it can be described (eventual
                // consistency): ask again for a moment.
                let (health, delay) = tokio::try_join!(
                    retry_on(NOT_FOUND_YET, || async {
                        let out = self
                            .elb
                            .describe_target_health()
                            .target_group_arn(arn)
                            .send()
                            .await
                            .map_err(fail(address, "elbv2:DescribeTargetHealth"))?;
                        Ok(out.target_health_descriptions.unwrap_or_default())
                    }),
                    retry_on(NOT_FOUND_YET, || self.target_group_delay(address, arn)),
                )?;
                Ok::<_, CloudError>((health, delay))
            })),
        )?;
        let target_groups = target_groups
            .into_iter()
            .zip(groups_read)
            .map(|((address, t), (health, delay))| (address, t, health, delay))
            .collect();
        Ok(ElbObjects {
            lb,
            listeners,
            target_groups,
        })
    }

    pub(crate) async fn find_load_balancer(&self) -> Result<Option<LoadBalancer>, CloudError> {
        let name = Names::load_balancer(&self.stack);
        match self.elb.describe_load_balancers().names(&name).send().await {
            Ok(out) => Ok(out
                .load_balancers
                .unwrap_or_default()
                .into_iter()
                .find(|l| l.load_balancer_name() == Some(&name))),
            Err(e)
                if aws_sdk_ec2::error::ProvideErrorMetadata::code(&e)
                    == Some("LoadBalancerNotFound") =>
            {
                Ok(None)
            }
            Err(e) => Err(fail("lb", "elbv2:DescribeLoadBalancers")(e)),
        }
    }

    /// The stack's target groups, with their addresses: `infra-<stack>-<port>` is `tg.<port>`
    /// (and `infra-<stack>-web`, the one name of infra before, `tg.web`). ELBv2 cannot filter by
    /// tag, so the region's groups are listed (400 a page) and picked by name.
    pub(crate) async fn find_target_groups(
        &self,
    ) -> Result<Vec<(Address, TargetGroup)>, CloudError> {
        let mut found = Vec::new();
        let mut marker = None;
        loop {
            let out = self
                .elb
                .describe_target_groups()
                .page_size(400)
                .set_marker(marker)
                .send()
                .await
                .map_err(fail(
                    format!("stack {}", self.stack),
                    "elbv2:DescribeTargetGroups",
                ))?;
            for t in out.target_groups.unwrap_or_default() {
                let name = t.target_group_name().unwrap_or_default();
                let address = if name == format!("infra-{}-web", self.stack) {
                    Address::new("tg.web")
                } else if let Some(port) = Names::target_group_port(&self.stack, name) {
                    crate::model::resources::target_group_address(port)
                } else {
                    continue;
                };
                found.push((address, t));
            }
            marker = out.next_marker;
            if marker.is_none() {
                return Ok(found);
            }
        }
    }

    pub(crate) async fn target_group_delay(
        &self,
        address: &Address,
        arn: &str,
    ) -> Result<u32, CloudError> {
        let out = self
            .elb
            .describe_target_group_attributes()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(fail(address, "elbv2:DescribeTargetGroupAttributes"))?;
        Ok(out
            .attributes()
            .iter()
            .find(|a| a.key() == Some(DEREGISTRATION_DELAY))
            .and_then(|a| a.value()?.parse().ok())
            .unwrap_or(0))
    }
}

impl ElbObjects {
    /// Each object in the model's terms, added to `live`; target group ARNs are named in
    /// `names` for the listeners. In this order: the load balancer, each target group with its
    /// targets, the listeners (the second object to claim an address is an orphan).
    pub(super) fn observe(&self, names: &mut Addresses, live: &mut Live) {
        let lb_addr = Address::new("lb");
        self.load_balancer(&lb_addr, names, live);
        self.target_groups(names, live);
        self.listeners(&lb_addr, names, live);
    }

    fn load_balancer(&self, lb_addr: &Address, names: &mut Addresses, live: &mut Live) {
        if let Some(l) = &self.lb {
            names.add(l.load_balancer_arn(), lb_addr);
            let spec = Spec::LoadBalancer(LoadBalancerSpec {
                name: l.load_balancer_name().unwrap_or_default().into(),
                subnets: names.all(l.availability_zones().iter().filter_map(|z| z.subnet_id())),
                security_groups: names.all(l.security_groups().iter().map(String::as_str)),
            });
            let out = outputs(&[("dns_name", l.dns_name()), ("arn", l.load_balancer_arn())]);
            insert(live, lb_addr.clone(), l.load_balancer_arn(), spec, out);
        }
    }

    /// Each target group, then its targets (`targets.<suffix>`).
    fn target_groups(&self, names: &mut Addresses, live: &mut Live) {
        for (tg_addr, t, health, delay) in &self.target_groups {
            names.add(t.target_group_arn(), tg_addr);
            let spec = Spec::TargetGroup(TargetGroupSpec {
                name: t.target_group_name().unwrap_or_default().into(),
                vpc: names.of(t.vpc_id()),
                port: t.port().unwrap_or(0) as u16,
                health_check: HealthCheck {
                    path: t.health_check_path().unwrap_or_default().into(),
                    matcher: t
                        .matcher()
                        .and_then(|m| m.http_code())
                        .unwrap_or_default()
                        .into(),
                    interval: t.health_check_interval_seconds().unwrap_or(0) as u32,
                    timeout: t.health_check_timeout_seconds().unwrap_or(0) as u32,
                    healthy_threshold: t.healthy_threshold_count().unwrap_or(0) as u32,
                    unhealthy_threshold: t.unhealthy_threshold_count().unwrap_or(0) as u32,
                },
                deregistration_delay: *delay,
            });
            insert(
                live,
                tg_addr.clone(),
                t.target_group_arn(),
                spec,
                BTreeMap::new(),
            );
            targets(tg_addr, t, health, names, live);
        }
    }

    fn listeners(&self, lb_addr: &Address, names: &Addresses, live: &mut Live) {
        for l in &self.listeners {
            let port = l.port().unwrap_or(0) as u16;
            let address = match port {
                443 => Address::new("listener.https"),
                80 => Address::new("listener.http"),
                p => Address::new(format!("listener.port{p}")),
            };
            let protocol = l
                .protocol()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            let action = listener_action(l, names);
            let https = protocol == "HTTPS";
            let spec = Spec::Listener(ListenerSpec {
                load_balancer: lb_addr.clone(),
                port,
                certificate_arn: l
                    .certificates()
                    .first()
                    .and_then(|c| c.certificate_arn())
                    .map(str::to_string),
                // AWS reports a policy even on plain HTTP listeners, where it means nothing.
                ssl_policy: l.ssl_policy().filter(|_| https).map(str::to_string),
                protocol,
                action,
            });
            insert(live, address, l.listener_arn(), spec, BTreeMap::new());
        }
    }
}

/// The instances registered in one target group (those draining are leaving), with each
/// target's health.
fn targets(
    tg_addr: &Address,
    t: &TargetGroup,
    health: &[TargetHealthDescription],
    names: &Addresses,
    live: &mut Live,
) {
    let registered = health
        .iter()
        .filter(|h| {
            !matches!(
                h.target_health()
                    .and_then(|t| t.state())
                    .map(|s| s.as_str()),
                Some("draining")
            )
        })
        .filter_map(|h| h.target()?.id());
    let spec = Spec::Targets(TargetsSpec {
        target_group: tg_addr.clone(),
        instances: names.all(registered),
        health: Default::default(),
    });
    // Each target's health, by node address, for `infra status`: `healthy`, or the
    // state and AWS's reason (`unhealthy (Target.Timeout)`).
    let health_by_node = health
        .iter()
        .filter_map(|h| {
            let node = names.of(h.target()?.id());
            let th = h.target_health()?;
            let state = th.state()?.as_str();
            let shown = match th.reason() {
                Some(r) => format!("{state} ({})", r.as_str()),
                None => state.to_string(),
            };
            Some((node.to_string(), shown))
        })
        .collect();
    let targets = match tg_addr.as_str().strip_prefix("tg.") {
        Some(suffix) => Address::new(format!("targets.{suffix}")),
        None => Address::new(format!("targets.{tg_addr}")),
    };
    insert(live, targets, t.target_group_arn(), spec, health_by_node);
}

/// A listener's default action: a redirect to HTTPS, or a forward to the target group that
/// takes the traffic.
fn listener_action(l: &Listener, names: &Addresses) -> ListenerAction {
    let action = l.default_actions().first();
    match action.and_then(|a| a.r#type()) {
        Some(ActionTypeEnum::Redirect) => ListenerAction::RedirectHttps {
            port: action
                .and_then(|a| a.redirect_config()?.port()?.parse().ok())
                .unwrap_or(0),
        },
        // A weighted forward (a switch between target groups, interrupted): the group
        // that takes the traffic.
        _ => ListenerAction::Forward {
            target_group: names.of(action.and_then(|a| {
                a.target_group_arn().or_else(|| {
                    a.forward_config()?
                        .target_groups()
                        .iter()
                        .max_by_key(|g| g.weight().unwrap_or(1))?
                        .target_group_arn()
                })
            })),
        },
    }
}
