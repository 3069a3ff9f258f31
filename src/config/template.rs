//! `{{ var }}` references in stack-file strings, checked before anything is rendered.

use std::collections::BTreeMap;

/// Names referenced as `{{ name }}` or `{{ name | filter }}`, with their byte offset in `text`.
pub fn references(text: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    let mut rest = text;
    let mut base = 0;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open..].find("}}") else {
            break;
        };
        let inner = &rest[open + 2..open + close];
        let name = inner.split('|').next().unwrap_or("").trim();
        found.push((name.to_string(), base + open));
        base += open + close + 2;
        rest = &rest[open + close + 2..];
    }
    found
}

pub fn render(text: &str, vars: &BTreeMap<String, String>) -> Result<String, tera::Error> {
    if !text.contains("{{") {
        return Ok(text.to_string());
    }
    let context = tera::Context::from_serialize(vars)?;
    tera::Tera::one_off(text, &context, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_references() {
        assert_eq!(
            references("ami-{{ id }}x{{tag|upper}}"),
            vec![("id".into(), 4), ("tag".into(), 13)]
        );
        assert!(references("plain").is_empty());
    }

    #[test]
    fn renders() {
        let vars = BTreeMap::from([("size".to_string(), "large".to_string())]);
        assert_eq!(render("t3.{{ size }}", &vars).unwrap(), "t3.large");
    }
}
