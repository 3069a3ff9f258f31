//! A compose project as the plan's inputs: each service rendered into the one document
//! `docker stack deploy` gets for it, pointing at the Swarm names of the stack's current
//! secrets and configs, with the addresses of the plan objects it uses; and its configs.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::project::Kind;
use super::service::{escape_dollars, set_labels};
use super::{LABEL_DEFINITION, Project, ServiceDoc};
use crate::model::resources::{
    LABEL_ADDRESS, SecretInput, ServiceInput, config_address, network_address, service_address,
    swarm_secret_address, swarm_secret_name,
};
use crate::model::{Address, SwarmConfigSpec};

/// The services of `project`, given the stack's secrets (their Swarm names follow their values).
pub fn service_inputs(project: &Project, secrets: &[SecretInput]) -> Vec<ServiceInput> {
    let names = Names {
        secrets: secrets
            .iter()
            .map(|s| (s.name.clone(), swarm_secret_name(&s.name, &s.value_hmac)))
            .collect(),
        configs: project
            .configs
            .iter()
            .map(|c| (c.key.clone(), c.name.clone()))
            .collect(),
    };
    // External secrets, configs and networks are the file's to name, not plan objects.
    let ours = |keys: &[String], address: &dyn Fn(&str) -> Option<Address>| {
        let mut list: Vec<Address> = keys.iter().filter_map(|k| address(k)).collect();
        list.sort();
        list
    };
    project
        .services
        .iter()
        .map(|doc| {
            let address = service_address(&doc.name);
            let labels = BTreeMap::from([(LABEL_ADDRESS.to_string(), address.to_string())]);
            let (definition, hash) = document(doc, project, &names, &labels);
            ServiceInput {
                name: doc.name.clone(),
                image: doc.image(),
                mode: doc.mode(),
                ports: doc.ports(),
                placement: doc.placement(),
                secrets: ours(&doc.secrets, &|k| {
                    names.secrets.get(k).map(|n| swarm_secret_address(n))
                }),
                networks: ours(&doc.networks, &|k| {
                    project
                        .networks
                        .iter()
                        .any(|n| n.key == k)
                        .then(|| network_address(k))
                }),
                configs: ours(&doc.configs, &|k| {
                    names.configs.get(k).map(|n| config_address(n))
                }),
                definition: definition.to_string(),
                definition_sha256: hash,
            }
        })
        .collect()
}

/// The configs infra creates for the project (read on the user's side, named by content).
pub fn config_specs(project: &Project) -> Vec<SwarmConfigSpec> {
    project
        .configs
        .iter()
        .map(|c| SwarmConfigSpec {
            name: c.name.clone(),
            content_sha256: c.sha256.clone(),
            template_driver: c.template_driver.clone(),
            content: c.content.clone(),
        })
        .collect()
}

/// Swarm names of the secrets and configs infra creates, by their key in the file.
#[derive(Debug, Default)]
pub struct Names {
    pub secrets: BTreeMap<String, String>,
    pub configs: BTreeMap<String, String>,
}

/// The document to deploy for `service`: it alone, everything it uses pointed at its Swarm name,
/// infra's `labels` added, every `$` doubled (Docker interpolates again on the manager).
/// Returns it with the hash of its definition (taken before the hash label is added).
pub fn document(
    service: &ServiceDoc,
    project: &Project,
    names: &Names,
    labels: &BTreeMap<String, String>,
) -> (Value, String) {
    let external = |kind: Kind, key: &str| {
        project
            .externals
            .iter()
            .find(|e| e.kind == kind && e.key == key)
            .map(|e| e.name.clone())
    };
    // Each key used, pointed at the Swarm name of infra's object or the external one.
    let refer = |keys: &[String], kind: Kind, ours: &dyn Fn(&str) -> Option<String>| {
        keys.iter()
            .map(|key| {
                let name = ours(key).or_else(|| external(kind, key));
                (key.clone(), json!({ "external": true, "name": name }))
            })
            .collect::<Map<String, Value>>()
    };
    let networks = refer(&service.networks, Kind::Network, &|key| {
        let network = project.networks.iter().find(|n| n.key == key)?;
        Some(network.name.clone())
    });
    let configs = refer(&service.configs, Kind::Config, &|key| {
        names.configs.get(key).cloned()
    });
    let secrets = refer(&service.secrets, Kind::Secret, &|key| {
        names.secrets.get(key).cloned()
    });
    let volumes: Map<String, Value> = service
        .volumes
        .iter()
        .map(|v| {
            (
                v.clone(),
                project.volumes.get(v).cloned().unwrap_or(Value::Null),
            )
        })
        .collect();
    let mut definition = service.definition.clone();
    set_labels(&mut definition, labels);
    let mut doc = Map::new();
    doc.insert(
        "services".into(),
        json!({ service.name.clone(): definition }),
    );
    for (section, entries) in [
        ("networks", networks),
        ("volumes", volumes),
        ("configs", configs),
        ("secrets", secrets),
    ] {
        if !entries.is_empty() {
            doc.insert(section.into(), Value::Object(entries));
        }
    }
    let mut doc = Value::Object(doc);
    escape_dollars(&mut doc);
    let hash = crate::model::resources::sha256_hex(&doc.to_string());
    let with_hash = BTreeMap::from([(LABEL_DEFINITION.to_string(), hash.clone())]);
    set_labels(&mut doc["services"][&service.name], &with_hash);
    (doc, hash)
}
