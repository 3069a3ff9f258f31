//! The stack's image repositories in Amazon ECR.

use serde::{Deserialize, Serialize};

use super::{Kind, Place};
use crate::model::Address;

/// `ecr.repository.<name>`: one private repository of the account's registry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepositorySpec {
    /// The repository's name, as the stack file gives it (`web`, `team/web`).
    pub name: String,
    /// Scan each image when it is pushed (basic scanning).
    pub scan_on_push: bool,
    /// Tags may not be pushed over (`IMMUTABLE`).
    pub immutable_tags: bool,
    /// The lifecycle policy expires all but the newest this many images.
    pub keep_images: u32,
    /// Whether a removal deletes the images it still holds (Terraform's `force_delete`):
    /// otherwise a repository that holds images is kept, and the plan says so.
    pub force_delete: bool,
}

impl Kind for RepositorySpec {
    const NAME: &'static str = "repository";
    const PLACE: Place = Place::Ecr;
    // ECR has no rename; the encryption settings are fixed at creation (not managed here).
    // https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html
    const REPLACE_FIELDS: &'static [&'static str] = &["name"];
    fn references(&self) -> Vec<&Address> {
        vec![]
    }
}
