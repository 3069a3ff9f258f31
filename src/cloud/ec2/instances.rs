//! The EC2 calls of the stack's machines: the key pair, launching a batch of instances (run,
//! tag, wait until running), moving one to another address, terminating one, and the images
//! they boot.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::types::*;
use base64::Engine;

use super::tag_spec;
use crate::cloud::read::{
    TAG_ADDRESS, TAG_POOL, TAG_PUBLIC_KEY, TAG_SLOTS, TAG_STACK, TAG_USER_DATA, instance_outputs,
};
use crate::cloud::{
    Cloud, CloudError, Created, Ids, ImageFacts, NOT_FOUND_YET, fail, id_of, retry_on, retry_when,
};
use crate::model::{Address, InstanceSpec, KeyPairSpec, Spec};

const WAIT_RUNNING: Duration = Duration::from_secs(600);

/// The root volume of an instance of `spec`, on the image's root device.
fn root_volume(root_device: String, spec: &InstanceSpec) -> BlockDeviceMapping {
    BlockDeviceMapping::builder()
        .device_name(root_device)
        .ebs(
            EbsBlockDevice::builder()
                .volume_size(spec.root_volume_gb as i32)
                .volume_type(VolumeType::Gp3)
                .encrypted(true)
                .delete_on_termination(true)
                .build(),
        )
        .build()
}

/// The instance metadata service as `spec` asks: IMDSv2 required or optional.
fn metadata_options(spec: &InstanceSpec) -> InstanceMetadataOptionsRequest {
    InstanceMetadataOptionsRequest::builder()
        .http_tokens(if spec.imdsv2_required {
            HttpTokensState::Required
        } else {
            HttpTokensState::Optional
        })
        .http_put_response_hop_limit(spec.metadata_hop_limit.into())
        .http_endpoint(InstanceMetadataEndpointState::Enabled)
        .build()
}

/// The instance profile `spec` names, by ARN (its id), as RunInstances and the association
/// calls take it.
fn profile_of(
    spec: &InstanceSpec,
    ids: &Ids,
    needed_by: &Address,
) -> Result<Option<IamInstanceProfileSpecification>, CloudError> {
    let Some(profile) = &spec.instance_profile else {
        return Ok(None);
    };
    let arn = id_of(ids, profile, needed_by)?;
    Ok(Some(
        IamInstanceProfileSpecification::builder().arn(arn).build(),
    ))
}

/// EC2's answer while a new instance profile is not yet visible to it (IAM is eventually
/// consistent: "Invalid IAM Instance Profile name/ARN" for seconds after the create).
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency
fn profile_not_visible_yet(e: &CloudError) -> bool {
    e.code() == Some("InvalidParameterValue") && e.to_string().contains("Instance Profile")
}

/// The ids of what RunInstances launched, in launch index order: as many as were asked for, or
/// an error.
fn launched_ids(
    shown: &str,
    asked: usize,
    mut launched: Vec<Instance>,
) -> Result<Vec<String>, CloudError> {
    launched.sort_by_key(|i| i.ami_launch_index());
    if launched.len() != asked {
        return Err(CloudError::Invalid {
            resource: shown.to_string(),
            message: format!(
                "RunInstances launched {} instances, {} were asked for",
                launched.len(),
                asked
            ),
        });
    }
    Ok(launched
        .iter()
        .filter_map(|i| i.instance_id.clone())
        .collect())
}

/// Each address of the batch with its instance, and the outputs the running instance has.
fn launched_objects(
    batch: &[(Address, InstanceSpec)],
    instance_ids: Vec<String>,
    described: &BTreeMap<String, Instance>,
) -> Vec<(Address, Created)> {
    batch
        .iter()
        .zip(instance_ids)
        .map(|((address, spec), id)| {
            let outputs = described.get(&id).map(instance_outputs).unwrap_or_default();
            (
                address.clone(),
                Created {
                    id,
                    spec: Spec::Instance(spec.clone()),
                    outputs,
                },
            )
        })
        .collect()
}

impl Cloud {
    /// ImportKeyPair, tagged with the public key's hash; the key's name, which is its id.
    pub(super) async fn import_key_pair(
        &self,
        a: &Address,
        k: &KeyPairSpec,
        tags: &[(&str, &str)],
    ) -> Result<String, CloudError> {
        let mut tags = tags.to_vec();
        tags.push((TAG_PUBLIC_KEY, &k.public_key_sha256));
        self.ec2
            .import_key_pair()
            .key_name(&k.name)
            .public_key_material(aws_smithy_types::Blob::new(k.public_key.as_bytes()))
            .tag_specifications(tag_spec(ResourceType::KeyPair, &tags))
            .send()
            .await
            .map_err(fail(a, "ec2:ImportKeyPair"))?;
        // The key's name is its id: RunInstances and DeleteKeyPair take the name.
        Ok(k.name.clone())
    }

    pub(super) async fn delete_key_pair(&self, a: &Address, id: &str) -> Result<(), CloudError> {
        self.ec2
            .delete_key_pair()
            .key_name(id)
            .send()
            .await
            .map(drop)
            .map_err(fail(a, "ec2:DeleteKeyPair"))
    }

    /// What an instance changes in place: its security groups, its metadata options and its
    /// instance profile, each only when it differs.
    pub(super) async fn update_instance(
        &self,
        a: &Address,
        id: &str,
        before: &InstanceSpec,
        after: &InstanceSpec,
        ids: &Ids,
    ) -> Result<(), CloudError> {
        if before.security_groups != after.security_groups {
            self.set_instance_groups(a, id, after, ids).await?;
        }
        if (before.imdsv2_required, before.metadata_hop_limit)
            != (after.imdsv2_required, after.metadata_hop_limit)
        {
            let m = metadata_options(after);
            self.ec2
                .modify_instance_metadata_options()
                .instance_id(id)
                .set_http_tokens(m.http_tokens().cloned())
                .set_http_put_response_hop_limit(m.http_put_response_hop_limit())
                .http_endpoint(InstanceMetadataEndpointState::Enabled)
                .send()
                .await
                .map_err(fail(a, "ec2:ModifyInstanceMetadataOptions"))?;
        }
        if before.instance_profile != after.instance_profile {
            self.set_instance_profile(a, id, after, ids).await?;
        }
        Ok(())
    }

    /// Associates the instance profile `i` names, replacing or removing the current one
    /// (an instance holds at most one association).
    async fn set_instance_profile(
        &self,
        a: &Address,
        id: &str,
        i: &InstanceSpec,
        ids: &Ids,
    ) -> Result<(), CloudError> {
        let current = self
            .ec2
            .describe_iam_instance_profile_associations()
            .filters(Filter::builder().name("instance-id").values(id).build())
            .send()
            .await
            .map_err(fail(a, "ec2:DescribeIamInstanceProfileAssociations"))?
            .iam_instance_profile_associations()
            .iter()
            .filter(|x| {
                x.state().is_some_and(|s| {
                    matches!(
                        s,
                        IamInstanceProfileAssociationState::Associated
                            | IamInstanceProfileAssociationState::Associating
                    )
                })
            })
            .find_map(|x| x.association_id().map(str::to_string));
        let wanted = profile_of(i, ids, a)?;
        match (current, wanted) {
            (None, None) => {}
            (None, Some(profile)) => {
                retry_when(profile_not_visible_yet, || async {
                    self.ec2
                        .associate_iam_instance_profile()
                        .instance_id(id)
                        .iam_instance_profile(profile.clone())
                        .send()
                        .await
                        .map_err(fail(a, "ec2:AssociateIamInstanceProfile"))
                })
                .await?;
            }
            (Some(association), Some(profile)) => {
                retry_when(profile_not_visible_yet, || async {
                    self.ec2
                        .replace_iam_instance_profile_association()
                        .association_id(&association)
                        .iam_instance_profile(profile.clone())
                        .send()
                        .await
                        .map_err(fail(a, "ec2:ReplaceIamInstanceProfileAssociation"))
                })
                .await?;
            }
            (Some(association), None) => {
                self.ec2
                    .disassociate_iam_instance_profile()
                    .association_id(association)
                    .send()
                    .await
                    .map_err(fail(a, "ec2:DisassociateIamInstanceProfile"))?;
            }
        }
        Ok(())
    }

    /// Puts the instance in the security groups `i` names (ModifyInstanceAttribute).
    async fn set_instance_groups(
        &self,
        a: &Address,
        id: &str,
        i: &InstanceSpec,
        ids: &Ids,
    ) -> Result<(), CloudError> {
        let groups = i
            .security_groups
            .iter()
            .map(|g| id_of(ids, g, a))
            .collect::<Result<Vec<_>, _>>()?;
        self.ec2
            .modify_instance_attribute()
            .instance_id(id)
            .set_groups(Some(groups))
            .send()
            .await
            .map_err(fail(a, "ec2:ModifyInstanceAttribute"))?;
        Ok(())
    }

    pub(super) async fn terminate_instance(&self, a: &Address, id: &str) -> Result<(), CloudError> {
        self.ec2
            .terminate_instances()
            .instance_ids(id)
            .send()
            .await
            .map_err(fail(a, "ec2:TerminateInstances"))?;
        Ok(())
    }

    /// Waits (bounded) until the instance is terminated.
    pub(super) async fn wait_terminated(&self, a: &Address, id: &str) -> Result<(), CloudError> {
        self.ec2
            .wait_until_instance_terminated()
            .instance_ids(id)
            .wait(WAIT_RUNNING)
            .await
            .map(drop)
            .map_err(|e| CloudError::Invalid {
                resource: a.to_string(),
                message: format!("did not terminate: {e}"),
            })
    }

    /// Launches instances that share every setting in one RunInstances call. The batch is tagged
    /// with its slots at launch, so an instance whose per-instance tags were never written (the
    /// run was killed) is still known by address.
    pub async fn launch(
        &self,
        batch: &[(Address, InstanceSpec)],
        ids: &Ids,
        client_token: &str,
    ) -> Result<Vec<(Address, Created)>, CloudError> {
        let shown = batch
            .iter()
            .map(|(a, _)| a.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let launched = self.run_instances(batch, ids, client_token, &shown).await?;
        let instance_ids = launched_ids(&shown, batch.len(), launched)?;
        self.tag_instances(batch, &instance_ids).await?;
        let described = self.wait_running(&shown, &instance_ids).await?;
        Ok(launched_objects(batch, instance_ids, &described))
    }

    /// The image's root device (DescribeImages), then one RunInstances call for the whole batch,
    /// tagged with the stack, pool, slots and user data hash; the instances it launched.
    async fn run_instances(
        &self,
        batch: &[(Address, InstanceSpec)],
        ids: &Ids,
        client_token: &str,
        shown: &str,
    ) -> Result<Vec<Instance>, CloudError> {
        let (first, spec) = &batch[0];
        let slots = batch
            .iter()
            .map(|(a, _)| a.split_index().1.unwrap_or(0).to_string())
            .collect::<Vec<_>>()
            .join(",");
        let groups = spec
            .security_groups
            .iter()
            .map(|g| id_of(ids, g, first))
            .collect::<Result<Vec<_>, _>>()?;
        let subnet = id_of(ids, &spec.subnet, first)?;
        let key = id_of(ids, &spec.key_pair, first)?;
        let instance_tags = [
            (TAG_STACK, self.stack.as_str()),
            (TAG_POOL, spec.pool.as_str()),
            (TAG_SLOTS, slots.as_str()),
            (TAG_USER_DATA, spec.user_data_sha256.as_str()),
        ];
        let root_device = self.root_device_name(first, &spec.ami).await?;
        let volume = root_volume(root_device, spec);
        let metadata = metadata_options(spec);
        let profile = profile_of(spec, ids, first)?;
        let n = batch.len() as i32;
        let out = retry_when(profile_not_visible_yet, || {
            retry_on(NOT_FOUND_YET, || async {
                self.ec2
                    .run_instances()
                    .image_id(&spec.ami)
                    .instance_type(InstanceType::from(spec.instance_type.as_str()))
                    .min_count(n)
                    .max_count(n)
                    .subnet_id(&subnet)
                    .set_security_group_ids(Some(groups.clone()))
                    .key_name(&key)
                    .user_data(base64::engine::general_purpose::STANDARD.encode(&spec.user_data))
                    .metadata_options(metadata.clone())
                    .set_iam_instance_profile(profile.clone())
                    .block_device_mappings(volume.clone())
                    .client_token(client_token)
                    .tag_specifications(tag_spec(ResourceType::Instance, &instance_tags))
                    .tag_specifications(tag_spec(ResourceType::Volume, &[(TAG_STACK, &self.stack)]))
                    .send()
                    .await
                    .map_err(fail(shown, "ec2:RunInstances"))
            })
        })
        .await?;
        Ok(out.instances.unwrap_or_default())
    }

    /// The per-instance tags: the address, and a Name for the console (one CreateTags call per
    /// instance, at once).
    async fn tag_instances(
        &self,
        batch: &[(Address, InstanceSpec)],
        instance_ids: &[String],
    ) -> Result<(), CloudError> {
        futures::future::try_join_all(batch.iter().zip(instance_ids).map(
            |((address, _), id)| async move {
                let name = format!("{}-{}", self.stack, address);
                retry_on(NOT_FOUND_YET, || async {
                    self.ec2
                        .create_tags()
                        .resources(id)
                        .tags(
                            Tag::builder()
                                .key(TAG_ADDRESS)
                                .value(address.as_str())
                                .build(),
                        )
                        .tags(Tag::builder().key("Name").value(&name).build())
                        .send()
                        .await
                        .map_err(fail(address, "ec2:CreateTags"))
                })
                .await
            },
        ))
        .await?;
        Ok(())
    }

    /// Waits (bounded) until the instances run; each as the waiter last described it, by id.
    async fn wait_running(
        &self,
        shown: &str,
        instance_ids: &[String],
    ) -> Result<BTreeMap<String, Instance>, CloudError> {
        let running = self
            .ec2
            .wait_until_instance_running()
            .set_instance_ids(Some(instance_ids.to_vec()))
            .wait(WAIT_RUNNING)
            .await
            .map_err(|e| CloudError::Invalid {
                resource: shown.to_string(),
                message: format!("did not reach running: {e}"),
            })?;
        Ok(running
            .as_result()
            .ok()
            .into_iter()
            .flat_map(|o| o.reservations())
            .flat_map(|r| r.instances())
            .filter_map(|i| Some((i.instance_id()?.to_string(), i.clone())))
            .collect())
    }

    /// Moves an instance to another address (`infra:address` and `Name` tags, one CreateTags
    /// call): a node replaced create-before-destroy becomes `…/old` before its successor is
    /// launched under its address.
    pub async fn retag_instance(
        &self,
        a: &Address,
        id: &str,
        to: &Address,
    ) -> Result<(), CloudError> {
        self.ec2
            .create_tags()
            .resources(id)
            .tags(Tag::builder().key(TAG_ADDRESS).value(to.as_str()).build())
            .tags(
                Tag::builder()
                    .key("Name")
                    .value(format!("{}-{to}", self.stack))
                    .build(),
            )
            .send()
            .await
            .map(drop)
            .map_err(fail(a, "ec2:CreateTags"))
    }

    /// What DescribeImages says of these AMIs, in one call; an id that does not exist in the
    /// region is an error naming it.
    pub async fn describe_images(
        &self,
        ids: &[String],
    ) -> Result<BTreeMap<String, ImageFacts>, CloudError> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let out = self
            .ec2
            .describe_images()
            .set_image_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(fail(ids.join(", "), "EC2:DescribeImages"))?;
        Ok(out
            .images
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| {
                let facts = ImageFacts {
                    name: i.name.clone().unwrap_or_default(),
                    windows: i.platform.is_some_and(|p| p.as_str() == "windows"),
                    architecture: i
                        .architecture
                        .as_ref()
                        .map(|a| a.as_str().to_string())
                        .unwrap_or_default(),
                };
                Some((i.image_id?, facts))
            })
            .collect())
    }

    /// The AMI's root device (`/dev/sda1` on Ubuntu, `/dev/xvda` on Amazon Linux), so the root
    /// volume settings apply to the root volume and do not add a second disk.
    /// An image that cannot be described (gone, not shared with the account) is an error
    /// naming it: guessing its root device would add a second volume instead.
    async fn root_device_name(&self, a: &Address, ami: &str) -> Result<String, CloudError> {
        let out = self
            .ec2
            .describe_images()
            .image_ids(ami)
            .send()
            .await
            .map_err(fail(a, "ec2:DescribeImages"))?;
        out.images
            .unwrap_or_default()
            .into_iter()
            .next()
            .and_then(|i| i.root_device_name)
            .ok_or_else(|| CloudError::Invalid {
                resource: a.to_string(),
                message: format!(
                    "image {ami} is not available to this account in this region (DescribeImages found no root device): choose another AMI"
                ),
            })
    }
}
