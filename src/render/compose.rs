//! Services as `docker stack deploy` takes them: the stack's `[services]` rendered through
//! templates/stack.yml.tera (or the user's own compose file), split into one compose document
//! per service, so the plan shows and apply deploys each service on its own. Pure.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use thiserror::Error;

use crate::model::Stack;

const STACK_YML: &str = include_str!("../../templates/stack.yml.tera");

/// The service label holding the hash of the definition infra deployed.
pub const LABEL_DEFINITION: &str = "infra.definition-sha256";

#[derive(Debug, Error)]
pub enum ComposeError {
    #[error("rendering templates/stack.yml.tera: {0}")]
    Template(#[from] tera::Error),
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

/// One service, as the compose file defines it.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceDoc {
    pub name: String,
    pub definition: Value,
    /// The top-level networks, volumes and configs of the file (shared by its services).
    shared: Map<String, Value>,
    /// Top-level secrets the file itself defines (not the stack's).
    own_secrets: Map<String, Value>,
}

/// The compose text of the stack: the user's file, or `[services]` rendered.
pub fn compose_text(stack: &Stack) -> Result<String, ComposeError> {
    if let Some(c) = &stack.apps.compose {
        return Ok(c.text.clone());
    }
    let mut ctx = tera::Context::new();
    ctx.insert("stack", &stack.name);
    ctx.insert("services", &stack.apps.services);
    Ok(tera::Tera::one_off(STACK_YML, &ctx, false)?)
}

/// Splits a compose file into its services.
pub fn services(text: &str, file: &str) -> Result<Vec<ServiceDoc>, ComposeError> {
    let invalid = |message: String| ComposeError::Invalid {
        file: file.to_string(),
        message,
    };
    let doc: Value =
        serde_yaml_ng::from_str(text).map_err(|e| invalid(format!("not valid YAML: {e}")))?;
    let Value::Object(mut top) = doc else {
        return Err(invalid("is not a mapping of compose keys".into()));
    };
    let services = match top.remove("services") {
        Some(Value::Object(s)) => s,
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err(invalid("`services` is not a mapping".into())),
    };
    let own_secrets = match top.remove("secrets") {
        Some(Value::Object(s)) => s,
        _ => Map::new(),
    };
    let shared: Map<String, Value> = top
        .into_iter()
        .filter(|(k, _)| ["networks", "volumes", "configs"].contains(&k.as_str()))
        .collect();
    services
        .into_iter()
        .map(|(name, definition)| {
            if !definition.is_object() {
                return Err(invalid(format!("service {name} is not a mapping")));
            }
            if definition.get("image").and_then(Value::as_str).is_none() {
                return Err(invalid(format!("service {name} names no image")));
            }
            Ok(ServiceDoc {
                name,
                definition,
                shared: shared.clone(),
                own_secrets: own_secrets.clone(),
            })
        })
        .collect()
}

impl ServiceDoc {
    pub fn image(&self) -> String {
        self.definition["image"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// `global`, or the replica count of a replicated service.
    pub fn mode(&self) -> String {
        let deploy = &self.definition["deploy"];
        match deploy["mode"].as_str() {
            Some("global") => "global".into(),
            _ => format!("replicated {}", deploy["replicas"].as_u64().unwrap_or(1)),
        }
    }

    /// Published ports as `published:target/protocol (mode)`.
    pub fn ports(&self) -> Vec<String> {
        let Some(ports) = self.definition["ports"].as_array() else {
            return vec![];
        };
        let mut out: Vec<String> = ports
            .iter()
            .map(|p| match p {
                Value::Object(_) => port_text(
                    p["published"].as_u64().unwrap_or(0),
                    p["target"].as_u64().unwrap_or(0),
                    p["protocol"].as_str().unwrap_or("tcp"),
                    p["mode"].as_str().unwrap_or("ingress"),
                ),
                other => {
                    let short = other
                        .as_str()
                        .map_or_else(|| other.to_string(), str::to_string);
                    let (ports, protocol) = short.split_once('/').unwrap_or((&short, "tcp"));
                    let (published, target) = ports.rsplit_once(':').unwrap_or((ports, ports));
                    format!("{published}:{target}/{protocol} (ingress)")
                }
            })
            .collect();
        out.sort();
        out
    }

    /// `deploy.placement.constraints`.
    pub fn placement(&self) -> Vec<String> {
        self.definition["deploy"]["placement"]["constraints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect()
    }

    /// The secrets the service mounts, by the name the file uses.
    pub fn secrets(&self) -> Vec<String> {
        let Some(list) = self.definition["secrets"].as_array() else {
            return vec![];
        };
        list.iter()
            .filter_map(|s| s.as_str().or_else(|| s["source"].as_str()))
            .map(str::to_string)
            .collect()
    }

    /// The document to deploy: this service alone, the stack's secrets it uses pointed at their
    /// Swarm secrets (`swarm_names`: name in the file → Swarm secret name), and infra's labels.
    /// Returns it with the hash of its definition (taken before the hash label is added).
    pub fn document(
        &self,
        swarm_names: &BTreeMap<String, String>,
        labels: &BTreeMap<String, String>,
    ) -> (Value, String) {
        let mut secrets = Map::new();
        for name in self.secrets() {
            let entry = match swarm_names.get(&name) {
                Some(swarm) => json!({ "external": true, "name": swarm }),
                None => self.own_secrets.get(&name).cloned().unwrap_or(Value::Null),
            };
            secrets.insert(name, entry);
        }
        let mut definition = self.definition.clone();
        set_labels(&mut definition, labels);
        let mut doc = Map::new();
        doc.insert("version".into(), json!("3.8"));
        doc.insert("services".into(), json!({ self.name.clone(): definition }));
        if !secrets.is_empty() {
            doc.insert("secrets".into(), Value::Object(secrets));
        }
        doc.extend(self.shared.clone());
        let mut doc = Value::Object(doc);
        let hash = crate::model::resources::sha256_hex(&doc.to_string());
        let with_hash = BTreeMap::from([(LABEL_DEFINITION.to_string(), hash.clone())]);
        set_labels(&mut doc["services"][&self.name], &with_hash);
        (doc, hash)
    }
}

pub fn port_text(published: u64, target: u64, protocol: &str, mode: &str) -> String {
    format!("{published}:{target}/{protocol} ({mode})")
}

/// Adds service labels (`deploy.labels`, a map or a `k=v` list in compose) .
fn set_labels(definition: &mut Value, labels: &BTreeMap<String, String>) {
    let deploy = definition
        .as_object_mut()
        .expect("services are mappings")
        .entry("deploy")
        .or_insert_with(|| json!({}));
    if !deploy.is_object() {
        *deploy = json!({});
    }
    let existing = deploy["labels"].take();
    let mut map = match existing {
        Value::Object(m) => m,
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_string(), json!(v))
            })
            .collect(),
        _ => Map::new(),
    };
    for (k, v) in labels {
        map.insert(k.clone(), json!(v));
    }
    deploy["labels"] = Value::Object(map);
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
version: "3.8"
services:
  web:
    image: "demo:v1"
    ports: ["8080:80"]
    secrets: [greeting, { source: tls, target: cert }]
    deploy: { labels: ["team=web"], replicas: 3 }
  worker:
    image: "demo:v1"
    deploy: { mode: global }
networks: { back: {} }
secrets:
  tls: { external: true }
"#;

    #[test]
    fn splits_services_and_points_secrets_at_swarm_secrets() {
        let docs = services(FILE, "compose.yml").unwrap();
        assert_eq!(docs.len(), 2);
        let web = &docs[0];
        assert_eq!(
            (web.image(), web.mode(), web.ports(), web.secrets()),
            (
                "demo:v1".to_string(),
                "replicated 3".to_string(),
                vec!["8080:80/tcp (ingress)".to_string()],
                vec!["greeting".to_string(), "tls".to_string()]
            )
        );
        assert_eq!(docs[1].mode(), "global");
        let names = BTreeMap::from([("greeting".to_string(), "greeting_0123456789".to_string())]);
        let labels =
            BTreeMap::from([("infra.address".to_string(), "swarm.service.web".to_string())]);
        let (doc, hash) = web.document(&names, &labels);
        assert_eq!(doc["secrets"]["greeting"]["name"], "greeting_0123456789");
        assert_eq!(doc["secrets"]["tls"]["external"], true);
        assert_eq!(doc["networks"]["back"], json!({}));
        let deploy_labels = &doc["services"]["web"]["deploy"]["labels"];
        assert_eq!(deploy_labels["team"], "web");
        assert_eq!(deploy_labels[LABEL_DEFINITION], hash.as_str());
        // Another secret value is another definition.
        let other = BTreeMap::from([("greeting".to_string(), "greeting_abcdef0123".to_string())]);
        assert_ne!(web.document(&other, &labels).1, hash);
    }

    #[test]
    fn errors_name_the_file() {
        let e = services("services: [1]", "mine.yml").unwrap_err();
        assert_eq!(e.to_string(), "mine.yml: `services` is not a mapping");
        let e = services("services: { a: { ports: [] } }", "mine.yml").unwrap_err();
        assert!(e.to_string().contains("service a names no image"));
    }
}
