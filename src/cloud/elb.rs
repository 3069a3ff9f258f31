//! Creating, changing and removing the load balancer half of a stack.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::client::Waiters;
use aws_sdk_elasticloadbalancingv2::types::*;

use super::read::{DEREGISTRATION_DELAY, TAG_ADDRESS, TAG_STACK};
use super::{Cloud, CloudError, Created, IN_USE, Ids, NOT_FOUND_YET, fail, id_of, retry_on};
use crate::model::{
    Address, ListenerAction, ListenerSpec, LoadBalancerSpec, Spec, TargetGroupSpec, TargetsSpec,
};

const WAIT_ACTIVE: Duration = Duration::from_secs(600);

fn action(a: &ListenerAction, ids: &Ids, owner: &Address) -> Result<Action, CloudError> {
    Ok(match a {
        ListenerAction::Forward { target_group } => Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(id_of(ids, target_group, owner)?)
            .build(),
        ListenerAction::RedirectHttps { port } => Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol("HTTPS")
                    .port(port.to_string())
                    .status_code(RedirectActionStatusCodeEnum::Http301)
                    .build(),
            )
            .build(),
    })
}

fn certificates(l: &ListenerSpec) -> Option<Vec<Certificate>> {
    l.certificate_arn
        .as_ref()
        .map(|arn| vec![Certificate::builder().certificate_arn(arn).build()])
}

fn ids_of(list: &[Address], ids: &Ids, owner: &Address) -> Result<Vec<String>, CloudError> {
    list.iter().map(|x| id_of(ids, x, owner)).collect()
}

fn target(id: &str) -> TargetDescription {
    TargetDescription::builder().id(id).build()
}

/// How long new targets may take to pass the target group's health check.
const TARGET_HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

impl Cloud {
    fn elb_tags(&self, a: &Address) -> Vec<Tag> {
        [(TAG_STACK, self.stack.as_str()), (TAG_ADDRESS, a.as_str())]
            .iter()
            .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
            .collect()
    }

    pub(super) async fn create_elb(
        &self,
        a: &Address,
        spec: &Spec,
        ids: &Ids,
    ) -> Result<Created, CloudError> {
        let (id, outputs) = match spec {
            Spec::LoadBalancer(l) => self.create_load_balancer(a, l, ids).await?,
            Spec::TargetGroup(t) => (self.create_target_group(a, t, ids).await?, BTreeMap::new()),
            Spec::Listener(l) => (self.create_listener(a, l, ids).await?, BTreeMap::new()),
            Spec::Targets(t) => (self.create_targets(a, t, ids).await?, BTreeMap::new()),
            other => {
                return Err(CloudError::Invalid {
                    resource: a.to_string(),
                    message: format!("{} is not a load balancer object", other.kind()),
                });
            }
        };
        Ok(Created {
            id,
            spec: spec.clone(),
            outputs,
        })
    }

    /// CreateLoadBalancer, then a wait (bounded) until it is active; its ARN, with its DNS name
    /// and ARN as outputs.
    async fn create_load_balancer(
        &self,
        a: &Address,
        l: &LoadBalancerSpec,
        ids: &Ids,
    ) -> Result<(String, BTreeMap<String, String>), CloudError> {
        let elb = &self.elb;
        let out = retry_on(NOT_FOUND_YET, || async {
            elb.create_load_balancer()
                .name(&l.name)
                .set_subnets(Some(ids_of(&l.subnets, ids, a)?))
                .set_security_groups(Some(ids_of(&l.security_groups, ids, a)?))
                .scheme(LoadBalancerSchemeEnum::InternetFacing)
                .r#type(LoadBalancerTypeEnum::Application)
                .set_tags(Some(self.elb_tags(a)))
                .send()
                .await
                .map_err(fail(a, "elbv2:CreateLoadBalancer"))
        })
        .await?;
        let lb = out
            .load_balancers()
            .first()
            .cloned()
            .unwrap_or_else(|| LoadBalancer::builder().build());
        let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
        elb.wait_until_load_balancer_available()
            .load_balancer_arns(&arn)
            .wait(WAIT_ACTIVE)
            .await
            .map_err(|e| CloudError::Invalid {
                resource: a.to_string(),
                message: format!("did not become active: {e}"),
            })?;
        let outputs = BTreeMap::from([
            (
                "dns_name".to_string(),
                lb.dns_name().unwrap_or_default().to_string(),
            ),
            ("arn".to_string(), arn.clone()),
        ]);
        Ok((arn, outputs))
    }

    /// CreateTargetGroup with its health check, then its deregistration delay; its ARN.
    async fn create_target_group(
        &self,
        a: &Address,
        t: &TargetGroupSpec,
        ids: &Ids,
    ) -> Result<String, CloudError> {
        let hc = &t.health_check;
        let out = retry_on(NOT_FOUND_YET, || async {
            self.elb
                .create_target_group()
                .name(&t.name)
                .protocol(ProtocolEnum::Http)
                .port(t.port as i32)
                .vpc_id(id_of(ids, &t.vpc, a)?)
                .target_type(TargetTypeEnum::Instance)
                .health_check_protocol(ProtocolEnum::Http)
                .health_check_path(&hc.path)
                .health_check_interval_seconds(hc.interval as i32)
                .health_check_timeout_seconds(hc.timeout as i32)
                .healthy_threshold_count(hc.healthy_threshold as i32)
                .unhealthy_threshold_count(hc.unhealthy_threshold as i32)
                .matcher(Matcher::builder().http_code(&hc.matcher).build())
                .set_tags(Some(self.elb_tags(a)))
                .send()
                .await
                .map_err(fail(a, "elbv2:CreateTargetGroup"))
        })
        .await?;
        let arn = out
            .target_groups()
            .first()
            .and_then(|t| t.target_group_arn())
            .unwrap_or_default()
            .to_string();
        self.set_deregistration_delay(a, &arn, t.deregistration_delay)
            .await?;
        Ok(arn)
    }

    /// CreateListener on the load balancer, with its certificate, policy and action; its ARN.
    async fn create_listener(
        &self,
        a: &Address,
        l: &ListenerSpec,
        ids: &Ids,
    ) -> Result<String, CloudError> {
        let out = retry_on(NOT_FOUND_YET, || async {
            self.elb
                .create_listener()
                .load_balancer_arn(id_of(ids, &l.load_balancer, a)?)
                .port(l.port as i32)
                .protocol(ProtocolEnum::from(l.protocol.as_str()))
                .set_certificates(certificates(l))
                .set_ssl_policy(l.ssl_policy.clone())
                .default_actions(action(&l.action, ids, a)?)
                .set_tags(Some(self.elb_tags(a)))
                .send()
                .await
                .map_err(fail(a, "elbv2:CreateListener"))
        })
        .await?;
        Ok(out
            .listeners()
            .first()
            .and_then(|l| l.listener_arn())
            .unwrap_or_default()
            .to_string())
    }

    /// Registers the instances in the target group (nothing is created): the group's ARN is
    /// the targets' id.
    async fn create_targets(
        &self,
        a: &Address,
        t: &TargetsSpec,
        ids: &Ids,
    ) -> Result<String, CloudError> {
        let arn = id_of(ids, &t.target_group, a)?;
        self.sync_targets(a, &arn, &ids_of(&t.instances, ids, a)?)
            .await?;
        Ok(arn)
    }

    pub(super) async fn update_elb(
        &self,
        a: &Address,
        id: &str,
        after: &Spec,
        ids: &Ids,
    ) -> Result<(), CloudError> {
        let elb = &self.elb;
        match after {
            Spec::LoadBalancer(l) => {
                elb.set_subnets()
                    .load_balancer_arn(id)
                    .set_subnets(Some(ids_of(&l.subnets, ids, a)?))
                    .send()
                    .await
                    .map_err(fail(a, "elbv2:SetSubnets"))?;
                elb.set_security_groups()
                    .load_balancer_arn(id)
                    .set_security_groups(Some(ids_of(&l.security_groups, ids, a)?))
                    .send()
                    .await
                    .map_err(fail(a, "elbv2:SetSecurityGroups"))?;
                Ok(())
            }
            Spec::TargetGroup(t) => {
                let hc = &t.health_check;
                elb.modify_target_group()
                    .target_group_arn(id)
                    .health_check_path(&hc.path)
                    .health_check_interval_seconds(hc.interval as i32)
                    .health_check_timeout_seconds(hc.timeout as i32)
                    .healthy_threshold_count(hc.healthy_threshold as i32)
                    .unhealthy_threshold_count(hc.unhealthy_threshold as i32)
                    .matcher(Matcher::builder().http_code(&hc.matcher).build())
                    .send()
                    .await
                    .map_err(fail(a, "elbv2:ModifyTargetGroup"))?;
                self.set_deregistration_delay(a, id, t.deregistration_delay)
                    .await
            }
            Spec::Listener(l) => {
                retry_on(NOT_FOUND_YET, || async {
                    elb.modify_listener()
                        .listener_arn(id)
                        .protocol(ProtocolEnum::from(l.protocol.as_str()))
                        .set_certificates(certificates(l))
                        .set_ssl_policy(l.ssl_policy.clone())
                        .default_actions(action(&l.action, ids, a)?)
                        .send()
                        .await
                        .map_err(fail(a, "elbv2:ModifyListener"))
                })
                .await?;
                Ok(())
            }
            Spec::Targets(t) => {
                self.sync_targets(a, id, &ids_of(&t.instances, ids, a)?)
                    .await
            }
            _ => Err(CloudError::Invalid {
                resource: a.to_string(),
                message: "cannot be updated in place".into(),
            }),
        }
    }

    pub(super) async fn delete_elb(
        &self,
        a: &Address,
        id: &str,
        spec: &Spec,
    ) -> Result<(), CloudError> {
        let elb = &self.elb;
        let r = match spec {
            Spec::LoadBalancer(_) => {
                elb.delete_load_balancer()
                    .load_balancer_arn(id)
                    .send()
                    .await
                    .map_err(fail(a, "elbv2:DeleteLoadBalancer"))?;
                elb.wait_until_load_balancers_deleted()
                    .load_balancer_arns(id)
                    .wait(WAIT_ACTIVE)
                    .await
                    .map(drop)
                    .map_err(|e| CloudError::Invalid {
                        resource: a.to_string(),
                        message: format!("was not deleted: {e}"),
                    })
            }
            Spec::TargetGroup(_) => {
                retry_on(IN_USE, || async {
                    elb.delete_target_group()
                        .target_group_arn(id)
                        .send()
                        .await
                        .map(drop)
                        .map_err(fail(a, "elbv2:DeleteTargetGroup"))
                })
                .await
            }
            Spec::Listener(_) => elb
                .delete_listener()
                .listener_arn(id)
                .send()
                .await
                .map(drop)
                .map_err(fail(a, "elbv2:DeleteListener")),
            Spec::Targets(_) => self.sync_targets(a, id, &[]).await,
            other => Err(CloudError::Invalid {
                resource: a.to_string(),
                message: format!("{} is not a load balancer object", other.kind()),
            }),
        };
        match r {
            Err(e) if e.code().is_some_and(|c| c.ends_with("NotFound")) => Ok(()),
            other => other,
        }
    }

    /// Registers and deregisters so that exactly `wanted` are targets: one call each way.
    async fn sync_targets(
        &self,
        a: &Address,
        arn: &str,
        wanted: &[String],
    ) -> Result<(), CloudError> {
        let elb = &self.elb;
        let out = retry_on(NOT_FOUND_YET, || async {
            elb.describe_target_health()
                .target_group_arn(arn)
                .send()
                .await
                .map_err(fail(a, "elbv2:DescribeTargetHealth"))
        })
        .await?;
        let current: Vec<String> = out
            .target_health_descriptions()
            .iter()
            .filter(|h| {
                h.target_health().and_then(|t| t.state()) != Some(&TargetHealthStateEnum::Draining)
            })
            .filter_map(|h| h.target()?.id().map(str::to_string))
            .collect();
        let add: Vec<TargetDescription> = wanted
            .iter()
            .filter(|w| !current.contains(w))
            .map(|w| target(w))
            .collect();
        let remove: Vec<TargetDescription> = current
            .iter()
            .filter(|c| !wanted.contains(c))
            .map(|c| target(c))
            .collect();
        if !add.is_empty() {
            // A new instance or target group may not be known to ELB for a moment.
            retry_on(&["InvalidTarget", "TargetGroupNotFound"], || async {
                elb.register_targets()
                    .target_group_arn(arn)
                    .set_targets(Some(add.clone()))
                    .send()
                    .await
                    .map(drop)
                    .map_err(fail(a, "elbv2:RegisterTargets"))
            })
            .await?;
        }
        if !remove.is_empty() {
            let out = elb
                .deregister_targets()
                .target_group_arn(arn)
                .set_targets(Some(remove))
                .send()
                .await
                .map_err(fail(a, "elbv2:DeregisterTargets"));
            match out {
                // A leaving node deregistered itself meanwhile.
                Err(e) if e.code() == Some("InvalidTarget") => {}
                other => drop(other?),
            }
        }
        Ok(())
    }

    /// Starts health checks on `next` while `current` keeps all the traffic: the listener
    /// forwards to both, `next` with weight 0. A target group gets health checks only while a
    /// listener forwards to it (its targets are `unused`, Target.NotInUse, otherwise).
    pub async fn forward_weighted(
        &self,
        a: &Address,
        listener_arn: &str,
        current: &str,
        next: &str,
    ) -> Result<(), CloudError> {
        let group = |arn: &str, weight| {
            TargetGroupTuple::builder()
                .target_group_arn(arn)
                .weight(weight)
                .build()
        };
        let forward = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(group(current, 1))
                    .target_groups(group(next, 0))
                    .build(),
            )
            .build();
        retry_on(NOT_FOUND_YET, || async {
            self.elb
                .modify_listener()
                .listener_arn(listener_arn)
                .default_actions(forward.clone())
                .send()
                .await
                .map(drop)
                .map_err(fail(a, "elbv2:ModifyListener"))
        })
        .await
    }

    /// Waits (bounded) until at least `needed` of `ids` are healthy in the target group;
    /// the error names the others and AWS's reason for each.
    pub async fn wait_healthy(
        &self,
        a: &Address,
        arn: &str,
        ids: &[String],
        needed: usize,
    ) -> Result<(), CloudError> {
        let deadline = std::time::Instant::now() + TARGET_HEALTH_TIMEOUT;
        loop {
            let out = self
                .elb
                .describe_target_health()
                .target_group_arn(arn)
                .set_targets(Some(ids.iter().map(|i| target(i)).collect()))
                .send()
                .await
                .map_err(fail(a, "elbv2:DescribeTargetHealth"))?;
            let (healthy, others): (Vec<_>, Vec<_>) =
                out.target_health_descriptions().iter().partition(|h| {
                    h.target_health().and_then(|t| t.state())
                        == Some(&TargetHealthStateEnum::Healthy)
                });
            if healthy.len() >= needed {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                let others: Vec<String> = others
                    .iter()
                    .map(|h| {
                        let id = h.target().and_then(|t| t.id()).unwrap_or("?");
                        let th = h.target_health();
                        let state = th.and_then(|t| t.state()).map_or("?", |s| s.as_str());
                        let reason = th.and_then(|t| t.reason()).map_or("", |r| r.as_str());
                        let text = th.and_then(|t| t.description()).unwrap_or_default();
                        format!("{id}: {state} ({reason}: {text})")
                    })
                    .collect();
                return Err(CloudError::Invalid {
                    resource: a.to_string(),
                    message: format!(
                        "{} of {} targets healthy after {}s, {needed} needed; {}. Check that the service publishing the target port runs on them and answers the health check path.",
                        healthy.len(),
                        ids.len(),
                        TARGET_HEALTH_TIMEOUT.as_secs(),
                        others.join("; ")
                    ),
                });
            }
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
    }

    /// Adds one instance to a target group (a rolling replacement's new node).
    pub async fn register_target(
        &self,
        a: &Address,
        arn: &str,
        instance_id: &str,
    ) -> Result<(), CloudError> {
        // A new instance may not be known to ELB for a moment.
        retry_on(&["InvalidTarget"], || async {
            self.elb
                .register_targets()
                .target_group_arn(arn)
                .targets(target(instance_id))
                .send()
                .await
                .map(drop)
                .map_err(fail(a, "elbv2:RegisterTargets"))
        })
        .await
    }

    /// Takes one instance out of the target group and waits out the deregistration delay, so
    /// requests in flight finish before the node goes (scale-in).
    pub async fn deregister_target(
        &self,
        a: &Address,
        arn: &str,
        instance_id: &str,
        delay: std::time::Duration,
    ) -> Result<(), CloudError> {
        let out = self
            .elb
            .deregister_targets()
            .target_group_arn(arn)
            .targets(target(instance_id))
            .send()
            .await
            .map_err(fail(a, "elbv2:DeregisterTargets"));
        match out {
            // Not a target (any more): nothing to wait for.
            Err(e) if e.code() == Some("InvalidTarget") => Ok(()),
            Err(e) => Err(e),
            Ok(_) => {
                tokio::time::sleep(delay).await;
                Ok(())
            }
        }
    }

    async fn set_deregistration_delay(
        &self,
        a: &Address,
        arn: &str,
        seconds: u32,
    ) -> Result<(), CloudError> {
        let attr = TargetGroupAttribute::builder()
            .key(DEREGISTRATION_DELAY)
            .value(seconds.to_string())
            .build();
        // Right after CreateTargetGroup, ELB may not know the group yet.
        retry_on(NOT_FOUND_YET, || async {
            self.elb
                .modify_target_group_attributes()
                .target_group_arn(arn)
                .attributes(attr.clone())
                .send()
                .await
                .map(drop)
                .map_err(fail(a, "elbv2:ModifyTargetGroupAttributes"))
        })
        .await
    }
}
