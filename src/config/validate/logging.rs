//! `[logging]`: the services' logs in CloudWatch Logs.

use toml::Spanned;

use super::Validator;
use crate::config::schema::LoggingFile;
use crate::model::Logging;

/// The retention periods CloudWatch Logs takes, in days; any other is refused
/// (`InvalidParameterException`).
/// https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
pub const RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

impl Validator<'_> {
    pub(super) fn logging(&mut self, l: &Spanned<LoggingFile>) -> Option<Logging> {
        let file = l.get_ref();
        if file.driver.get_ref() != "awslogs" {
            self.error(
                file.driver.span(),
                format!("logging driver {:?} is not one infra runs", file.driver.get_ref()),
                Some("driver = \"awslogs\" (CloudWatch Logs); remove [logging] to keep Docker's own on each node"),
            );
            return None;
        }
        let retention_days = match &file.retention_days {
            Some(d) if !RETENTION_DAYS.contains(d.get_ref()) => {
                self.error(
                    d.span(),
                    format!("CloudWatch Logs does not keep lines for {} days", d.get_ref()),
                    Some("one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653"),
                );
                return None;
            }
            Some(d) => *d.get_ref() as u32,
            None => 30,
        };
        Some(Logging { retention_days })
    }
}
