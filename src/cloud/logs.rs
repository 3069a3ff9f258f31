//! The stack's log group in CloudWatch Logs (`[logging] driver = "awslogs"`), found by its name
//! (`/infra/<stack>`: one DescribeLogGroups), and the services' lines read back from it for
//! `infra logs`.

use std::collections::BTreeMap;

use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;

use super::read::{TAG_ADDRESS, TAG_STACK};
use super::{Cloud, CloudError, Created, fail};
use crate::model::resources::LOG_GROUP;
use crate::model::{Address, Live, LogGroupSpec, Observed, Spec};

/// One line a task wrote, as CloudWatch Logs keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEventRecord {
    /// Unique in the group: how a poll that overlaps the last one skips what it printed.
    pub id: String,
    /// The stream: the container's name (`sandbox_web.1.<task id>`, the driver's `tag`).
    pub stream: String,
    /// Milliseconds since the epoch, as the daemon stamped it.
    pub timestamp: i64,
    pub message: String,
}

impl Cloud {
    /// The log group named `name`, if it exists.
    pub(super) async fn read_logs(&self, name: Option<&str>) -> Result<Live, CloudError> {
        let mut live = Live::new();
        let Some(name) = name else {
            return Ok(live);
        };
        let out = self
            .logs
            .describe_log_groups()
            .log_group_name_prefix(name)
            .send()
            .await
            .map_err(fail(LOG_GROUP, "logs:DescribeLogGroups"))?;
        if let Some(g) = out
            .log_groups()
            .iter()
            .find(|g| g.log_group_name() == Some(name))
        {
            live.insert(
                Address::new(LOG_GROUP),
                Observed {
                    id: name.to_string(),
                    spec: Spec::LogGroup(LogGroupSpec {
                        name: name.to_string(),
                        // Never expire, to CloudWatch, is no retention policy.
                        retention_days: g.retention_in_days().unwrap_or(0) as u32,
                    }),
                    outputs: BTreeMap::from([(
                        "arn".to_string(),
                        g.arn().unwrap_or_default().to_string(),
                    )]),
                },
            );
        }
        Ok(live)
    }

    /// Creates the group, tagged, then sets its retention. A group already there (a run killed
    /// after the create) is taken over.
    pub(super) async fn create_log_group(
        &self,
        a: &Address,
        g: &LogGroupSpec,
    ) -> Result<Created, CloudError> {
        let created = self
            .logs
            .create_log_group()
            .log_group_name(&g.name)
            .tags(TAG_STACK, &self.stack)
            .tags(TAG_ADDRESS, a.as_str())
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceAlreadyExistsException") => {}
            Err(e) => return Err(fail(a, "logs:CreateLogGroup")(e)),
        }
        self.set_retention(a, g).await?;
        Ok(Observed {
            id: g.name.clone(),
            spec: Spec::LogGroup(g.clone()),
            outputs: BTreeMap::new(),
        })
    }

    /// PutRetentionPolicy: how long CloudWatch keeps the lines.
    pub(super) async fn set_retention(
        &self,
        a: &Address,
        g: &LogGroupSpec,
    ) -> Result<(), CloudError> {
        self.logs
            .put_retention_policy()
            .log_group_name(&g.name)
            .retention_in_days(g.retention_days as i32)
            .send()
            .await
            .map(drop)
            .map_err(fail(a, "logs:PutRetentionPolicy"))
    }

    /// Deletes the group and every line in it; one already gone counts as deleted.
    pub(super) async fn delete_log_group(
        &self,
        a: &Address,
        g: &LogGroupSpec,
    ) -> Result<(), CloudError> {
        match self
            .logs
            .delete_log_group()
            .log_group_name(&g.name)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(fail(a, "logs:DeleteLogGroup")(e)),
        }
    }

    /// The lines of the streams of `group` whose names start with `prefix`, from `start` (ms
    /// since the epoch) on, oldest first (FilterLogEvents, every page).
    pub async fn log_events(
        &self,
        group: &str,
        prefix: &str,
        start: Option<i64>,
    ) -> Result<Vec<LogEventRecord>, CloudError> {
        let pages = self
            .logs
            .filter_log_events()
            .log_group_name(group)
            .log_stream_name_prefix(prefix)
            .set_start_time(start)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(fail(LOG_GROUP, "logs:FilterLogEvents"))?;
        let mut events: Vec<LogEventRecord> = pages
            .iter()
            .flat_map(|p| p.events())
            .map(|e| LogEventRecord {
                id: e.event_id().unwrap_or_default().to_string(),
                stream: e.log_stream_name().unwrap_or_default().to_string(),
                timestamp: e.timestamp().unwrap_or_default(),
                message: e.message().unwrap_or_default().to_string(),
            })
            .collect();
        events.sort_by_key(|e| e.timestamp);
        Ok(events)
    }
}
