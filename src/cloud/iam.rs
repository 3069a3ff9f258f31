//! The nodes' identity in IAM: their role (trust policy, infra's inline policy, the user's
//! managed policies) and its instance profile. IAM has no tag filter on reads: both are found by
//! their deterministic names (`infra-<stack>-nodes`), a constant number of calls.

use std::collections::BTreeMap;

use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_sdk_iam::types::Tag;

use super::read::{TAG_ADDRESS, TAG_STACK};
use super::{Cloud, CloudError, Created, Ids, fail, id_of};
use crate::model::resources::{INSTANCE_PROFILE, Names, ROLE};
use crate::model::{Address, IamRoleSpec, InstanceProfileSpec, Live, Observed, Spec};

/// The name of infra's inline policy on the role.
const POLICY_NAME: &str = "infra-nodes";

/// IAM answers policy documents URL-encoded; compared as compact JSON.
/// https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRolePolicy.html
fn document(encoded: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(encoded)
        .decode_utf8_lossy()
        .into_owned();
    serde_json::from_str::<serde_json::Value>(&decoded)
        .map(|v| v.to_string())
        .unwrap_or(decoded)
}

impl Cloud {
    fn iam_tags(&self, address: &Address) -> Vec<Tag> {
        [
            (TAG_STACK, self.stack.as_str()),
            (TAG_ADDRESS, address.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value")
        })
        .collect()
    }

    /// The role and the instance profile, when they exist; the profile's ARN is its id.
    pub(super) async fn read_iam(&self) -> Result<Live, CloudError> {
        let name = Names::node_role(&self.stack);
        let role = async {
            match self.iam.get_role().role_name(&name).send().await {
                Ok(out) => Ok(out.role),
                Err(e) if e.code() == Some("NoSuchEntity") => Ok(None),
                Err(e) => Err(fail(ROLE, "iam:GetRole")(e)),
            }
        };
        let profile = async {
            match self
                .iam
                .get_instance_profile()
                .instance_profile_name(&name)
                .send()
                .await
            {
                Ok(out) => Ok(out.instance_profile),
                Err(e) if e.code() == Some("NoSuchEntity") => Ok(None),
                Err(e) => Err(fail(INSTANCE_PROFILE, "iam:GetInstanceProfile")(e)),
            }
        };
        let (role, profile) = tokio::try_join!(role, profile)?;
        let mut live = Live::new();
        if let Some(role) = role {
            let (policy, managed) =
                tokio::try_join!(self.role_policy(&name), self.attached_policies(&name))?;
            live.insert(
                Address::new(ROLE),
                Observed {
                    id: role.role_name().to_string(),
                    spec: Spec::IamRole(IamRoleSpec {
                        name: role.role_name().to_string(),
                        trust_policy: role
                            .assume_role_policy_document()
                            .map(document)
                            .unwrap_or_default(),
                        policy,
                        managed_policies: managed,
                    }),
                    outputs: BTreeMap::from([("arn".to_string(), role.arn().to_string())]),
                },
            );
        }
        if let Some(p) = profile {
            let role = p
                .roles()
                .first()
                .map(|r| {
                    if r.role_name() == name {
                        Address::new(ROLE)
                    } else {
                        Address::new(r.arn())
                    }
                })
                .unwrap_or_else(|| Address::new("(none)"));
            live.insert(
                Address::new(INSTANCE_PROFILE),
                Observed {
                    id: p.arn().to_string(),
                    spec: Spec::InstanceProfile(InstanceProfileSpec {
                        name: p.instance_profile_name().to_string(),
                        role,
                    }),
                    outputs: BTreeMap::new(),
                },
            );
        }
        Ok(live)
    }

    /// Whether IAM knows this managed policy (a plan check: AttachRolePolicy refuses others).
    pub async fn managed_policy_exists(&self, arn: &str) -> Result<bool, CloudError> {
        match self.iam.get_policy().policy_arn(arn).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("NoSuchEntity") => Ok(false),
            Err(e) => Err(fail(format!("{ROLE} (policy {arn})"), "iam:GetPolicy")(e)),
        }
    }

    /// infra's inline policy on the role, compact JSON; empty when there is none.
    async fn role_policy(&self, role: &str) -> Result<String, CloudError> {
        match self
            .iam
            .get_role_policy()
            .role_name(role)
            .policy_name(POLICY_NAME)
            .send()
            .await
        {
            Ok(out) => Ok(document(out.policy_document())),
            Err(e) if e.code() == Some("NoSuchEntity") => Ok(String::new()),
            Err(e) => Err(fail(ROLE, "iam:GetRolePolicy")(e)),
        }
    }

    /// The managed policies attached to the role, sorted.
    async fn attached_policies(&self, role: &str) -> Result<Vec<String>, CloudError> {
        let mut arns: Vec<String> = self
            .iam
            .list_attached_role_policies()
            .role_name(role)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(fail(ROLE, "iam:ListAttachedRolePolicies"))?
            .into_iter()
            .filter_map(|p| p.policy_arn)
            .collect();
        arns.sort();
        Ok(arns)
    }

    pub(super) async fn create_iam(
        &self,
        a: &Address,
        spec: &Spec,
        ids: &Ids,
    ) -> Result<Created, CloudError> {
        let (id, outputs) = match spec {
            Spec::IamRole(r) => {
                let created = self
                    .iam
                    .create_role()
                    .role_name(&r.name)
                    .assume_role_policy_document(&r.trust_policy)
                    .description(format!("infra {}: the nodes' role", self.stack))
                    .set_tags(Some(self.iam_tags(a)))
                    .send()
                    .await;
                let arn = match created {
                    Ok(out) => out.role.map(|r| r.arn).unwrap_or_default(),
                    // A run killed after the create: the role is ours by name and tag.
                    Err(e) if e.code() == Some("EntityAlreadyExists") => {
                        self.owned_role_arn(a, &r.name).await?
                    }
                    Err(e) => return Err(fail(a, "iam:CreateRole")(e)),
                };
                self.set_role_policies(
                    a,
                    r,
                    &IamRoleSpec {
                        policy: String::new(),
                        managed_policies: vec![],
                        ..r.clone()
                    },
                )
                .await?;
                (r.name.clone(), BTreeMap::from([("arn".to_string(), arn)]))
            }
            Spec::InstanceProfile(p) => {
                let created = self
                    .iam
                    .create_instance_profile()
                    .instance_profile_name(&p.name)
                    .set_tags(Some(self.iam_tags(a)))
                    .send()
                    .await;
                let arn = match created {
                    Ok(out) => out.instance_profile.map(|p| p.arn).unwrap_or_default(),
                    Err(e) if e.code() == Some("EntityAlreadyExists") => {
                        self.profile_arn(a, &p.name).await?
                    }
                    Err(e) => return Err(fail(a, "iam:CreateInstanceProfile")(e)),
                };
                self.set_profile_role(a, p, None, ids).await?;
                (arn, BTreeMap::new())
            }
            other => {
                return Err(CloudError::Invalid {
                    resource: a.to_string(),
                    message: format!("{} is not an IAM object", other.kind()),
                });
            }
        };
        Ok(Observed {
            id,
            spec: spec.clone(),
            outputs,
        })
    }

    pub(super) async fn update_iam(
        &self,
        a: &Address,
        before: &Spec,
        after: &Spec,
        ids: &Ids,
    ) -> Result<(), CloudError> {
        match (before, after) {
            (Spec::IamRole(b), Spec::IamRole(r)) => {
                if b.trust_policy != r.trust_policy {
                    self.iam
                        .update_assume_role_policy()
                        .role_name(&r.name)
                        .policy_document(&r.trust_policy)
                        .send()
                        .await
                        .map_err(fail(a, "iam:UpdateAssumeRolePolicy"))?;
                }
                self.set_role_policies(a, r, b).await
            }
            (Spec::InstanceProfile(b), Spec::InstanceProfile(p)) => {
                self.set_profile_role(a, p, Some(b), ids).await
            }
            _ => Err(CloudError::Invalid {
                resource: a.to_string(),
                message: "cannot be updated in place".into(),
            }),
        }
    }

    /// Removes the role (its policies first) or the profile (its role first); one already
    /// gone counts as removed.
    pub(super) async fn delete_iam(&self, a: &Address, spec: &Spec) -> Result<(), CloudError> {
        let gone = |r: Result<(), CloudError>| match r {
            Err(e) if e.code() == Some("NoSuchEntity") => Ok(()),
            other => other,
        };
        match spec {
            Spec::IamRole(r) => {
                let live = self.attached_policies(&r.name).await;
                let attached = match live {
                    Err(e) if e.code() == Some("NoSuchEntity") => return Ok(()),
                    other => other?,
                };
                let empty = IamRoleSpec {
                    policy: String::new(),
                    managed_policies: vec![],
                    ..r.clone()
                };
                let current = IamRoleSpec {
                    policy: self.role_policy(&r.name).await?,
                    managed_policies: attached,
                    ..r.clone()
                };
                gone(self.set_role_policies(a, &empty, &current).await)?;
                gone(
                    self.iam
                        .delete_role()
                        .role_name(&r.name)
                        .send()
                        .await
                        .map(drop)
                        .map_err(fail(a, "iam:DeleteRole")),
                )
            }
            Spec::InstanceProfile(p) => {
                let roles: Vec<String> = match self
                    .iam
                    .get_instance_profile()
                    .instance_profile_name(&p.name)
                    .send()
                    .await
                {
                    Ok(out) => out
                        .instance_profile
                        .map(|p| p.roles.into_iter().map(|r| r.role_name).collect())
                        .unwrap_or_default(),
                    Err(e) if e.code() == Some("NoSuchEntity") => return Ok(()),
                    Err(e) => return Err(fail(a, "iam:GetInstanceProfile")(e)),
                };
                for role in roles {
                    gone(self.remove_profile_role(a, &p.name, &role).await)?;
                }
                gone(
                    self.iam
                        .delete_instance_profile()
                        .instance_profile_name(&p.name)
                        .send()
                        .await
                        .map(drop)
                        .map_err(fail(a, "iam:DeleteInstanceProfile")),
                )
            }
            other => Err(CloudError::Invalid {
                resource: a.to_string(),
                message: format!("{} is not an IAM object", other.kind()),
            }),
        }
    }

    /// Brings the role's inline policy and attached policies from `before` to `after`.
    async fn set_role_policies(
        &self,
        a: &Address,
        after: &IamRoleSpec,
        before: &IamRoleSpec,
    ) -> Result<(), CloudError> {
        let role = &after.name;
        if after.policy != before.policy {
            if after.policy.is_empty() {
                self.iam
                    .delete_role_policy()
                    .role_name(role)
                    .policy_name(POLICY_NAME)
                    .send()
                    .await
                    .map(drop)
                    .or_else(|e| {
                        if e.code() == Some("NoSuchEntity") {
                            Ok(())
                        } else {
                            Err(fail(a, "iam:DeleteRolePolicy")(e))
                        }
                    })?;
            } else {
                self.iam
                    .put_role_policy()
                    .role_name(role)
                    .policy_name(POLICY_NAME)
                    .policy_document(&after.policy)
                    .send()
                    .await
                    .map_err(fail(a, "iam:PutRolePolicy"))?;
            }
        }
        for arn in &after.managed_policies {
            if !before.managed_policies.contains(arn) {
                self.iam
                    .attach_role_policy()
                    .role_name(role)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map_err(fail(format!("{a} (policy {arn})"), "iam:AttachRolePolicy"))?;
            }
        }
        for arn in &before.managed_policies {
            if !after.managed_policies.contains(arn) {
                self.iam
                    .detach_role_policy()
                    .role_name(role)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map_err(fail(format!("{a} (policy {arn})"), "iam:DetachRolePolicy"))?;
            }
        }
        Ok(())
    }

    /// Puts the spec's role in the profile (an instance profile holds one role), taking out
    /// the one `before` named.
    async fn set_profile_role(
        &self,
        a: &Address,
        p: &InstanceProfileSpec,
        before: Option<&InstanceProfileSpec>,
        ids: &Ids,
    ) -> Result<(), CloudError> {
        let role = self.role_name(&p.role, ids, a)?;
        if let Some(b) = before {
            let old = self.role_name(&b.role, ids, a).unwrap_or_default();
            if old == role {
                return Ok(());
            }
            if !old.is_empty() {
                let removed = self.remove_profile_role(a, &p.name, &old).await;
                if !matches!(&removed, Err(e) if e.code() == Some("NoSuchEntity")) {
                    removed?;
                }
            }
        }
        match self
            .iam
            .add_role_to_instance_profile()
            .instance_profile_name(&p.name)
            .role_name(&role)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Already in it (a run killed after this call).
            Err(e) if e.code() == Some("LimitExceeded") => Ok(()),
            Err(e) => Err(fail(a, "iam:AddRoleToInstanceProfile")(e)),
        }
    }

    async fn remove_profile_role(
        &self,
        a: &Address,
        profile: &str,
        role: &str,
    ) -> Result<(), CloudError> {
        self.iam
            .remove_role_from_instance_profile()
            .instance_profile_name(profile)
            .role_name(role)
            .send()
            .await
            .map(drop)
            .map_err(fail(a, "iam:RemoveRoleFromInstanceProfile"))
    }

    /// A role's name from its address (the role's id is its name) or its ARN.
    fn role_name(&self, role: &Address, ids: &Ids, a: &Address) -> Result<String, CloudError> {
        let id = id_of(ids, role, a)?;
        Ok(id.rsplit('/').next().unwrap_or(&id).to_string())
    }

    /// The ARN of a role that exists already, if it is this stack's (its `infra:stack` tag).
    async fn owned_role_arn(&self, a: &Address, name: &str) -> Result<String, CloudError> {
        let role = self
            .iam
            .get_role()
            .role_name(name)
            .send()
            .await
            .map_err(fail(a, "iam:GetRole"))?
            .role;
        let ours = role.as_ref().is_some_and(|r| {
            r.tags()
                .iter()
                .any(|t| t.key() == TAG_STACK && t.value() == self.stack)
        });
        let Some(role) = role.filter(|_| ours) else {
            return Err(CloudError::Invalid {
                resource: a.to_string(),
                message: format!(
                    "an IAM role named {name} exists and is not this stack's (no tag {TAG_STACK}={}): rename or delete it",
                    self.stack
                ),
            });
        };
        Ok(role.arn().to_string())
    }

    async fn profile_arn(&self, a: &Address, name: &str) -> Result<String, CloudError> {
        let out = self
            .iam
            .get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .map_err(fail(a, "iam:GetInstanceProfile"))?;
        Ok(out.instance_profile.map(|p| p.arn).unwrap_or_default())
    }
}
