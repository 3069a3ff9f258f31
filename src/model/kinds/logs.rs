//! The stack's log group in CloudWatch Logs, where the services' logs go with
//! `[logging] driver = "awslogs"`.

use serde::{Deserialize, Serialize};

use super::{Kind, Place};
use crate::model::Address;

/// `logs.group`: the log group `/infra/<stack>`; each task writes its own stream in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogGroupSpec {
    pub name: String,
    /// How long CloudWatch keeps the lines, in days (PutRetentionPolicy).
    pub retention_days: u32,
}

impl Kind for LogGroupSpec {
    const NAME: &'static str = "log_group";
    const PLACE: Place = Place::Logs;
    // A log group has no rename.
    // https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html
    const REPLACE_FIELDS: &'static [&'static str] = &["name"];
    fn references(&self) -> Vec<&Address> {
        vec![]
    }
}
