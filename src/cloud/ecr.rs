//! The stack's image repositories in Amazon ECR. ECR has no tag filter on reads: the
//! repositories are found by the names the stack file and the state give (DescribeRepositories
//! lists the account's, a page per 1,000), each with its lifecycle policy.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability, Tag};

use super::read::{TAG_ADDRESS, TAG_STACK};
use super::{Cloud, CloudError, Created, fail};
use crate::model::resources::{lifecycle_policy, repository_address};
use crate::model::{Address, Live, Observed, RepositorySpec, Spec};

/// What a repository holds, for the plan's checks: its tags, and how many images.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepositoryImages {
    pub tags: BTreeSet<String>,
    pub images: usize,
}

/// The `keep_images` of a lifecycle policy infra wrote; None for another policy.
fn kept_images(policy: &str) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_str(policy).ok()?;
    let rules = v.get("rules")?.as_array()?;
    let [rule] = rules.as_slice() else {
        return None;
    };
    let n = rule.pointer("/selection/countNumber")?.as_u64()?;
    let ours: serde_json::Value = serde_json::from_str(&lifecycle_policy(n as u32)).ok()?;
    (ours == v).then_some(n as u32)
}

impl Cloud {
    /// The repositories among `names` that exist, with their settings.
    pub(super) async fn read_ecr(&self, names: &BTreeSet<String>) -> Result<Live, CloudError> {
        let mut live = Live::new();
        if names.is_empty() {
            return Ok(live);
        }
        let repositories = self
            .ecr
            .describe_repositories()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(fail("ecr.repository", "ecr:DescribeRepositories"))?;
        let ours: Vec<_> = repositories
            .into_iter()
            .filter(|r| r.repository_name().is_some_and(|n| names.contains(n)))
            .collect();
        let policies = futures::future::try_join_all(
            ours.iter()
                .map(|r| self.lifecycle_policy(r.repository_name().unwrap_or_default())),
        )
        .await?;
        for (r, policy) in ours.iter().zip(policies) {
            let name = r.repository_name().unwrap_or_default();
            let spec = RepositorySpec {
                name: name.to_string(),
                scan_on_push: r
                    .image_scanning_configuration()
                    .is_some_and(|c| c.scan_on_push()),
                immutable_tags: r.image_tag_mutability() == Some(&ImageTagMutability::Immutable),
                keep_images: policy.as_deref().and_then(kept_images).unwrap_or(0),
                // Not in AWS: what the state holds is carried by the plan (see `ops::prepare`).
                force_delete: false,
            };
            live.insert(
                repository_address(name),
                Observed {
                    id: name.to_string(),
                    spec: Spec::Repository(spec),
                    outputs: BTreeMap::from([
                        (
                            "uri".to_string(),
                            r.repository_uri().unwrap_or_default().to_string(),
                        ),
                        (
                            "arn".to_string(),
                            r.repository_arn().unwrap_or_default().to_string(),
                        ),
                    ]),
                },
            );
        }
        Ok(live)
    }

    async fn lifecycle_policy(&self, name: &str) -> Result<Option<String>, CloudError> {
        match self
            .ecr
            .get_lifecycle_policy()
            .repository_name(name)
            .send()
            .await
        {
            Ok(out) => Ok(out.lifecycle_policy_text),
            Err(e) if e.code() == Some("LifecyclePolicyNotFoundException") => Ok(None),
            Err(e) => Err(fail(repository_address(name), "ecr:GetLifecyclePolicy")(e)),
        }
    }

    /// The tagged images of a repository (one DescribeImages a page of 1,000); None when the
    /// repository does not exist.
    pub async fn repository_images(
        &self,
        name: &str,
    ) -> Result<Option<RepositoryImages>, CloudError> {
        let pages = self
            .ecr
            .describe_images()
            .repository_name(name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await;
        let images = match pages {
            Ok(images) => images,
            Err(e) if e.code() == Some("RepositoryNotFoundException") => return Ok(None),
            Err(e) => return Err(fail(repository_address(name), "ecr:DescribeImages")(e)),
        };
        Ok(Some(RepositoryImages {
            images: images.len(),
            tags: images
                .iter()
                .flat_map(|i| i.image_tags().iter().cloned())
                .collect(),
        }))
    }

    pub(super) async fn create_repository(
        &self,
        a: &Address,
        r: &RepositorySpec,
    ) -> Result<Created, CloudError> {
        let tags = [(TAG_STACK, self.stack.as_str()), (TAG_ADDRESS, a.as_str())]
            .into_iter()
            .map(|(k, v)| {
                Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .expect("key and value")
            })
            .collect();
        let created = self
            .ecr
            .create_repository()
            .repository_name(&r.name)
            .image_scanning_configuration(scanning(r))
            .image_tag_mutability(mutability(r))
            .set_tags(Some(tags))
            .send()
            .await;
        let (uri, arn) = match created {
            Ok(out) => {
                let repo = out.repository;
                (
                    repo.as_ref().and_then(|r| r.repository_uri.clone()),
                    repo.and_then(|r| r.repository_arn),
                )
            }
            // A run killed after the create: settle the settings below.
            Err(e) if e.code() == Some("RepositoryAlreadyExistsException") => {
                self.set_repository(a, r, None).await?;
                (None, None)
            }
            Err(e) => return Err(fail(a, "ecr:CreateRepository")(e)),
        };
        self.put_lifecycle_policy(a, r).await?;
        let outputs = [("uri", uri), ("arn", arn)]
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), v?)))
            .collect();
        Ok(Observed {
            id: r.name.clone(),
            spec: Spec::Repository(r.clone()),
            outputs,
        })
    }

    /// Brings a repository's settings from `before` (all of them when None) to `r`.
    pub(super) async fn set_repository(
        &self,
        a: &Address,
        r: &RepositorySpec,
        before: Option<&RepositorySpec>,
    ) -> Result<(), CloudError> {
        if before.is_none_or(|b| b.scan_on_push != r.scan_on_push) {
            self.ecr
                .put_image_scanning_configuration()
                .repository_name(&r.name)
                .image_scanning_configuration(scanning(r))
                .send()
                .await
                .map_err(fail(a, "ecr:PutImageScanningConfiguration"))?;
        }
        if before.is_none_or(|b| b.immutable_tags != r.immutable_tags) {
            self.ecr
                .put_image_tag_mutability()
                .repository_name(&r.name)
                .image_tag_mutability(mutability(r))
                .send()
                .await
                .map_err(fail(a, "ecr:PutImageTagMutability"))?;
        }
        if before.is_some_and(|b| b.keep_images != r.keep_images) {
            self.put_lifecycle_policy(a, r).await?;
        }
        Ok(())
    }

    async fn put_lifecycle_policy(
        &self,
        a: &Address,
        r: &RepositorySpec,
    ) -> Result<(), CloudError> {
        self.ecr
            .put_lifecycle_policy()
            .repository_name(&r.name)
            .lifecycle_policy_text(lifecycle_policy(r.keep_images))
            .send()
            .await
            .map(drop)
            .map_err(fail(a, "ecr:PutLifecyclePolicy"))
    }

    /// Deletes a repository; with images in it only when `force_delete` (ECR refuses
    /// otherwise: RepositoryNotEmptyException). One already gone counts as removed.
    pub(super) async fn delete_repository(
        &self,
        a: &Address,
        r: &RepositorySpec,
    ) -> Result<(), CloudError> {
        match self
            .ecr
            .delete_repository()
            .repository_name(&r.name)
            .force(r.force_delete)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("RepositoryNotFoundException") => Ok(()),
            Err(e) => Err(fail(a, "ecr:DeleteRepository")(e)),
        }
    }
}

fn scanning(r: &RepositorySpec) -> ImageScanningConfiguration {
    ImageScanningConfiguration::builder()
        .scan_on_push(r.scan_on_push)
        .build()
}

fn mutability(r: &RepositorySpec) -> ImageTagMutability {
    if r.immutable_tags {
        ImageTagMutability::Immutable
    } else {
        ImageTagMutability::Mutable
    }
}
