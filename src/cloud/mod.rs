//! AWS: reading what the stack owns, and the calls that change it. Knows nothing of plans.

mod account;
mod calls;
mod ec2;
mod ecr;
mod elb;
mod iam;
mod logs;
mod read;
mod ssm;

pub use account::CertificateFacts;
pub use ecr::RepositoryImages;
pub use logs::LogEventRecord;
pub use read::Named;
pub use ssm::read_source;

use std::collections::BTreeMap;
use std::fmt::Display;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use backon::{ExponentialBuilder, Retryable};
use thiserror::Error;

pub use calls::CallLog;

use crate::model::{Address, Observed, Place, Spec};

/// Clients for the services a stack uses, and the stack's name for tags.
#[derive(Clone, Debug)]
pub struct Cloud {
    pub(crate) acm: aws_sdk_acm::Client,
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) ecr: aws_sdk_ecr::Client,
    pub(crate) elb: aws_sdk_elasticloadbalancingv2::Client,
    pub(crate) iam: aws_sdk_iam::Client,
    pub(crate) logs: aws_sdk_cloudwatchlogs::Client,
    pub(crate) ssm: aws_sdk_ssm::Client,
    pub(crate) sts: aws_sdk_sts::Client,
    pub(crate) stack: String,
}

/// Ids of objects already created, by address: how references are turned into AWS ids.
pub type Ids = BTreeMap<Address, String>;

#[derive(Debug, Error)]
pub enum CloudError {
    #[error("{call} for {resource} failed: {detail}\n  {hint}")]
    Call {
        resource: String,
        call: &'static str,
        code: Option<String>,
        detail: String,
        hint: &'static str,
    },
    #[error("{resource}: {message}")]
    Invalid { resource: String, message: String },
    #[error(
        "no AWS region is set: put `region = \"…\"` in the stack file, or set AWS_REGION or a profile's region"
    )]
    NoRegion,
    #[error(
        "{call} for {resource}: no AWS credentials. infra looked where the AWS SDKs look — the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), the profile AWS_PROFILE names (default: `default`) in ~/.aws/config and ~/.aws/credentials, SSO, a web identity token, the instance's or container's role — and found none ({detail}).\n  \
         Set AWS_PROFILE to a configured profile (after `aws sso login` for an SSO one), or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
    )]
    NoCredentials {
        resource: String,
        call: &'static str,
        detail: String,
    },
    #[error(
        "{call} for {resource}: cannot reach {endpoint}: {detail}.\n  Check the network (proxy, firewall, DNS){override_hint}, then run the command again."
    )]
    Unreachable {
        resource: String,
        call: &'static str,
        endpoint: String,
        detail: String,
        override_hint: &'static str,
    },
}

/// What infra needs to know of an image (AMI).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFacts {
    /// As its owner named it: `al2023-ami-…`, `ubuntu/images/…`.
    pub name: String,
    pub windows: bool,
    /// `x86_64` or `arm64`.
    pub architecture: String,
}

impl CloudError {
    pub fn code(&self) -> Option<&str> {
        match self {
            CloudError::Call { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

/// Maps an SDK error to one that names the resource, the call and what to do next.
pub(crate) fn fail<E>(resource: impl Display, call: &'static str) -> impl FnOnce(E) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |e| {
        let code = e.code().map(str::to_string);
        if code.is_none()
            && let Some(failure) = no_answer(&resource.to_string(), call, &e)
        {
            return failure;
        }
        let detail = match (e.code(), e.message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_string(),
            _ => causes(&e).join(": "),
        };
        CloudError::Call {
            resource: resource.to_string(),
            call,
            hint: hint(code.as_deref()),
            code,
            detail,
        }
    }
}

/// An SDK error as a person reads it: why there was no answer (credentials, network) or the
/// messages of its sources, never the SDK's debug dump.
pub(crate) fn plain_error(e: &(dyn std::error::Error + 'static)) -> String {
    match no_answer("", "", e) {
        Some(CloudError::NoCredentials { detail, .. }) => format!(
            "no AWS credentials ({detail}): set AWS_PROFILE (after `aws sso login` for an SSO profile), or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ),
        Some(CloudError::Unreachable {
            endpoint, detail, ..
        }) => {
            format!("cannot reach {endpoint}: {detail}")
        }
        _ => causes(e).join(": "),
    }
}

/// The messages of an error and its sources, without the SDK's debug dumps.
fn causes(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        // "dispatch failure", "service error": the SDK's names for where it failed, not why.
        if !text.contains(" { ") && !out.iter().any(|o| o.contains(&text)) {
            out.push(text);
        }
        next = err.source();
    }
    out
}

/// A call that got no answer from AWS: credentials that could not be found, or an endpoint that
/// could not be reached. Told from the error's sources (the SDK reports both as a dispatch
/// failure).
fn no_answer(
    resource: &str,
    call: &'static str,
    e: &(dyn std::error::Error + 'static),
) -> Option<CloudError> {
    let causes = causes(e);
    let all = causes.join(": ");
    let last = causes.last().cloned().unwrap_or_default();
    let credentials = [
        "no credentials",
        "no providers",
        "not loaded",
        "failed to load",
    ];
    if all.contains("credential") && credentials.iter().any(|c| all.contains(c)) {
        return Some(CloudError::NoCredentials {
            resource: resource.to_string(),
            call,
            detail: last,
        });
    }
    let network = [
        "onnection refused",
        "dns error",
        "timed out",
        "tcp connect",
        "error trying to connect",
        "io error",
    ];
    if network.iter().any(|n| all.contains(n)) {
        let service = call.split(':').next().unwrap_or("aws").to_ascii_lowercase();
        let (endpoint, override_hint) = match std::env::var("AWS_ENDPOINT_URL") {
            Ok(url) => (url, " and AWS_ENDPOINT_URL, which sends every call there"),
            Err(_) => (format!("the AWS {service} endpoint"), ""),
        };
        return Some(CloudError::Unreachable {
            resource: resource.to_string(),
            call,
            endpoint,
            detail: last,
            override_hint,
        });
    }
    None
}

fn hint(code: Option<&str>) -> &'static str {
    match code {
        Some(c)
            if c.contains("Unauthorized")
                || c.contains("AccessDenied")
                || c.contains("AuthFailure") =>
        {
            "Check the AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID) and their IAM permissions."
        }
        Some(c) if c.contains("Throttl") || c.contains("LimitExceeded") => {
            "AWS is throttling or a quota is reached: wait, lower --parallelism, or raise the quota, then apply again."
        }
        Some("DependencyViolation" | "ResourceInUse") => {
            "Something outside this stack still uses it: remove that dependency, then run the command again."
        }
        Some(_) => {
            "Fix the cause above, then run `infra apply` again: finished steps are kept in the state."
        }
        None => {
            "Check network access to AWS (and AWS_ENDPOINT_URL if set), then run the command again."
        }
    }
}

/// Retries a call while AWS answers with one of `codes`: the eventual consistency right after a
/// create (`…NotFound`), or a dependency still being released (`DependencyViolation`).
pub(crate) async fn retry_on<T, F, Fut>(codes: &[&str], f: F) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    retry_when(|e| e.code().is_some_and(|c| codes.contains(&c)), f).await
}

/// Retries a call while its error is one `transient` accepts (about two minutes at most).
pub(crate) async fn retry_when<T, F, Fut>(
    transient: impl Fn(&CloudError) -> bool,
    f: F,
) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(15))
        .with_max_times(12)
        .with_jitter();
    f.retry(backoff)
        .when(|e: &CloudError| transient(e))
        .notify(|e, wait| tracing::debug!("retrying in {wait:?} after: {e}"))
        .await
}

pub(crate) const NOT_FOUND_YET: &[&str] = &[
    "InvalidVpcID.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidInstanceID.NotFound",
    "InvalidInternetGatewayID.NotFound",
    "InvalidRouteTableID.NotFound",
    "InvalidKeyPair.NotFound",
    "TargetGroupNotFound",
    "LoadBalancerNotFound",
];
pub(crate) const IN_USE: &[&str] = &["DependencyViolation", "ResourceInUse", "InvalidGroup.InUse"];

/// The AWS id behind an address. Live specs name objects outside the stack by their raw id
/// (`sg-…`, `i-…`, an ARN); those pass through unchanged.
pub(crate) fn id_of(
    ids: &Ids,
    address: &Address,
    needed_by: &Address,
) -> Result<String, CloudError> {
    let raw = ["sg-", "subnet-", "vpc-", "igw-", "i-", "arn:"]
        .iter()
        .any(|p| address.as_str().starts_with(p));
    if raw {
        return Ok(address.to_string());
    }
    ids.get(address)
        .cloned()
        .ok_or_else(|| CloudError::Invalid {
            resource: needed_by.to_string(),
            message: format!("needs {address}, which has no id yet; run `infra apply` again"),
        })
}

/// What a create returns: the new object's id and the facts AWS assigned to it.
pub type Created = Observed;

impl Cloud {
    /// Clients from the standard AWS chain (profile, environment, `AWS_ENDPOINT_URL`, …); the
    /// stack's region, when it names one, wins over the chain's.
    pub async fn connect(
        stack: &str,
        region: Option<&str>,
        call_log: CallLog,
    ) -> Result<Cloud, CloudError> {
        let conf = sdk_config(region).await?;
        let acm = aws_sdk_acm::config::Builder::from(&conf)
            .interceptor(call_log.clone())
            .build();
        let ec2 = aws_sdk_ec2::config::Builder::from(&conf)
            .interceptor(call_log.clone())
            .build();
        let ecr = aws_sdk_ecr::config::Builder::from(&conf)
            .interceptor(call_log.clone())
            .build();
        let elb = aws_sdk_elasticloadbalancingv2::config::Builder::from(&conf)
            .interceptor(call_log.clone())
            .build();
        let iam = aws_sdk_iam::config::Builder::from(&conf)
            .interceptor(call_log.clone())
            .build();
        let logs = aws_sdk_cloudwatchlogs::config::Builder::from(&conf)
            .interceptor(call_log.clone())
            .build();
        let ssm = aws_sdk_ssm::config::Builder::from(&conf)
            .interceptor(call_log.clone())
            .build();
        let sts = aws_sdk_sts::config::Builder::from(&conf)
            .interceptor(call_log)
            .build();
        Ok(Cloud {
            acm: aws_sdk_acm::Client::from_conf(acm),
            ec2: aws_sdk_ec2::Client::from_conf(ec2),
            ecr: aws_sdk_ecr::Client::from_conf(ecr),
            elb: aws_sdk_elasticloadbalancingv2::Client::from_conf(elb),
            iam: aws_sdk_iam::Client::from_conf(iam),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(logs),
            ssm: aws_sdk_ssm::Client::from_conf(ssm),
            sts: aws_sdk_sts::Client::from_conf(sts),
            stack: stack.to_string(),
        })
    }

    /// The account and region the clients act in (STS GetCallerIdentity; the partition from
    /// the caller's ARN).
    pub async fn account(&self) -> Result<crate::model::resources::Account, CloudError> {
        let me = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(fail("registry", "sts:GetCallerIdentity"))?;
        let partition = me
            .arn()
            .and_then(|a| a.split(':').nth(1))
            .unwrap_or("aws")
            .to_string();
        Ok(crate::model::resources::Account {
            id: me.account().unwrap_or_default().to_string(),
            region: self.region(),
            partition,
        })
    }

    /// The region the clients talk to.
    pub fn region(&self) -> String {
        self.ec2
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default()
    }

    /// Stores a secret as a SecureString parameter (overwriting): the value goes only to AWS.
    pub async fn put_secret(&self, name: &str, value: &str) -> Result<(), CloudError> {
        self.put_secret_in(name, value, false).await
    }

    /// The same, in Parameter Store's advanced tier when `advanced` (values up to 8 KB).
    pub async fn put_secret_in(
        &self,
        name: &str,
        value: &str,
        advanced: bool,
    ) -> Result<(), CloudError> {
        use aws_sdk_ssm::types::ParameterTier;
        let tier = if advanced {
            ParameterTier::Advanced
        } else {
            ParameterTier::Standard
        };
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .tier(tier)
            .overwrite(true)
            .send()
            .await
            .map(drop)
            .map_err(fail(format!("parameter {name}"), "ssm:PutParameter"))
    }

    /// A SecureString's value, decrypted; None if there is no such parameter.
    pub async fn get_secret(&self, name: &str) -> Result<Option<String>, CloudError> {
        match self
            .ssm
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
        {
            Ok(out) => Ok(out.parameter.and_then(|p| p.value)),
            Err(e) if e.code() == Some("ParameterNotFound") => Ok(None),
            Err(e) => Err(fail(format!("parameter {name}"), "ssm:GetParameter")(e)),
        }
    }

    /// Removes the parameters under `path` (the stack's secrets, on destroy).
    pub async fn delete_secrets(&self, names: &[String]) -> Result<(), CloudError> {
        for name in names {
            match self.ssm.delete_parameter().name(name).send().await {
                Ok(_) => {}
                Err(e) if e.code() == Some("ParameterNotFound") => {}
                Err(e) => return Err(fail(format!("parameter {name}"), "ssm:DeleteParameter")(e)),
            }
        }
        Ok(())
    }

    /// An AMI parameter's value and when it was last written (RFC 3339, UTC), e.g. what
    /// Canonical or Amazon publish under `/aws/service/…/ami-id`.
    pub async fn ssm_parameter(&self, name: &str) -> Result<(String, Option<String>), CloudError> {
        let out = self
            .ssm
            .get_parameter()
            .name(name)
            .send()
            .await
            .map_err(fail(format!("AMI parameter {name}"), "ssm:GetParameter"))?;
        let parameter = out
            .parameter
            .unwrap_or_else(|| aws_sdk_ssm::types::Parameter::builder().build());
        let modified = parameter
            .last_modified_date()
            .and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok());
        let value = parameter.value.ok_or_else(|| CloudError::Invalid {
            resource: format!("AMI parameter {name}"),
            message: "has no value".into(),
        })?;
        Ok((value, modified))
    }
}

/// The standard AWS chain with this project's HTTP client (rustls) and retry policy.
async fn sdk_config(region: Option<&str>) -> Result<aws_config::SdkConfig, CloudError> {
    use aws_smithy_http_client::tls;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(8)
                .with_max_backoff(Duration::from_secs(20)),
        );
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    let conf = loader.load().await;
    if conf.region().is_none() {
        return Err(CloudError::NoRegion);
    }
    Ok(conf)
}

/// An S3 client for the state bucket (whose region may differ from the stack's).
pub async fn s3_client(
    region: Option<&str>,
    call_log: CallLog,
) -> Result<aws_sdk_s3::Client, CloudError> {
    let conf = sdk_config(region).await?;
    Ok(aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&conf)
            .interceptor(call_log)
            .build(),
    ))
}

/// The executors, chosen by where a kind lives ([`crate::model::Place`]); a new kind is
/// handled in its service's module.
impl Cloud {
    pub async fn create(
        &self,
        address: &Address,
        spec: &Spec,
        ids: &Ids,
    ) -> Result<Created, CloudError> {
        match (spec.place(), spec) {
            (Place::Ssm, Spec::Secret(s)) => self.put_secret_spec(address, s).await,
            (Place::Iam, _) => self.create_iam(address, spec, ids).await,
            (Place::Ecr, Spec::Repository(r)) => self.create_repository(address, r).await,
            (Place::Logs, Spec::LogGroup(g)) => self.create_log_group(address, g).await,
            (Place::Elbv2, _) => self.create_elb(address, spec, ids).await,
            (Place::Ec2, _) => self.create_ec2(address, spec, ids).await,
            _ => Err(not_ours(address, spec)),
        }
    }

    pub async fn update(
        &self,
        address: &Address,
        id: &str,
        before: &Spec,
        after: &Spec,
        ids: &Ids,
    ) -> Result<(), CloudError> {
        match (after.place(), after) {
            (Place::Ssm, Spec::Secret(s)) => self.put_secret_spec(address, s).await.map(drop),
            (Place::Iam, _) => self.update_iam(address, before, after, ids).await,
            (Place::Ecr, Spec::Repository(r)) => {
                let before = match before {
                    Spec::Repository(b) => Some(b),
                    _ => None,
                };
                self.set_repository(address, r, before).await
            }
            (Place::Logs, Spec::LogGroup(g)) => self.set_retention(address, g).await,
            (Place::Elbv2, _) => self.update_elb(address, id, after, ids).await,
            (Place::Ec2, _) => self.update_ec2(address, id, before, after, ids).await,
            _ => Err(not_ours(address, after)),
        }
    }

    /// Removes an object; one already gone counts as removed.
    pub async fn delete(&self, address: &Address, id: &str, spec: &Spec) -> Result<(), CloudError> {
        match (spec.place(), spec) {
            (Place::Ssm, Spec::Secret(s)) => {
                self.delete_secrets(std::slice::from_ref(&s.parameter))
                    .await
            }
            (Place::Iam, _) => self.delete_iam(address, spec).await,
            (Place::Ecr, Spec::Repository(r)) => self.delete_repository(address, r).await,
            (Place::Logs, Spec::LogGroup(g)) => self.delete_log_group(address, g).await,
            (Place::Elbv2, _) => self.delete_elb(address, id, spec).await,
            (Place::Ec2, _) => self.delete_ec2(address, id, spec).await,
            _ => Err(not_ours(address, spec)),
        }
    }
}

/// An object that does not live in AWS (a Swarm object) handed to the cloud's executor.
fn not_ours(address: &Address, spec: &Spec) -> CloudError {
    CloudError::Invalid {
        resource: address.to_string(),
        message: format!("a {} is not an AWS object", spec.kind()),
    }
}
