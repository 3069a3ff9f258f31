//! A compose file as a stack: its services, the networks and configs infra creates for them, the
//! secrets read on the user's side, and what must already exist on the Swarm. Follows docker/cli's
//! stack loader (`cli/compose/loader`, `cli/compose/convert`) and the compose file reference
//! <https://docs.docker.com/reference/compose-file/>.
//!
//! The top-level entries (configs, secrets, networks, `external` ones) are read in [`entries`].

mod entries;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use self::entries::{config, external, network, secret};
use super::service::{ServiceDoc, string_map};
use super::{ComposeError, env_file, yaml};
use crate::model::{ValueSource, Vars};

/// What `load` reads.
pub struct Input<'a> {
    /// The file as the user named it, for messages.
    pub file: &'a str,
    pub text: &'a str,
    /// `file:` and `env_file:` paths are relative to it (the compose file's directory).
    pub dir: &'a Path,
    /// Whether values are interpolated (`false` for the file infra renders from `[services]`,
    /// whose values are literal).
    pub interpolate: bool,
    /// The variables: `--var`, then the environment, then the stack's `[vars]`.
    pub vars: &'a Vars,
    pub stack: &'a str,
    /// The stack file's `[secrets]`: services may use them without declaring them.
    pub stack_secrets: &'a [String],
    pub read: &'a dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
}

/// The compose file as infra deploys it.
#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    pub services: Vec<ServiceDoc>,
    /// Networks infra creates: those a service uses that are not `external`, the implicit
    /// `default` included.
    pub networks: Vec<NetworkDef>,
    /// `file:` configs, created by infra under a content-hashed name.
    pub configs: Vec<ConfigDef>,
    /// `file:` and `environment:` secrets: they become stack secrets.
    pub secrets: Vec<SecretDef>,
    /// What the file expects on the Swarm already (`external: true`).
    pub externals: Vec<External>,
    /// Things worth telling the user; they never stop a run.
    pub warnings: Vec<String>,
    /// The top-level named volumes, for the documents.
    pub(super) volumes: Map<String, Value>,
}

impl Project {
    /// Sends the logs of every service that sets no `logging` of its own to CloudWatch Logs:
    /// Docker's `awslogs` driver, into `group` in `region`, a stream per container named after
    /// it (`<stack>_<service>.<slot>.<task id>`, the driver's `tag`), which `infra logs` reads.
    /// https://docs.docker.com/engine/logging/drivers/awslogs/
    pub fn log_to_cloudwatch(&mut self, group: &str, region: &str) {
        let logging = serde_json::json!({
            "driver": "awslogs",
            "options": {
                "awslogs-group": group,
                "awslogs-region": region,
                "tag": "{{.Name}}",
            }
        });
        for s in &mut self.services {
            if let Value::Object(definition) = &mut s.definition
                && !definition.contains_key("logging")
            {
                definition.insert("logging".into(), logging.clone());
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Network,
    Config,
    Secret,
}

impl Kind {
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Network => "network",
            Kind::Config => "config",
            Kind::Secret => "secret",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct External {
    pub kind: Kind,
    /// The key in the compose file.
    pub key: String,
    /// The name on the Swarm (`name:`, else the key itself, unprefixed, as Docker does).
    pub name: String,
}

/// An overlay network infra creates (`docker network create`); Docker cannot change one in
/// place, so any change of its definition replaces it.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkDef {
    pub key: String,
    /// `<stack>_<key>`, or the file's `name:`.
    pub name: String,
    pub driver: String,
    pub attachable: bool,
    pub internal: bool,
    /// `driver_opts`: `encrypted` asks for IPsec between nodes.
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// `ipam.config[].subnet`.
    pub subnets: Vec<String>,
    pub sha256: String,
}

impl NetworkDef {
    pub fn encrypted(&self) -> bool {
        self.options.contains_key("encrypted")
    }
}

/// A config read from a file on the user's side.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigDef {
    pub key: String,
    /// `<name or key>_<10 hex of the content hash>`: new content is a new config.
    pub name: String,
    pub content: String,
    /// `golang` to have Docker render the config per task.
    pub template_driver: Option<String>,
    pub sha256: String,
}

/// A secret the file reads from a file or an environment variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretDef {
    pub key: String,
    pub source: ValueSource,
}

const TOP_LEVEL: &[&str] = &[
    "version", "name", "services", "networks", "volumes", "configs", "secrets",
];

/// Keys `docker stack deploy` ignores (docker/cli `loader.GetUnsupportedProperties`, plus
/// `depends_on` and `container_name`, which Swarm has no use for).
const IGNORED: &[&str] = &[
    "build",
    "cgroup_parent",
    "cgroupns_mode",
    "container_name",
    "depends_on",
    "devices",
    "domainname",
    "external_links",
    "ipc",
    "links",
    "mac_address",
    "network_mode",
    "pid",
    "privileged",
    "restart",
    "security_opt",
    "shm_size",
    "userns_mode",
];

/// Reads a compose file. Every error names the file and where (line and column, or the dotted
/// path of the value); nothing is touched on the way.
pub fn load(input: &Input) -> Result<Project, ComposeError> {
    let err = |message: String| ComposeError::new(input.file, message);
    let vars = input.interpolate.then_some(input.vars);
    let doc = yaml::parse(input.text, input.file, vars)?;
    let Value::Object(mut top) = doc else {
        return Err(err("is not a mapping of compose keys".into()));
    };
    let mut warnings = Vec::new();
    if input.interpolate {
        warnings.extend(unset_warning(input)?);
    }
    check_top_level(input, &top)?;
    let services = section(input, &mut top, "services")?;
    let sections = Sections {
        networks: section(input, &mut top, "networks")?,
        volumes: section(input, &mut top, "volumes")?,
        configs: section(input, &mut top, "configs")?,
        secrets: section(input, &mut top, "secrets")?,
    };

    let mut externals = Vec::new();
    let mut config_defs = Vec::new();
    for (key, entry) in &sections.configs {
        match external(Kind::Config, key, entry) {
            Some(e) => externals.push(e),
            None => config_defs.push(config(input, key, entry)?),
        }
    }
    let mut secret_defs = Vec::new();
    for (key, entry) in &sections.secrets {
        match external(Kind::Secret, key, entry) {
            Some(e) => externals.push(e),
            None => secret_defs.push(secret(input, key, entry)?),
        }
    }
    let docs = service_docs(input, services, &sections, &mut warnings)?;
    let network_defs = used_networks(input, &docs, &sections.networks, &mut externals)?;
    Ok(Project {
        services: docs,
        networks: network_defs,
        configs: config_defs,
        secrets: secret_defs,
        externals,
        warnings,
        volumes: sections.volumes,
    })
}

/// The top-level sections a service's references are checked against.
struct Sections {
    networks: Map<String, Value>,
    volumes: Map<String, Value>,
    configs: Map<String, Value>,
    secrets: Map<String, Value>,
}

/// Fails on a top-level key a compose file does not hold (`x-` extension fields are fine).
fn check_top_level(input: &Input, top: &Map<String, Value>) -> Result<(), ComposeError> {
    if let Some(key) = top
        .keys()
        .find(|k| !TOP_LEVEL.contains(&k.as_str()) && !k.starts_with("x-"))
    {
        return Err(ComposeError::new(
            input.file,
            format!(
                "unknown top-level key {key:?} (a compose file holds {}, and x- extension fields)",
                TOP_LEVEL.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Takes the top-level section `name` out of `top`: a mapping, empty when absent or null.
fn section(
    input: &Input,
    top: &mut Map<String, Value>,
    name: &str,
) -> Result<Map<String, Value>, ComposeError> {
    match top.remove(name) {
        Some(Value::Object(m)) => Ok(m),
        None | Some(Value::Null) => Ok(Map::new()),
        Some(_) => Err(ComposeError::new(
            input.file,
            format!("`{name}` is not a mapping"),
        )),
    }
}

/// Each service as a document, its warnings added to `warnings`, then one warning naming the
/// keys `docker stack deploy` ignores and the services that set them.
fn service_docs(
    input: &Input,
    services: Map<String, Value>,
    sections: &Sections,
    warnings: &mut Vec<String>,
) -> Result<Vec<ServiceDoc>, ComposeError> {
    let mut docs = Vec::new();
    let mut ignored: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, definition) in services {
        let doc = service_doc(input, name, definition, sections, &mut ignored)?;
        warnings.extend(doc.warnings(input.file));
        docs.push(doc);
    }
    if !ignored.is_empty() {
        let keys: Vec<String> = ignored
            .iter()
            .map(|(k, s)| format!("`{k}` ({})", s.join(", ")))
            .collect();
        warnings.push(format!(
            "{}: docker stack deploy ignores {}",
            input.file,
            keys.join(", ")
        ));
    }
    Ok(docs)
}

/// One service: a valid name, a mapping with an image, its environment resolved, and every
/// network, config, secret and volume it uses declared. The ignored keys it sets are noted in
/// `ignored`.
fn service_doc(
    input: &Input,
    name: String,
    definition: Value,
    sections: &Sections,
    ignored: &mut BTreeMap<&'static str, Vec<String>>,
) -> Result<ServiceDoc, ComposeError> {
    let err = |message: String| ComposeError::new(input.file, message);
    let path = format!("services.{name}");
    check_name(input, "service", &name)?;
    let Value::Object(mut definition) = definition else {
        return Err(err(format!("{path} is not a mapping")));
    };
    if definition.get("image").and_then(Value::as_str).is_none() {
        return Err(err(format!(
            "{path}: names no image (docker stack deploy does not build)"
        )));
    }
    for key in IGNORED {
        if definition.contains_key(*key) {
            ignored.entry(key).or_default().push(name.clone());
        }
    }
    resolve_environment(&mut definition, &path, input)?;
    let doc = ServiceDoc::new(name.clone(), Value::Object(definition));
    let default = ["default".to_string()];
    let s = sections;
    declared(
        input,
        &path,
        &doc.networks,
        &s.networks,
        "network",
        &default,
    )?;
    declared(input, &path, &doc.configs, &s.configs, "config", &[])?;
    declared(
        input,
        &path,
        &doc.secrets,
        &s.secrets,
        "secret",
        input.stack_secrets,
    )?;
    declared(input, &path, &doc.volumes, &s.volumes, "volume", &[])?;
    Ok(doc)
}

/// What a service uses must be declared (docker/cli refuses it otherwise): in the top-level
/// `section`, or in `also`.
fn declared(
    input: &Input,
    path: &str,
    used: &[String],
    section: &Map<String, Value>,
    what: &str,
    also: &[String],
) -> Result<(), ComposeError> {
    let missing = used
        .iter()
        .find(|k| !section.contains_key(*k) && !also.contains(k));
    match missing {
        Some(k) => Err(ComposeError::new(
            input.file,
            format!(
                "{path}.{what}s: {what} {k:?} is not declared in the top-level {what}s{}",
                if what == "secret" {
                    " nor in the stack file's [secrets]"
                } else {
                    ""
                }
            ),
        )),
        None => Ok(()),
    }
}

/// The networks the services use, in name order: an `external` one added to `externals`, any
/// other defined for infra to create.
fn used_networks(
    input: &Input,
    docs: &[ServiceDoc],
    networks: &Map<String, Value>,
    externals: &mut Vec<External>,
) -> Result<Vec<NetworkDef>, ComposeError> {
    let used: BTreeSet<&String> = docs.iter().flat_map(|d| &d.networks).collect();
    let mut network_defs = Vec::new();
    for key in used {
        let entry = networks.get(key).cloned().unwrap_or(Value::Null);
        match external(Kind::Network, key, &entry) {
            Some(e) => externals.push(e),
            None => {
                let def = network(key, &entry, input.stack)
                    .map_err(|message| ComposeError::new(input.file, message))?;
                check_name(input, &format!("networks.{key}: network"), &def.name)?;
                network_defs.push(def);
            }
        }
    }
    Ok(network_defs)
}

/// Names that become Docker object names (services, networks, configs): a letter or digit,
/// then letters, digits, `_`, `.`, `-` (Docker's own rule for object names).
fn check_name(input: &Input, what: &str, name: &str) -> Result<(), ComposeError> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        return Ok(());
    }
    Err(ComposeError::new(
        input.file,
        format!(
            "{what} {name:?} is not a valid Docker name: a letter or digit, then letters, digits, _ . - (at most 64)"
        ),
    ))
}

/// One warning naming the variables referenced without a default that are not set.
fn unset_warning(input: &Input) -> Result<Option<String>, ComposeError> {
    let raw = yaml::parse(input.text, input.file, None)?;
    let unset = yaml::unset_variables(&raw, input.vars);
    if unset.is_empty() {
        return Ok(None);
    }
    let names: Vec<String> = unset.iter().map(|v| format!("${v}")).collect();
    Ok(Some(format!(
        "{}: {} {} not set: Compose substitutes an empty string (give a default with ${{VAR:-default}}, or require it with ${{VAR:?message}})",
        input.file,
        names.join(", "),
        if names.len() == 1 { "is" } else { "are" }
    )))
}

/// A file the compose file names (relative to its directory), as text.
fn read_text(input: &Input, path: &str, what: &str) -> Result<(PathBuf, String), ComposeError> {
    let err = |message: String| ComposeError::new(input.file, message);
    let full = input.dir.join(path);
    let bytes = (input.read)(&full)
        .map_err(|e| err(format!("{what}: cannot read {}: {e}", full.display())))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        err(format!(
            "{what}: {} is not UTF-8 text (infra passes configs and env files as text)",
            full.display()
        ))
    })?;
    Ok((full, text))
}

/// `env_file:` read here, then `environment:` over it, variables without a value taken from
/// `vars` (dropped when unset), as docker/cli's `resolveEnvironment` does on the client.
fn resolve_environment(
    definition: &mut Map<String, Value>,
    path: &str,
    input: &Input,
) -> Result<(), ComposeError> {
    let files: Vec<String> = match definition.remove("env_file") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(f)) => vec![f],
        Some(Value::Array(list)) => list
            .iter()
            .map(|f| {
                f.as_str()
                    .or_else(|| f["path"].as_str())
                    .map(str::to_string)
            })
            .collect::<Option<_>>()
            .ok_or_else(|| {
                ComposeError::new(input.file, format!("{path}.env_file: not a list of paths"))
            })?,
        Some(_) => {
            return Err(ComposeError::new(
                input.file,
                format!("{path}.env_file: not a path or a list of paths"),
            ));
        }
    };
    let mut env: Map<String, Value> = Map::new();
    for f in files {
        let (full, text) = read_text(input, &f, &format!("{path}.env_file"))?;
        let pairs = env_file::parse(&text, input.vars).map_err(|e| {
            ComposeError::new(
                input.file,
                format!("{path}.env_file {}: {e}", full.display()),
            )
        })?;
        for (k, v) in pairs {
            env.insert(k, Value::String(v));
        }
    }
    for (k, v) in environment(definition, input.vars) {
        env.insert(k, v);
    }
    if !env.is_empty() || definition.contains_key("environment") {
        definition.insert("environment".into(), Value::Object(env));
    }
    Ok(())
}

/// `environment:` as a map (from a map or a `KEY=value` list), values as strings the way Go's
/// `fmt.Sprint` writes them; a key without a value from `vars`, dropped when unset.
fn environment(definition: &Map<String, Value>, vars: &Vars) -> Vec<(String, Value)> {
    let pairs: Vec<(String, Option<String>)> = match definition.get("environment") {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (kv.to_string(), None),
            })
            .collect(),
        Some(Value::Object(m)) => string_map(m).into_iter().collect(),
        _ => Vec::new(),
    };
    pairs
        .into_iter()
        .filter_map(|(k, v)| {
            let v = v.or_else(|| vars.get(&k).cloned())?;
            Some((k, Value::String(v)))
        })
        .collect()
}
