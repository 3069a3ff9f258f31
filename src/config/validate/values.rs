//! The checks of single values every area shares: object names, one-of choices, durations,
//! templated strings and integers in a range.

use std::ops::Range;

use toml::Spanned;

use super::Validator;
use crate::config::template;
use crate::model::*;

impl<'a> Validator<'a> {
    /// Names become Docker and Parameter Store names: a letter, then letters, digits, `-`, `_`.
    pub(super) fn object_name(&mut self, name: &str, span: Range<usize>, what: &str) {
        if !valid_object_name(name) {
            self.error(
                span,
                format!("{what} name {name:?} must start with a lowercase letter and hold only a-z, 0-9, - and _ (at most 40)"),
                None,
            );
        }
    }

    pub(super) fn one_of(&mut self, v: &Spanned<String>, what: &str, allowed: &[&str]) -> String {
        if !allowed.contains(&v.get_ref().as_str()) {
            self.error(
                v.span(),
                format!(
                    "{what} {:?} is not one of {}",
                    v.get_ref(),
                    allowed.join(", ")
                ),
                None,
            );
        }
        v.get_ref().clone()
    }

    pub(super) fn duration(&mut self, v: &Spanned<String>) -> Option<std::time::Duration> {
        match humantime::parse_duration(v.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    v.span(),
                    format!("{:?} is not a duration: {e}", v.get_ref()),
                    Some("write it like 10s, 2m or 1m30s"),
                );
                None
            }
        }
    }

    /// A string that may hold `{{ var }}` references: every name must be declared.
    pub(super) fn templated(&mut self, s: &Spanned<String>) -> Option<String> {
        let mut ok = true;
        for (name, offset) in template::references(s.get_ref()) {
            if !self.vars.contains_key(&name) {
                // +1: the span includes the opening quote.
                let at = s.span().start + 1 + offset;
                let msg = format!("unknown template variable {name:?}");
                let help = if super::BUILTIN_VARS.contains(&name.as_str()) {
                    "{{ registry }} is the stack's ECR registry: add a [registry] table with its repositories"
                } else {
                    "declare it in [vars] or pass --var NAME=VALUE"
                };
                self.error(at..at + name.len() + 4, msg, Some(help));
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        match template::render(s.get_ref(), &self.vars) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(s.span(), format!("template error: {e}"), None);
                None
            }
        }
    }

    pub(super) fn int(
        &mut self,
        v: &Spanned<i64>,
        what: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        let n = *v.get_ref();
        if range.contains(&n) {
            Some(n)
        } else {
            let msg = format!(
                "{what} {n} is out of range ({}..={})",
                range.start(),
                range.end()
            );
            self.error(v.span(), msg, None);
            None
        }
    }
}
