//! What AWS would refuse half way through an apply, refused by the plan before any change:
//! checks of the stack against the account and region. Each runs only when the plan changes
//! what it checks (so a plan with nothing to do makes no call for them), with one call a kind
//! whatever the number of nodes. A failure names the stack-file key (file:line:col) and what to
//! do.

use std::collections::{BTreeMap, BTreeSet};

use super::{Context, OpsError, Result};
use crate::cloud::{Cloud, ImageFacts};
use crate::model::{Role, Spec, Stack};
use crate::plan::{Action, Change};

/// Runs the checks the plan's `changes` call for. `images`: what DescribeImages said of the
/// AMIs (the missing ones are read here).
pub(super) async fn account(
    ctx: &Context,
    cloud: &Cloud,
    stack: &Stack,
    source: &str,
    changes: &[Change],
    images: &BTreeMap<String, ImageFacts>,
) -> Result<()> {
    let at = At {
        file: ctx.workspace.shown_stack_file(),
        source,
    };
    listener(cloud, changes, &at).await?;
    zones(cloud, stack, changes, &at).await?;
    attached_policies(cloud, stack, changes, &at).await?;
    instances(ctx, cloud, stack, changes, images, &at).await
}

/// Where a refusal points: the stack file and its text.
struct At<'a> {
    file: String,
    source: &'a str,
}

impl At<'_> {
    /// A refusal at the first of `paths` the file has, with what to do.
    fn fail(&self, paths: &[&[&str]], message: String, help: &str) -> OpsError {
        OpsError::Config(crate::config::error_at(
            &self.file,
            self.source,
            paths,
            message,
            Some(help.to_string()),
        ))
    }
}

/// Whether a change makes the object anew.
fn created(c: &&Change) -> bool {
    matches!(c.action, Action::Create | Action::Replace)
}

/// The HTTPS listener's certificate and TLS policy, when they change.
async fn listener(cloud: &Cloud, changes: &[Change], at: &At<'_>) -> Result<()> {
    let changed_field =
        |c: &Change, f: &str| created(&c) || c.fields.iter().any(|field| field.name == f);
    let https = changes.iter().find_map(|c| match &c.after {
        Some(Spec::Listener(l)) if l.protocol == "HTTPS" => Some((c, l)),
        _ => None,
    });
    if let Some((c, l)) = https {
        let region = cloud.region();
        if let Some(arn) = &l.certificate_arn
            && changed_field(c, "certificate_arn")
        {
            certificate(cloud, arn, &region)
                .await
                .map_err(|(message, help)| {
                    at.fail(&[&["load_balancer", "certificate_arn"]], message, &help)
                })?;
        }
        if let Some(policy) = &l.ssl_policy
            && changed_field(c, "ssl_policy")
            && !cloud.ssl_policy_exists(policy).await?
        {
            return Err(at.fail(
                &[&["load_balancer", "tls_policy"]],
                format!("TLS policy {policy:?} does not exist in ELB"),
                "use a policy DescribeSSLPolicies lists, e.g. ELBSecurityPolicy-TLS13-1-2-2021-06 (the default)",
            ));
        }
    }

    Ok(())
}

/// The managed policies the nodes' role gains exist (IAM refuses to attach an unknown one).
async fn attached_policies(
    cloud: &Cloud,
    stack: &Stack,
    changes: &[Change],
    at: &At<'_>,
) -> Result<()> {
    let before: Vec<&String> = changes
        .iter()
        .filter_map(|c| match &c.before {
            Some(Spec::IamRole(r)) => Some(&r.managed_policies),
            _ => None,
        })
        .flatten()
        .collect();
    let gained = changes
        .iter()
        .any(|c| matches!(c.after, Some(Spec::IamRole(_))));
    for (i, arn) in stack.node_access.iam_policies.iter().enumerate() {
        if gained && !before.contains(&arn) && !cloud.managed_policy_exists(arn).await? {
            let i = i.to_string();
            return Err(at.fail(
                &[&["nodes", "iam_policies", &i]],
                format!("IAM has no managed policy {arn}"),
                "check the ARN (the account, the path, the policy's name) in the IAM console or with `aws iam get-policy --policy-arn …`",
            ));
        }
    }
    Ok(())
}

/// The zones of new subnets exist in the region and are available to the account.
async fn zones(cloud: &Cloud, stack: &Stack, changes: &[Change], at: &At<'_>) -> Result<()> {
    let new_zones: Vec<(usize, &str)> = stack
        .network
        .subnets
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            changes
                .iter()
                .filter(created)
                .any(|c| c.address.as_str() == format!("subnet[{i}]"))
        })
        .map(|(i, s)| (i, s.zone.as_str()))
        .collect();
    if !new_zones.is_empty() {
        let zones = cloud.zones().await?;
        if let Some((i, zone)) = new_zones.iter().find(|(_, z)| !zones.contains(*z)) {
            let i = i.to_string();
            return Err(at.fail(
                &[&["network", "subnets", &i, "zone"]],
                format!(
                    "zone {zone:?} does not exist in this region, or is not available to the account"
                ),
                &format!(
                    "zones here: {}",
                    zones.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }

    Ok(())
}

/// New instances: their type exists and is offered in their zone, and runs their image's
/// processor architecture.
async fn instances(
    ctx: &Context,
    cloud: &Cloud,
    stack: &Stack,
    changes: &[Change],
    images: &BTreeMap<String, ImageFacts>,
    at: &At<'_>,
) -> Result<()> {
    let launched: Vec<(Role, &str, &str, &str)> = changes
        .iter()
        .filter(created)
        .filter_map(|c| match &c.after {
            Some(Spec::Instance(i)) => {
                let role = match i.pool.as_str() {
                    "manager" => Role::Manager,
                    "bastion" => Role::Bastion,
                    _ => Role::Worker,
                };
                let subnet = subnet_zone(stack, &i.subnet)?;
                Some((role, i.instance_type.as_str(), subnet, i.ami.as_str()))
            }
            _ => None,
        })
        .collect();
    if launched.is_empty() {
        return Ok(());
    }
    let types: Vec<String> = unique(launched.iter().map(|l| l.1));
    let zones: Vec<String> = unique(launched.iter().map(|l| l.2));
    let (offered, archs) =
        tokio::try_join!(cloud.offerings(&types, &zones), cloud.architectures(&types))?;
    let missing: Vec<String> = unique(launched.iter().map(|l| l.3))
        .into_iter()
        .filter(|a| !images.contains_key(a))
        .collect();
    let mut images = images.clone();
    images.extend(describe_images(ctx, cloud, stack, at.source, &missing).await?);
    for (role, itype, zone, ami) in launched {
        let pool = role.pool();
        let pools = format!("{pool}s");
        let paths: [&[&str]; 2] = if role == Role::Bastion {
            [&["bastion", "instance_type"], &["bastion"]]
        } else {
            [
                &["nodes", &pools, "instance_type"],
                &["nodes", "instance_type"],
            ]
        };
        let Some(supported) = archs.get(itype) else {
            return Err(at.fail(
                &paths,
                format!("instance type {itype:?} ({pool} nodes) does not exist"),
                "check the spelling, e.g. t3.small or m7g.large",
            ));
        };
        if !offered.contains(&(itype.to_string(), zone.to_string())) {
            return Err(at.fail(
                &paths,
                format!("instance type {itype} ({pool} nodes) is not offered in zone {zone}"),
                "choose a type the zone offers (aws ec2 describe-instance-type-offerings --location-type availability-zone), or another zone",
            ));
        }
        let arch = images
            .get(ami)
            .map(|i| i.architecture.as_str())
            .unwrap_or_default();
        if !arch.is_empty() && !supported.iter().any(|s| s == arch) {
            return Err(at.fail(
                &paths,
                format!(
                    "instance type {itype} ({pool} nodes) runs {}, but its image {ami} is {arch}",
                    supported.join("/")
                ),
                "choose a type of the image's architecture (t3, m7i: x86_64; t4g, m7g: arm64), or an image for the type's ([nodes] ami)",
            ));
        }
    }
    Ok(())
}

/// What DescribeImages says of `amis`; an image the region does not have (or does not share
/// with the account) is an error at the `ami` key of the pool that uses it.
pub(super) async fn describe_images(
    ctx: &Context,
    cloud: &Cloud,
    stack: &Stack,
    source: &str,
    amis: &[String],
) -> Result<BTreeMap<String, ImageFacts>> {
    let ami = match cloud.describe_images(amis).await {
        Ok(found) => match amis.iter().find(|a| !found.contains_key(*a)) {
            None => return Ok(found),
            Some(a) => a.clone(),
        },
        // AWS names the image it does not have in the error.
        Err(e) if e.code().is_some_and(|c| c.starts_with("InvalidAMIID")) => {
            let text = e.to_string();
            amis.iter()
                .find(|a| text.contains(a.as_str()))
                .or(amis.first())
                .cloned()
                .unwrap_or_default()
        }
        Err(e) => return Err(e.into()),
    };
    let role = [&stack.managers, &stack.workers]
        .into_iter()
        .chain(&stack.bastion)
        .find(|p| matches!(&p.ami, crate::model::AmiSource::Id(id) if *id == ami))
        .map_or(Role::Manager, |p| p.role);
    let paths: [&[&str]; 2] = match role {
        Role::Manager => [&["nodes", "managers", "ami"], &["nodes", "ami"]],
        Role::Worker => [&["nodes", "workers", "ami"], &["nodes", "ami"]],
        Role::Bastion => [&["bastion", "ami"], &["bastion"]],
    };
    Err(OpsError::Config(crate::config::error_at(
        &ctx.workspace.shown_stack_file(),
        source,
        &paths,
        format!("image {ami} does not exist in this region, or is not shared with the account"),
        Some(
            "use an AMI of the stack's region (AMI ids differ between regions), or an ssm: parameter"
                .into(),
        ),
    )))
}

/// The zone of the subnet at `address`, as the stack names it.
fn subnet_zone<'a>(stack: &'a Stack, address: &crate::model::Address) -> Option<&'a str> {
    let (_, i) = address.split_index();
    stack.network.subnets.get(i?).map(|s| s.zone.as_str())
}

fn unique<'a>(items: impl Iterator<Item = &'a str>) -> Vec<String> {
    items
        .map(str::to_string)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// An ALB takes a certificate of its own region, issued and not expired ("HTTPS listeners for
/// your Application Load Balancer", docs.aws.amazon.com/elasticloadbalancing/latest/application/
/// create-https-listener.html). Errors as (message, help).
async fn certificate(
    cloud: &Cloud,
    arn: &str,
    region: &str,
) -> std::result::Result<(), (String, String)> {
    let arn_region = arn.split(':').nth(3).unwrap_or_default();
    if !arn_region.is_empty() && arn_region != region {
        return Err((
            format!("certificate {arn} is in {arn_region}; the load balancer is in {region}"),
            format!(
                "a load balancer takes a certificate of its own region: request or import one in {region} (ACM)"
            ),
        ));
    }
    let facts = cloud.certificate(arn).await.map_err(|e| {
        (
            e.to_string(),
            "check the ARN and the credentials' ACM permissions".to_string(),
        )
    })?;
    let Some(facts) = facts else {
        return Err((
            format!("certificate {arn} does not exist in ACM ({region})"),
            "copy the ARN from ACM (aws acm list-certificates)".to_string(),
        ));
    };
    if facts.status != "ISSUED" {
        return Err((
            format!("certificate {arn} is {}, not ISSUED", facts.status),
            "finish its validation in ACM (DNS or e-mail) first, or use an issued certificate"
                .to_string(),
        ));
    }
    if let Some(end) = facts.not_after
        && end < chrono::Utc::now().timestamp()
    {
        return Err((
            format!("certificate {arn} has expired"),
            "renew or re-import it in ACM".to_string(),
        ));
    }
    Ok(())
}
