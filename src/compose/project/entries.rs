//! The top-level entries of a compose file, read into what infra makes of them: `external`
//! references, `file:` configs (read and hashed), secrets (where their value comes from) and
//! overlay networks (their definition and its hash).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{ConfigDef, External, Input, Kind, NetworkDef, SecretDef, check_name, read_text};
use crate::compose::ComposeError;
use crate::compose::service::string_map;
use crate::model::ValueSource;

/// `external: true` (or the legacy `external: {name: …}`): named by `name:`, else by the key
/// itself, unprefixed, as Docker does.
pub(super) fn external(kind: Kind, key: &str, entry: &Value) -> Option<External> {
    let flag = &entry["external"];
    if flag.is_null() || flag == &Value::Bool(false) {
        return None;
    }
    let name = entry["name"]
        .as_str()
        .or_else(|| flag["name"].as_str())
        .unwrap_or(key);
    Some(External {
        kind,
        key: key.to_string(),
        name: name.to_string(),
    })
}

/// A `file:` config, read now.
pub(super) fn config(input: &Input, key: &str, entry: &Value) -> Result<ConfigDef, ComposeError> {
    let path = format!("configs.{key}");
    let Some(file) = entry["file"].as_str() else {
        return Err(ComposeError::new(
            input.file,
            format!("{path}: needs `file:` or `external: true`"),
        ));
    };
    let (_, content) = read_text(input, file, &path)?;
    let template_driver = entry["template_driver"].as_str().map(str::to_string);
    let sha256 = crate::model::resources::sha256_hex(&format!(
        "{}\n{content}",
        template_driver.as_deref().unwrap_or_default()
    ));
    let base = entry["name"].as_str().unwrap_or(key);
    check_name(input, &format!("{path}: config"), base)?;
    Ok(ConfigDef {
        key: key.to_string(),
        name: format!("{base}_{}", &sha256[..10]),
        content,
        template_driver,
        sha256,
    })
}

/// A `file:` or `environment:` secret: where its value is read from (only at plan and apply).
pub(super) fn secret(input: &Input, key: &str, entry: &Value) -> Result<SecretDef, ComposeError> {
    let err = |message: String| ComposeError::new(input.file, format!("secrets.{key}: {message}"));
    let source = match (entry["file"].as_str(), entry["environment"].as_str()) {
        (Some(file), None) => ValueSource::File(input.dir.join(file)),
        (None, Some(var)) => ValueSource::Env(var.to_string()),
        _ => {
            return Err(err(
                "needs exactly one of `file:`, `environment:` or `external: true`".into(),
            ));
        }
    };
    if input.stack_secrets.iter().any(|s| s == key) {
        return Err(err(format!(
            "the stack file's [secrets] defines {key:?} too: name it once"
        )));
    }
    if !crate::model::valid_object_name(key) {
        return Err(err("infra keeps file secrets in Parameter Store under their key, which must start with a lowercase letter and hold only a-z, 0-9, - and _ (at most 40)".into()));
    }
    Ok(SecretDef {
        key: key.to_string(),
        source,
    })
}

pub(super) fn network(key: &str, entry: &Value, stack: &str) -> Result<NetworkDef, String> {
    let path = format!("networks.{key}");
    let map = |v: &Value| match v {
        Value::Object(m) => string_map(m)
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect(),
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    let driver = entry["driver"].as_str().unwrap_or("overlay").to_string();
    if driver != "overlay" {
        return Err(format!(
            "{path}: driver {driver:?}: infra creates overlay networks (a Swarm stack's services span nodes); declare others `external: true`"
        ));
    }
    let flag = |name: &str| entry[name].as_bool().unwrap_or(false);
    let subnets = entry["ipam"]["config"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["subnet"].as_str().map(str::to_string))
        .collect();
    let mut def = NetworkDef {
        key: key.to_string(),
        name: entry["name"]
            .as_str()
            .map_or_else(|| format!("{stack}_{key}"), str::to_string),
        driver,
        attachable: flag("attachable"),
        internal: flag("internal"),
        options: map(&entry["driver_opts"]),
        labels: map(&entry["labels"]),
        subnets,
        sha256: String::new(),
    };
    def.sha256 = crate::model::resources::sha256_hex(
        &serde_json::json!([
            def.name,
            def.driver,
            def.attachable,
            def.internal,
            def.options,
            def.labels,
            def.subnets
        ])
        .to_string(),
    );
    Ok(def)
}
