//! What the account and region offer, read for the plan's checks (see `ops::checks`): one call
//! a kind, whatever the number of nodes.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, LocationType};

use super::{Cloud, CloudError, fail};

/// An ACM certificate as the load balancer would use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateFacts {
    /// `ISSUED`, `PENDING_VALIDATION`, `EXPIRED`, …
    pub status: String,
    /// When it stops being valid (seconds since the epoch), if known.
    pub not_after: Option<i64>,
}

impl Cloud {
    /// The certificate's status; None if ACM (in the stack's region) does not know it.
    pub async fn certificate(&self, arn: &str) -> Result<Option<CertificateFacts>, CloudError> {
        let out = self
            .acm
            .describe_certificate()
            .certificate_arn(arn)
            .send()
            .await;
        match out {
            Ok(out) => Ok(out.certificate.map(|c| CertificateFacts {
                status: c.status.map(|s| s.as_str().to_string()).unwrap_or_default(),
                not_after: c.not_after.map(|t| t.secs()),
            })),
            Err(e)
                if aws_sdk_acm::error::ProvideErrorMetadata::code(&e)
                    == Some("ResourceNotFoundException") =>
            {
                Ok(None)
            }
            Err(e) => Err(fail("listener.https", "acm:DescribeCertificate")(e)),
        }
    }

    /// The load balancer's idle timeout in seconds (`idle_timeout.timeout_seconds`, 60 unless
    /// set: https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html).
    pub async fn idle_timeout(&self, load_balancer_arn: &str) -> Result<u64, CloudError> {
        let out = self
            .elb
            .describe_load_balancer_attributes()
            .load_balancer_arn(load_balancer_arn)
            .send()
            .await
            .map_err(fail("lb", "elbv2:DescribeLoadBalancerAttributes"))?;
        Ok(out
            .attributes()
            .iter()
            .find(|a| a.key() == Some("idle_timeout.timeout_seconds"))
            .and_then(|a| a.value()?.parse().ok())
            .unwrap_or(60))
    }

    /// Whether ELB knows this security policy.
    pub async fn ssl_policy_exists(&self, name: &str) -> Result<bool, CloudError> {
        match self.elb.describe_ssl_policies().names(name).send().await {
            Ok(out) => Ok(!out.ssl_policies().is_empty()),
            Err(e)
                if aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata::code(&e)
                    == Some("SSLPolicyNotFound") =>
            {
                Ok(false)
            }
            Err(e) => Err(fail("listener.https", "elbv2:DescribeSSLPolicies")(e)),
        }
    }

    /// The zones of the region that are available.
    pub async fn zones(&self) -> Result<BTreeSet<String>, CloudError> {
        let out = self
            .ec2
            .describe_availability_zones()
            .send()
            .await
            .map_err(fail("network.subnets", "ec2:DescribeAvailabilityZones"))?;
        Ok(out
            .availability_zones()
            .iter()
            .filter(|z| z.state().is_none_or(|s| s.as_str() == "available"))
            .filter_map(|z| z.zone_name().map(str::to_string))
            .collect())
    }

    /// Which of `types` each of `zones` offers: (type, zone) pairs.
    pub async fn offerings(
        &self,
        types: &[String],
        zones: &[String],
    ) -> Result<BTreeSet<(String, String)>, CloudError> {
        let mut found = BTreeSet::new();
        let mut token = None;
        loop {
            let out = self
                .ec2
                .describe_instance_type_offerings()
                .location_type(LocationType::AvailabilityZone)
                .filters(
                    Filter::builder()
                        .name("instance-type")
                        .set_values(Some(types.to_vec()))
                        .build(),
                )
                .filters(
                    Filter::builder()
                        .name("location")
                        .set_values(Some(zones.to_vec()))
                        .build(),
                )
                .set_next_token(token)
                .send()
                .await
                .map_err(fail("nodes", "ec2:DescribeInstanceTypeOfferings"))?;
            for o in out.instance_type_offerings() {
                if let (Some(t), Some(z)) = (o.instance_type(), o.location()) {
                    found.insert((t.as_str().to_string(), z.to_string()));
                }
            }
            token = out.next_token;
            if token.is_none() {
                return Ok(found);
            }
        }
    }

    /// The processor architectures each instance type runs (`x86_64`, `arm64`); a type AWS does
    /// not know is missing from the answer.
    pub async fn architectures(
        &self,
        types: &[String],
    ) -> Result<BTreeMap<String, Vec<String>>, CloudError> {
        let out = self
            .ec2
            .describe_instance_types()
            .set_instance_types(Some(types.iter().map(|t| t.as_str().into()).collect()))
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            // One unknown type fails the call: ask for none, and let the caller name it.
            Err(e)
                if aws_sdk_ec2::error::ProvideErrorMetadata::code(&e)
                    == Some("InvalidInstanceType") =>
            {
                return Ok(BTreeMap::new());
            }
            Err(e) => return Err(fail("nodes", "ec2:DescribeInstanceTypes")(e)),
        };
        Ok(out
            .instance_types()
            .iter()
            .filter_map(|t| {
                let archs = t
                    .processor_info()?
                    .supported_architectures()
                    .iter()
                    .map(|a| a.as_str().to_string())
                    .collect();
                Some((t.instance_type()?.as_str().to_string(), archs))
            })
            .collect())
    }
}
