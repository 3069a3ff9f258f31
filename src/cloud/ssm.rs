//! The stack's secrets in Parameter Store (SecureString), under `/infra/<stack>/secrets/`.
//! Values are compared by a keyed hash (HMAC-SHA256) whose key is itself a SecureString there,
//! so neither the state nor a plan lets anyone guess a value from its hash.

use std::collections::BTreeMap;

use aws_sdk_ec2::error::ProvideErrorMetadata;

use super::{Cloud, CloudError, Created, fail};
use crate::model::resources::{secret_parameter, value_hmac};
use crate::model::{Address, Live, Observed, SecretSpec, Spec};

/// Not a secret name: secret names start with a letter.
const KEY_NAME: &str = "_hmac-key";

impl Cloud {
    /// Where the hashing key lives (removed by destroy).
    pub fn key_parameter(&self) -> String {
        secret_parameter(&self.stack, KEY_NAME)
    }

    /// The stack's hashing key; made (random, once) when `create` and there is none yet.
    pub async fn secrets_key(&self, create: bool) -> Result<Option<String>, CloudError> {
        let name = self.key_parameter();
        if let Some(key) = self.get_secret(&name).await? {
            return Ok(Some(key));
        }
        if !create {
            return Ok(None);
        }
        let key = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let put = self
            .ssm
            .put_parameter()
            .name(&name)
            .value(&key)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .description("infra: key for hashing this stack's secret values")
            .overwrite(false)
            .send()
            .await;
        match put {
            Ok(_) => Ok(Some(key)),
            // Another run made it first: use that one.
            Err(e) if e.code() == Some("ParameterAlreadyExists") => self.get_secret(&name).await,
            Err(e) => Err(fail(format!("parameter {name}"), "ssm:PutParameter")(e)),
        }
    }

    /// Every secret of the stack, values hashed with `key` (one paginated call).
    pub async fn read_secrets(&self, key: Option<&str>) -> Result<Live, CloudError> {
        let path = secret_parameter(&self.stack, "");
        let params = self
            .ssm
            .get_parameters_by_path()
            .path(path.trim_end_matches('/'))
            .with_decryption(true)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(fail(
                format!("parameters under {path}"),
                "ssm:GetParametersByPath",
            ))?
            .into_iter()
            .flat_map(|page| page.parameters.unwrap_or_default());
        let mut live = Live::new();
        for p in params {
            let (Some(name), Some(value)) = (p.name(), p.value()) else {
                continue;
            };
            let short = name.rsplit('/').next().unwrap_or(name);
            if short == KEY_NAME {
                continue;
            }
            let value = key.map_or_else(|| "unknown".to_string(), |k| value_hmac(k, value));
            let spec = Spec::Secret(SecretSpec {
                parameter: name.to_string(),
                value,
                source: String::new(),
                advanced: false,
            });
            live.insert(
                Address::new(format!("secret.{short}")),
                Observed {
                    id: name.to_string(),
                    spec,
                    outputs: BTreeMap::new(),
                },
            );
        }
        Ok(live)
    }

    /// Stores a secret read from its source, after checking it is the value the plan showed.
    pub(super) async fn put_secret_spec(
        &self,
        address: &Address,
        spec: &SecretSpec,
    ) -> Result<Created, CloudError> {
        let value = read_source(address, &spec.source)?;
        self.check_value(address, &value, &spec.value).await?;
        self.put_secret_in(&spec.parameter, &value, spec.advanced)
            .await?;
        Ok(Observed {
            id: spec.parameter.clone(),
            spec: Spec::Secret(spec.clone()),
            outputs: BTreeMap::new(),
        })
    }

    /// A secret's value from Parameter Store, checked against the hash the plan showed.
    pub async fn secret_value(
        &self,
        address: &Address,
        spec: &SecretSpec,
    ) -> Result<String, CloudError> {
        let value = self
            .get_secret(&spec.parameter)
            .await?
            .ok_or_else(|| CloudError::Invalid {
                resource: address.to_string(),
                message: format!(
                    "parameter {} is missing; run `infra apply` again",
                    spec.parameter
                ),
            })?;
        self.check_value(address, &value, &spec.value).await?;
        Ok(value)
    }

    async fn check_value(
        &self,
        address: &Address,
        value: &str,
        expected: &str,
    ) -> Result<(), CloudError> {
        let key = self.secrets_key(false).await?.unwrap_or_default();
        if value_hmac(&key, value) != expected {
            return Err(CloudError::Invalid {
                resource: address.to_string(),
                message: "its value changed since the plan was made; run `infra plan` again".into(),
            });
        }
        Ok(())
    }
}

/// A secret's value from where the stack file says it is: `env:NAME` or `file:/path`.
pub fn read_source(address: &Address, source: &str) -> Result<String, CloudError> {
    let invalid = |message: String| CloudError::Invalid {
        resource: address.to_string(),
        message,
    };
    match source.split_once(':') {
        Some(("env", var)) => std::env::var(var).map_err(|_| {
            invalid(format!(
                "environment variable {var} is not set (or not UTF-8)"
            ))
        }),
        Some(("file", path)) => std::fs::read_to_string(path)
            .map(|v| v.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|e| invalid(format!("cannot read {path}: {e}"))),
        _ => Err(invalid(format!("unknown secret source {source:?}"))),
    }
}
