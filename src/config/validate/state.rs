//! Where the state lives: `[state]`, local or in an S3 bucket.

use toml::Spanned;

use super::Validator;
use crate::config::schema::*;
use crate::model::*;

impl<'a> Validator<'a> {
    pub fn state(
        &mut self,
        state: Option<&Spanned<StateFile>>,
        stack: &str,
        region: Option<&str>,
    ) -> Option<StateLocation> {
        let Some(state) = state else {
            return Some(StateLocation::Local);
        };
        let s = state.get_ref();
        let text = |v: &Option<Spanned<String>>| v.as_ref().map(|v| v.get_ref().clone());
        match s.backend.as_ref().map(|b| b.get_ref().as_str()) {
            None | Some("local") => Some(StateLocation::Local),
            Some("s3") => {
                let Some(bucket) = text(&s.bucket) else {
                    let at = state.span().start..state.span().start + "[state]".len();
                    self.error(
                        at,
                        "backend = \"s3\" needs a bucket",
                        Some("add bucket = \"my-infra-state\" to [state]"),
                    );
                    return None;
                };
                let key = text(&s.key).unwrap_or_else(|| format!("infra/{stack}.json"));
                if let Some(k) = &s.key
                    && (k.get_ref().is_empty() || k.get_ref().starts_with('/'))
                {
                    self.error(
                        k.span(),
                        format!("state key {:?} must be a relative object key", k.get_ref()),
                        None,
                    );
                }
                let region = text(&s.region).or(region.map(str::to_string));
                Some(StateLocation::S3 {
                    bucket,
                    key,
                    region,
                })
            }
            Some(other) => {
                let span = s.backend.as_ref().expect("matched").span();
                self.error(
                    span,
                    format!("unknown state backend {other:?}"),
                    Some("use \"local\" or \"s3\""),
                );
                None
            }
        }
    }
}
