//! A compose project as the plan's inputs: each service rendered into the one document
//! `docker stack deploy` gets for it, pointing at the Swarm names of the stack's current
//! secrets and configs, with the addresses of the plan objects it uses; and its configs.

use std::collections::BTreeMap;

use super::{Names, Project};
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
            let (definition, hash) = doc.document(project, &names, &labels);
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
