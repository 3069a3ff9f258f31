//! One service of a compose file, and the document `docker stack deploy` gets for it: the service
//! alone, with the networks, configs, secrets and volumes it uses pointed at their Swarm names,
//! so that each service is its own plan object while all stay in one stack namespace (short
//! names such as `db` and `tasks.agent` resolve across them).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// The service label holding the hash of the definition infra deployed.
pub const LABEL_DEFINITION: &str = "infra.definition-sha256";

/// One service, as the compose file defines it (`env_file` already read into `environment`).
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceDoc {
    pub name: String,
    pub definition: Value,
    /// The keys of the networks it joins (`default` when it names none), configs, secrets and
    /// named volumes it uses.
    pub networks: Vec<String>,
    pub configs: Vec<String>,
    pub secrets: Vec<String>,
    pub volumes: Vec<String>,
}

impl ServiceDoc {
    pub fn new(name: String, definition: Value) -> Self {
        let keys = |field: &str| -> Vec<String> {
            match &definition[field] {
                Value::Array(list) => list
                    .iter()
                    .filter_map(|e| e.as_str().or_else(|| e["source"].as_str()))
                    .map(str::to_string)
                    .collect(),
                Value::Object(m) => m.keys().cloned().collect(),
                _ => Vec::new(),
            }
        };
        let mut networks = keys("networks");
        if networks.is_empty() {
            networks.push("default".into());
        }
        let volumes = definition["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(named_volume)
            .collect();
        ServiceDoc {
            configs: keys("configs"),
            secrets: keys("secrets"),
            networks,
            volumes,
            name,
            definition,
        }
    }

    pub fn image(&self) -> String {
        self.definition["image"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// `global`, `replicated N`, `replicated-job` or `global-job`.
    pub fn mode(&self) -> String {
        let deploy = &self.definition["deploy"];
        match deploy["mode"].as_str() {
            Some(m @ ("global" | "replicated-job" | "global-job")) => m.into(),
            _ => format!("replicated {}", number(&deploy["replicas"]).unwrap_or(1)),
        }
    }

    fn is_job(&self) -> bool {
        self.mode().ends_with("-job")
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
                    number(&p["published"]).unwrap_or(0),
                    number(&p["target"]).unwrap_or(0),
                    p["protocol"].as_str().unwrap_or("tcp"),
                    p["mode"].as_str().unwrap_or("ingress"),
                ),
                other => {
                    // `[host_ip:][published:]target[/protocol]`; without a published port the
                    // Swarm picks one (the spec keeps 0).
                    let short = other
                        .as_str()
                        .map_or_else(|| other.to_string(), str::to_string);
                    let (ports, protocol) = short.split_once('/').unwrap_or((&short, "tcp"));
                    let parts: Vec<&str> = ports.split(':').collect();
                    let (published, target) = match parts[..] {
                        [target] => ("0", target),
                        [.., published, target] => (published, target),
                        [] => ("0", "0"),
                    };
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

    /// What is legal but will not do what the author expects.
    pub fn warnings(&self, file: &str) -> Vec<String> {
        let at = format!("{file}: services.{}", self.name);
        let mut out = Vec::new();
        for v in self.definition["volumes"].as_array().into_iter().flatten() {
            let source = match v {
                Value::String(s) => s.split(':').next().filter(|_| s.contains(':')),
                _ if v["type"] == "bind" => v["source"].as_str(),
                _ => None,
            };
            if let Some(s) = source.filter(|s| {
                !s.starts_with('/') && (s.starts_with('.') || s.starts_with('~') || v.is_object())
            }) {
                out.push(format!(
                    "{at}.volumes: bind mount {s:?} is relative: docker stack deploy resolves it on the manager, and the path must exist on every node the task can run on; use an absolute path that the nodes' user-data creates"
                ));
            }
        }
        let deploy = &self.definition["deploy"];
        let host_ports = self.ports().iter().any(|p| p.ends_with("(host)"));
        if deploy["update_config"]["order"] == "start-first" && host_ports {
            out.push(format!(
                "{at}: update order start-first with a host-mode port cannot work: the new task cannot bind the port while the old one holds it on the same node; use stop-first"
            ));
        }
        if self.is_job() {
            for key in ["update_config", "rollback_config"] {
                if !deploy[key].is_null() {
                    out.push(format!(
                        "{at}.deploy.{key}: a job ({}) runs to completion and is never rolled; the setting has no effect",
                        self.mode()
                    ));
                }
            }
        }
        out
    }
}

pub fn port_text(published: u64, target: u64, protocol: &str, mode: &str) -> String {
    format!("{published}:{target}/{protocol} ({mode})")
}

/// A number, also when interpolation left it a string (`replicas: ${N}`): Docker converts
/// those (docker/cli `interpolateTypeCastMapping`).
fn number(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.trim().parse().ok())
}

/// `data:/var/lib/x` → `data`; a path (`/srv`, `./x`, `~/x`) or an anonymous volume → none.
fn named_volume(v: &Value) -> Option<String> {
    let source = match v {
        Value::String(s) => s.split_once(':')?.0,
        _ if v["type"] == "volume" => v["source"].as_str()?,
        _ => return None,
    };
    (!source.is_empty() && !source.starts_with(['/', '.', '~'])).then(|| source.to_string())
}

/// A mapping's values as the strings Go's `fmt.Sprint` makes of them (`true`, `18`, `1.1`);
/// `null` stays none.
pub fn string_map(m: &Map<String, Value>) -> BTreeMap<String, Option<String>> {
    m.iter()
        .map(|(k, v)| {
            let s = match v {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            };
            (k.clone(), s)
        })
        .collect()
}

/// `$` → `$$` in every string value (keys are never interpolated).
pub(super) fn escape_dollars(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('$') => *s = s.replace('$', "$$"),
        Value::Array(items) => items.iter_mut().for_each(escape_dollars),
        Value::Object(m) => m.values_mut().for_each(escape_dollars),
        _ => {}
    }
}

/// Adds service labels (`deploy.labels`, a map or a `k=v` list in compose).
pub(super) fn set_labels(definition: &mut Value, labels: &BTreeMap<String, String>) {
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
