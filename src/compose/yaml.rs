//! The YAML half of a compose file, read as `docker stack deploy` reads it (docker/cli parses with
//! gopkg.in/yaml.v2, YAML 1.1): `0440` is octal, `yes`/`on` are booleans, quoted scalars stay
//! strings, anchors and `<<` merge keys are resolved, a repeated key keeps its last value. Values
//! (never keys) are interpolated as the Compose specification says
//! (<https://github.com/compose-spec/compose-spec/blob/main/12-interpolation.md>): `${VAR}`,
//! `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`, `${VAR:+alt}`,
//! nesting, `$$` for a literal `$`. Go templates (`{{.Node.Hostname}}`) hold no `$` and pass
//! through. Parsing and interpolation are serde-saphyr's (`PropertySyntax::DockerCompose`).

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::ComposeError;
use crate::model::Vars;

/// Parses `text`; with `vars`, interpolates its values. Errors name `file:line:column`.
pub fn parse(text: &str, file: &str, vars: Option<&Vars>) -> Result<Value, ComposeError> {
    let mut opts = serde_saphyr::options! {
        legacy_octal_numbers: true,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
        with_snippet: false,
    };
    if let Some(vars) = vars {
        opts.property_syntax = serde_saphyr::PropertySyntax::DockerCompose;
        let map: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        opts = opts.with_properties(map);
    }
    serde_saphyr::from_str_with_options::<Value>(text, opts).map_err(|e| {
        // "missing property `NEED`: set it at line 4, column 6": the place goes in front.
        let message = e.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m)
            .trim()
            .to_string();
        match e.location() {
            Some(l) => ComposeError::new(&format!("{file}:{}:{}", l.line(), l.column()), message),
            None => ComposeError::new(file, message),
        }
    })
}

/// Variables referenced without a default (`$VAR`, `${VAR}`) in the values of `raw` (the file
/// parsed without interpolation) that `vars` does not set: Compose substitutes an empty string,
/// which is rarely what the author meant.
pub fn unset_variables(raw: &Value, vars: &Vars) -> Vec<String> {
    let mut unset = BTreeSet::new();
    let mut strings = Vec::new();
    collect_strings(raw, &mut strings);
    for text in strings {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b'$' {
                i += 1;
                continue;
            }
            if bytes.get(i + 1) == Some(&b'$') {
                i += 2;
                continue;
            }
            let braced = bytes.get(i + 1) == Some(&b'{');
            let start = i + 1 + usize::from(braced);
            let end = start
                + text[start..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(text.len() - start);
            let name = &text[start..end];
            let plain = !braced || bytes.get(end) == Some(&b'}');
            if plain
                && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && !vars.contains_key(name)
            {
                unset.insert(name.to_string());
            }
            i = end.max(i + 1);
        }
    }
    unset.into_iter().collect()
}

fn collect_strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        Value::Object(m) => m.values().for_each(|i| collect_strings(i, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Vars {
        Vars::from([
            ("TAG".to_string(), "1.25".to_string()),
            ("EMPTY".to_string(), String::new()),
        ])
    }

    #[test]
    fn interpolates_values_as_compose_does() {
        let text = r#"
a: ${TAG} $TAG ${TAG:-x} ${UNSET:-d} ${EMPTY:-e} ${EMPTY-f} ${UNSET-g}
b: ${TAG:+set}${UNSET:+no}
c: ${UNSET:-${TAG}}
d: "{{.Node.Hostname}} $$HOME $${X}"
${TAG}: key
e: |
  line ${TAG}
"#;
        let v = parse(text, "c.yml", Some(&vars())).unwrap();
        assert_eq!(v["a"], "1.25 1.25 1.25 d e  g");
        assert_eq!(v["b"], "set");
        assert_eq!(v["c"], "1.25");
        assert_eq!(v["d"], "{{.Node.Hostname}} $HOME ${X}");
        assert_eq!(v["${TAG}"], "key", "keys are never interpolated");
        assert_eq!(v["e"], "line 1.25\n");
    }

    #[test]
    fn a_missing_required_variable_names_file_line_and_column() {
        let text = "services:\n  web:\n    image: \"web:${TAG:?set TAG to the release}\"\n";
        let e = parse(text, "compose.yml", Some(&Vars::new())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "compose.yml:3:12: missing property `TAG`: set TAG to the release"
        );
        let e = parse("x: ${TAG?}\n", "c.yml", Some(&Vars::new())).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("c.yml:1:4: missing property `TAG`"),
            "{e}"
        );
    }

    #[test]
    fn resolves_scalars_as_yaml_1_1() {
        let text = "m: 0440\nn: \"0440\"\no: yes\np: \"1.10\"\nq: 1.10\nr: 12345678901234567890\nt: 1_000\nv: 0x1F\nw: on\nx: \"true\"\n";
        let v = parse(text, "c.yml", None).unwrap();
        assert_eq!(
            v,
            json!({"m": 288, "n": "0440", "o": true, "p": "1.10", "q": 1.1,
                   "r": 12345678901234567890u64, "t": 1000, "v": 31, "w": true, "x": "true"})
        );
    }

    #[test]
    fn merges_anchors_and_keeps_the_last_repeated_key() {
        let text = "x-defaults: &d {restart: always, replicas: 2}\nweb:\n  <<: *d\n  replicas: 3\nk: 1\nk: 2\n";
        let v = parse(text, "c.yml", None).unwrap();
        assert_eq!(v["web"], json!({"replicas": 3, "restart": "always"}));
        assert_eq!(v["k"], 2);
    }

    #[test]
    fn without_vars_nothing_is_interpolated() {
        let v = parse("a: \"${X} $$\"\n", "c.yml", None).unwrap();
        assert_eq!(v["a"], "${X} $$");
    }

    #[test]
    fn finds_unset_variables_without_defaults() {
        let text = "# ${COMMENTED}\na: $TAG ${NOPE} ${D:-x} ${R:?y} $$ESCAPED ${TAG}\nb: [$ALSO_NOT-x, cost $5]\n${KEY}: 1\n";
        let raw = parse(text, "c.yml", None).unwrap();
        assert_eq!(unset_variables(&raw, &vars()), vec!["ALSO_NOT", "NOPE"]);
    }
}
