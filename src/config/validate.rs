//! Checks the parsed file and builds the model; collects every error before giving up.

use std::ops::Range;
use std::path::Path;

use ipnet::Ipv4Net;
use toml::Spanned;

use super::schema::*;
use super::{ConfigError, ConfigErrors, Loaded, ReadFile, template};
use crate::model::*;

pub struct Validator<'a> {
    file: &'a str,
    source: &'a str,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
    vars: Vars,
    /// The variables `--var` or `INFRA_VAR_*` set.
    overridden: Vec<String>,
}

/// "infra-<name>-<port>" must fit ELBv2's 32-character name limit.
const MAX_NAME_LEN: usize = 20;

/// A stack name: 1 to 20 lowercase letters, digits or inner hyphens.
pub fn check_stack_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "stack name {s:?} must be 1 to {MAX_NAME_LEN} lowercase letters, digits or inner hyphens"
        ))
    }
}

impl<'a> Validator<'a> {
    pub fn new(file: &'a str, source: &'a str) -> Self {
        Validator {
            file,
            source,
            errors: Vec::new(),
            warnings: Vec::new(),
            vars: Vars::new(),
            overridden: Vec::new(),
        }
    }

    fn error(&mut self, span: Range<usize>, message: impl Into<String>, help: Option<&str>) {
        let e = ConfigError::new(
            self.file,
            self.source,
            span,
            message.into(),
            help.map(str::to_string),
        );
        self.errors.push(e);
    }

    fn warn(&mut self, span: Range<usize>, message: impl Into<String>, help: &str) {
        let w = ConfigError::new(
            self.file,
            self.source,
            span,
            message.into(),
            Some(help.to_string()),
        );
        self.warnings.push(w);
    }

    pub fn run(
        mut self,
        f: StackFile,
        overrides: &Vars,
        read_file: ReadFile,
    ) -> Result<Loaded, ConfigErrors> {
        self.vars = f
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.get_ref().clone()))
            .collect();
        for (key, value) in overrides {
            if !self.vars.contains_key(key) {
                let declared: Vec<_> = self.vars.keys().map(String::as_str).collect();
                let msg = format!(
                    "--var {key}: no such variable is declared in [vars] (declared: {})",
                    declared.join(", ")
                );
                self.error(
                    0..0,
                    msg,
                    Some("declare it in the stack file's [vars] table, with a default"),
                );
            }
            self.vars.insert(key.clone(), value.clone());
            self.overridden.push(key.clone());
        }

        let name = self.stack_name(super::default_name(Path::new(self.file)));
        let region = f.region.as_ref().map(|r| r.get_ref().clone());
        let network = self.network(f.network.get_ref(), f.network.span(), region.as_deref());
        let nodes = f.nodes.get_ref();
        let public_key = self.public_key(&nodes.public_key_file, read_file);
        let managers = self.pool(Role::Manager, Some(&nodes.managers), nodes, f.nodes.span());
        let workers = self.pool(Role::Worker, nodes.workers.as_ref(), nodes, f.nodes.span());
        let load_balancer = self.load_balancer(f.load_balancer.get_ref(), f.load_balancer.span());
        let state = self.state(f.state.as_ref(), &name, region.as_deref());
        let ssh = self.ssh(f.ssh.as_ref().map(|s| s.get_ref()));
        let swarm = f.swarm.as_ref().and_then(|s| s.enabled).unwrap_or(true);
        self.ssh_path(&f, swarm);
        let bastion = f
            .bastion
            .as_ref()
            .and_then(|b| self.bastion(&f, b, managers.as_ref()?));
        let apps = self.apps(&f, read_file);
        if let (Some(lb), true) = (&load_balancer, swarm) {
            self.drain_time(&f, lb);
        }

        if !self.errors.is_empty() {
            return Err(ConfigErrors {
                file: self.file.into(),
                errors: self.errors,
            });
        }
        let stack = Stack {
            name,
            region,
            network: network.expect("no errors"),
            managers: managers.expect("no errors"),
            workers: workers.expect("no errors"),
            public_key: public_key.expect("no errors"),
            load_balancer: load_balancer.expect("no errors"),
            state: state.expect("no errors"),
            ssh,
            bastion,
            swarm,
            apps: apps.expect("no errors"),
        };
        Ok(Loaded {
            stack,
            warnings: self.warnings,
        })
    }

    /// The stack's name is its file name: `stacks/prod.toml` is stack `prod`.
    /// The errors and warnings so far, for callers that check only part of a file.
    pub fn finish(self) -> Result<Vec<ConfigError>, ConfigErrors> {
        if self.errors.is_empty() {
            Ok(self.warnings)
        } else {
            Err(ConfigErrors {
                file: self.file.into(),
                errors: self.errors,
            })
        }
    }

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

    fn ssh(&mut self, ssh: Option<&SshFile>) -> SshSettings {
        let Some(s) = ssh else {
            return SshSettings::default();
        };
        let user = s.user.as_ref().map(|u| u.get_ref().clone());
        if let Some(u) = &s.user
            && (u.get_ref().is_empty() || u.get_ref().contains(char::is_whitespace))
        {
            self.error(
                u.span(),
                format!("ssh user {:?} is not a user name", u.get_ref()),
                None,
            );
        }
        if let Some(j) = &s.jump_host
            && (j.get_ref().is_empty() || j.get_ref().contains(char::is_whitespace))
        {
            self.error(
                j.span(),
                format!("jump_host {:?} is not [user@]host[:port]", j.get_ref()),
                None,
            );
        }
        let path =
            |p: &Option<Spanned<String>>| p.as_ref().map(|p| std::path::PathBuf::from(p.get_ref()));
        SshSettings {
            user,
            identity_file: path(&s.identity_file),
            jump_host: s.jump_host.as_ref().map(|j| j.get_ref().clone()),
            config_file: path(&s.config_file),
            ready_timeout_secs: s
                .ready_timeout
                .as_ref()
                .and_then(|t| self.duration(t))
                .map(|t| t.as_secs().max(1)),
            image_users: Default::default(),
        }
    }

    /// Where `key` is written in the table at `table`, else where the table starts: for errors
    /// about a key that may be absent.
    fn key_span(&self, key: &str, table: Range<usize>) -> Range<usize> {
        let rest = &self.source[table.start..];
        // The table's text runs to the next table header.
        let text = &rest[..rest[1..].find("\n[").map_or(rest.len(), |end| end + 1)];
        match text.find(&format!("\n{key}")) {
            Some(at) => table.start + at + 1..table.start + at + 1 + key.len(),
            None => table.start..table.start + text.find('\n').unwrap_or(text.len()),
        }
    }

    /// With the Swarm on, infra itself logs in to the nodes: something must let it in.
    fn ssh_path(&mut self, f: &StackFile, swarm: bool) {
        let network = f.network.get_ref();
        let admin = network.admin_cidrs.as_ref().is_some_and(|c| !c.is_empty());
        let jump = f
            .ssh
            .as_ref()
            .is_some_and(|s| s.get_ref().jump_host.is_some());
        if !swarm || admin || jump {
            return;
        }
        let at = self.key_span("admin_cidrs", f.network.span());
        self.error(
            at,
            "the Swarm is enabled but nothing lets infra reach the nodes over SSH: no admin_cidrs and no [ssh] jump_host",
            Some(
                "infra logs in to the nodes on port 22 to run the Swarm: add the address of the machine (or pipeline runner) \
                 that runs infra to [network] admin_cidrs, set [ssh] jump_host to a bastion, or set [swarm] enabled = false",
            ),
        );
    }

    /// `[bastion]`: reached from `admin_cidrs` (which then no longer reach the nodes); an
    /// `[ssh] jump_host` of your own is the other way, not both.
    fn bastion(
        &mut self,
        f: &StackFile,
        b: &Spanned<BastionFile>,
        managers: &NodePool,
    ) -> Option<NodePool> {
        let admin = f.network.get_ref().admin_cidrs.as_ref();
        if admin.is_none_or(|c| c.is_empty()) {
            self.error(
                b.span(),
                "[bastion] needs [network] admin_cidrs: the bastion's SSH port is open only to them",
                Some("add the address of the machine (or pipeline runner) that runs infra to admin_cidrs"),
            );
        }
        if let Some(jump) = f.ssh.as_ref().and_then(|s| s.get_ref().jump_host.as_ref()) {
            self.error(
                jump.span(),
                "[ssh] jump_host and [bastion] cannot both be used: infra jumps through the bastion it runs",
                Some("remove jump_host to use the bastion, or [bastion] to use your own"),
            );
        }
        let b = b.get_ref();
        let instance_type = match &b.instance_type {
            Some(t) => self.templated(t)?,
            None => "t3.micro".to_string(),
        };
        let ami = match &b.ami {
            Some(a) => self.ami(a)?,
            None => managers.ami.clone(),
        };
        Some(NodePool {
            role: Role::Bastion,
            count: 1,
            instance_type,
            ami,
            root_volume_gb: 8,
        })
    }

    fn stack_name(&mut self, s: String) -> String {
        if let Err(msg) = check_stack_name(&s) {
            self.error(
                0..0,
                msg.replacen(" must", " (the file name) must", 1),
                Some(
                    "rename the file: AWS load balancer and target group names are derived from it",
                ),
            );
        }
        s
    }

    fn cidr(&mut self, s: &Spanned<String>, what: &str) -> Option<Ipv4Net> {
        match s.get_ref().parse::<Ipv4Net>() {
            Ok(net) if net.trunc() == net => Some(net),
            Ok(net) => {
                let msg = format!(
                    "{what} {} has host bits set; did you mean {}?",
                    net,
                    net.trunc()
                );
                self.error(s.span(), msg, None);
                None
            }
            Err(_) => {
                let msg = format!("{what} {:?} is not an IPv4 CIDR block", s.get_ref());
                self.error(s.span(), msg, Some("write it like 10.0.0.0/16"));
                None
            }
        }
    }

    fn cidr_list(
        &mut self,
        list: &Option<Vec<Spanned<String>>>,
        what: &str,
        default: &[&str],
    ) -> Vec<Ipv4Net> {
        match list {
            Some(list) => list.iter().filter_map(|c| self.cidr(c, what)).collect(),
            None => default
                .iter()
                .map(|c| c.parse().expect("valid default"))
                .collect(),
        }
    }

    fn network(
        &mut self,
        n: &NetworkFile,
        span: Range<usize>,
        region: Option<&str>,
    ) -> Option<Network> {
        let cidr = self.cidr(&n.cidr, "network.cidr");
        if let Some(c) = cidr
            && !(16..=28).contains(&c.prefix_len())
        {
            self.error(
                n.cidr.span(),
                format!("VPC block {c} must have a prefix between /16 and /28"),
                None,
            );
        }
        let mut subnets: Vec<Subnet> = Vec::new();
        for s in n.subnets.get_ref() {
            let sub = s.get_ref();
            let zone = sub.zone.get_ref().clone();
            if let Some(region) = region
                && !zone.starts_with(region)
            {
                self.error(
                    sub.zone.span(),
                    format!("zone {zone:?} is not in region {region}"),
                    None,
                );
            }
            if subnets.iter().any(|o| o.zone == zone) {
                let help = "one public subnet per zone; list each zone once";
                self.error(
                    sub.zone.span(),
                    format!("zone {zone:?} has a subnet already"),
                    Some(help),
                );
            }
            let Some(net) = self.cidr(&sub.cidr, "subnet cidr") else {
                continue;
            };
            // Subnets are /16 to /28 (CreateSubnet); the load balancer needs a /27 at least
            // with 8 free addresses in each of its subnets ("Subnets for your Application Load
            // Balancer"), and every subnet here holds it.
            if !(16..=27).contains(&net.prefix_len()) {
                let why = if net.prefix_len() <= 28 && net.prefix_len() >= 16 {
                    "too small for the load balancer, which needs a /27 or larger with 8 free addresses in each subnet"
                } else {
                    "AWS subnets are /16 to /28"
                };
                self.error(
                    sub.cidr.span(),
                    format!("subnet {net} cannot be used: {why}"),
                    Some("use a /24, for instance"),
                );
                continue;
            }
            if let Some(vpc) = cidr
                && !vpc.contains(&net)
            {
                self.error(
                    sub.cidr.span(),
                    format!("subnet {net} is outside the VPC block {vpc}"),
                    None,
                );
                continue;
            }
            if let Some(o) = subnets
                .iter()
                .find(|o| o.cidr.contains(&net.network()) || net.contains(&o.cidr.network()))
            {
                let msg = format!("subnet {net} overlaps subnet {} ({})", o.cidr, o.zone);
                self.error(sub.cidr.span(), msg, None);
                continue;
            }
            subnets.push(Subnet { zone, cidr: net });
        }
        let zones = n.subnets.get_ref().len();
        if zones < 2 {
            let msg = format!("the network has {zones} subnet(s); at least two zones are required");
            let help =
                "an Application Load Balancer needs subnets in two or more availability zones";
            let at = if zones == 0 { span } else { n.subnets.span() };
            self.error(at, msg, Some(help));
        }
        let ingress_cidrs = self.cidr_list(&n.ingress_cidrs, "ingress_cidrs entry", &["0.0.0.0/0"]);
        let admin_cidrs = self.cidr_list(&n.admin_cidrs, "admin_cidrs entry", &[]);
        Some(Network {
            cidr: cidr?,
            subnets,
            ingress_cidrs,
            admin_cidrs,
        })
    }

    fn public_key(&mut self, path: &Spanned<String>, read_file: ReadFile) -> Option<String> {
        let rendered = self.templated(path)?;
        match read_file(Path::new(&rendered)) {
            Ok(text) => {
                let key = text.trim().to_string();
                let known = ["ssh-ed25519 ", "ssh-rsa "];
                if key.starts_with("ecdsa-sha2-") || key.starts_with("sk-") {
                    // ImportKeyPair: "Amazon EC2 supports ED25519 and 2048-bit SSH-2 RSA keys".
                    self.error(
                        path.span(),
                        format!(
                            "{rendered} holds a {} key: EC2 key pairs are RSA or ED25519 only",
                            key.split_whitespace().next().unwrap_or("")
                        ),
                        Some("make one with `ssh-keygen -t ed25519` and point public_key_file at its .pub"),
                    );
                    None
                } else if known.iter().any(|p| key.starts_with(p)) && !key.contains('\n') {
                    Some(key)
                } else {
                    let msg = format!("{rendered} does not hold one OpenSSH public key");
                    self.error(
                        path.span(),
                        msg,
                        Some("point at the .pub file, never at the private key"),
                    );
                    None
                }
            }
            Err(e) => {
                self.error(
                    path.span(),
                    format!("cannot read public key file {rendered}: {e}"),
                    None,
                );
                None
            }
        }
    }

    /// Secrets, services (or the user's compose file) and how to deploy them.
    fn apps(&mut self, f: &StackFile, read_file: ReadFile) -> Option<Apps> {
        let errors = self.errors.len();
        let mut secrets = Vec::new();
        for (name, s) in &f.secrets {
            self.object_name(name, s.span(), "secret");
            let source = match (&s.get_ref().env, &s.get_ref().file) {
                (Some(env), None) => ValueSource::Env(env.get_ref().clone()),
                (None, Some(file)) => ValueSource::File(file.get_ref().into()),
                _ => {
                    self.error(
                        s.span(),
                        format!("secret {name:?} needs exactly one of env and file"),
                        Some("e.g. env = \"DB_PASSWORD\": the value itself never goes in the stack file"),
                    );
                    continue;
                }
            };
            let advanced =
                s.get_ref().tier.as_ref().is_some_and(|t| {
                    self.one_of(t, "tier", &["standard", "advanced"]) == "advanced"
                });
            secrets.push(SecretSource {
                name: name.clone(),
                source,
                advanced,
            });
        }
        let declared: Vec<&str> = secrets.iter().map(|s| s.name.as_str()).collect();
        let services: Vec<Service> = f
            .services
            .iter()
            .filter_map(|(name, s)| self.service(name, s, &declared))
            .collect();
        let swarm = f.swarm.as_ref();
        let compose = swarm
            .and_then(|s| s.compose_file.as_ref())
            .and_then(|path| {
                if !f.services.is_empty() {
                    self.error(
                        path.span(),
                        "compose_file and [services] cannot both be used",
                        Some("describe the services in one place"),
                    );
                    return None;
                }
                self.compose_file(path, read_file)
            });
        let resolve_image = match swarm.and_then(|s| s.resolve_image.as_ref()) {
            None => "always".to_string(),
            Some(r) => self.one_of(r, "resolve_image", &["always", "changed", "never"]),
        };
        let converge_timeout = swarm
            .and_then(|s| s.converge_timeout.as_ref())
            .and_then(|t| self.duration(t))
            .unwrap_or(std::time::Duration::from_secs(300));
        (self.errors.len() == errors).then_some(Apps {
            secrets,
            services,
            compose,
            deploy: DeploySettings {
                resolve_image,
                converge_timeout_secs: converge_timeout.as_secs().max(1),
            },
        })
    }

    fn service(
        &mut self,
        name: &str,
        s: &Spanned<ServiceFile>,
        secrets: &[&str],
    ) -> Option<Service> {
        let errors = self.errors.len();
        self.object_name(name, s.span(), "service");
        let f = s.get_ref();
        let image = self.templated(&f.image);
        let port = |v: &mut Self, p: &Option<Spanned<i64>>, what| {
            p.as_ref()
                .and_then(|p| v.int(p, what, 1..=65535))
                .map(|p| p as u16)
        };
        let published = port(self, &f.port, "port");
        let target_port = port(self, &f.target_port, "target_port").or(published);
        let publish = f.publish.as_ref().map_or("ingress".to_string(), |p| {
            self.one_of(p, "publish", &["ingress", "host"])
        });
        let mode = f.mode.as_ref().map_or("replicated".to_string(), |m| {
            self.one_of(m, "mode", &["replicated", "global"])
        });
        let replicas = f
            .replicas
            .as_ref()
            .and_then(|r| self.int(r, "replicas", 0..=1000))
            .unwrap_or(2) as u32;
        for secret in &f.secrets {
            if !secrets.contains(&secret.get_ref().as_str()) {
                self.error(
                    secret.span(),
                    format!("secret {:?} is not declared in [secrets]", secret.get_ref()),
                    Some("declare it as [secrets.NAME] with env = \"VAR\" or file = \"path\""),
                );
            }
        }
        let env = f
            .env
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), self.templated(v)?)))
            .collect();
        let texts = |v: &[Spanned<String>]| v.iter().map(|s| s.get_ref().clone()).collect();
        let stop_grace_period = f
            .stop_grace_period
            .as_ref()
            .and_then(|d| self.duration(d))
            .map(go_duration);
        let health_check = f.health_check.as_ref().map(|h| {
            let h = h.get_ref();
            let d = |v: &mut Self, d: &Option<Spanned<String>>, default| {
                d.as_ref()
                    .and_then(|d| v.duration(d))
                    .map_or_else(|| String::from(default), go_duration)
            };
            ServiceHealth {
                command: h.command.get_ref().clone(),
                interval: d(self, &h.interval, "5s"),
                timeout: d(self, &h.timeout, "3s"),
                retries: h
                    .retries
                    .as_ref()
                    .and_then(|r| self.int(r, "retries", 1..=100))
                    .unwrap_or(3) as u32,
                start_period: d(self, &h.start_period, "0s"),
            }
        });
        let update = self.update_policy(f.update.as_ref(), &publish, &mode);
        if publish == "host" && published.is_none() {
            self.error(
                s.span(),
                format!("service {name:?} publishes in host mode but names no port"),
                Some("add port = 3000"),
            );
        }
        (self.errors.len() == errors).then(|| Service {
            name: name.to_string(),
            image: image.expect("no errors"),
            port: published,
            target_port,
            publish,
            mode,
            replicas,
            placement: texts(&f.placement),
            command: f.command.as_deref().map(texts),
            env,
            secrets: texts(&f.secrets),
            stop_grace_period,
            health_check,
            update,
        })
    }

    /// A task published on its node's own port (host mode) goes when its node is taken out or
    /// its service updated; the load balancer keeps sending it requests until the deregistration
    /// delay is over or its health check notices (interval × unhealthy threshold). A task that
    /// stops sooner than that fails requests ("Deregistration delay", docs.aws.amazon.com/
    /// elasticloadbalancing/latest/application/load-balancer-target-groups.html). Docker gives a
    /// task `stop_grace_period` (10 s by default) before it kills it.
    fn drain_time(&mut self, f: &StackFile, lb: &LoadBalancer) {
        let hc = &lb.health_check;
        let notice = u64::from(hc.interval) * u64::from(hc.unhealthy_threshold);
        let needed = u64::from(lb.deregistration_delay) + notice;
        for (name, s) in &f.services {
            let svc = s.get_ref();
            let host = svc.publish.as_ref().is_some_and(|p| p.get_ref() == "host");
            let port = svc.port.as_ref().map(|p| *p.get_ref());
            if !host || port != Some(i64::from(lb.target_port)) {
                continue;
            }
            let (grace, at) = match &svc.stop_grace_period {
                Some(g) => match humantime::parse_duration(g.get_ref()) {
                    Ok(d) => (d.as_secs(), g.span()),
                    Err(_) => continue,
                },
                None => (10, s.span()),
            };
            if grace >= needed {
                continue;
            }
            self.warn(
                at,
                format!(
                    "service {name:?} gets {grace}s to stop, but the load balancer may send it requests for {needed}s: \
                     [load_balancer] deregistration_delay ({}s) + health_check interval × unhealthy_threshold ({}s × {})",
                    lb.deregistration_delay, hc.interval, hc.unhealthy_threshold
                ),
                "raise [services] stop_grace_period (and let the app keep serving that long after SIGTERM, failing its health check), or lower deregistration_delay and the health check's interval",
            );
        }
    }

    /// Start-first by default: a new task is healthy before the old one stops. A global service
    /// publishing in host mode cannot do that (two tasks cannot hold one node's port), so it
    /// stops first, and asking for start-first there is an error rather than a hung update.
    fn update_policy(
        &mut self,
        u: Option<&Spanned<UpdateFile>>,
        publish: &str,
        mode: &str,
    ) -> UpdatePolicy {
        let pinned_to_nodes = publish == "host" && mode == "global";
        let default_order = if pinned_to_nodes {
            "stop-first"
        } else {
            "start-first"
        };
        let Some(u) = u else {
            return UpdatePolicy {
                order: default_order.into(),
                parallelism: 1,
                delay: "5s".into(),
                monitor: "15s".into(),
                failure_action: "rollback".into(),
            };
        };
        let f = u.get_ref();
        let order = f.order.as_ref().map_or(default_order.to_string(), |o| {
            self.one_of(o, "order", &["start-first", "stop-first"])
        });
        if let Some(o) = &f.order
            && pinned_to_nodes
            && order == "start-first"
        {
            self.error(
                o.span(),
                "start-first cannot work for a global service published in host mode: the new task would wait forever for the port its predecessor holds",
                Some("use order = \"stop-first\" with a stop_grace_period your app drains in, or publish = \"ingress\""),
            );
        }
        let d = |v: &mut Self, d: &Option<Spanned<String>>, default: &str| {
            d.as_ref()
                .and_then(|d| v.duration(d))
                .map_or_else(|| default.to_string(), go_duration)
        };
        UpdatePolicy {
            order,
            parallelism: f
                .parallelism
                .as_ref()
                .and_then(|p| self.int(p, "parallelism", 0..=100))
                .unwrap_or(1) as u32,
            delay: d(self, &f.delay, "5s"),
            monitor: d(self, &f.monitor, "15s"),
            failure_action: f.failure_action.as_ref().map_or("rollback".into(), |a| {
                self.one_of(a, "failure_action", &["rollback", "pause", "continue"])
            }),
        }
    }

    /// The user's compose file, as read: it is parsed and interpolated with the Swarm's other
    /// inputs (see `compose::project::load`), which needs the environment.
    fn compose_file(&mut self, path: &Spanned<String>, read_file: ReadFile) -> Option<ComposeFile> {
        match read_file(Path::new(path.get_ref())) {
            Ok(text) => Some(ComposeFile {
                path: path.get_ref().clone(),
                text,
                vars: self.vars.clone(),
                overridden: self.overridden.clone(),
            }),
            Err(e) => {
                self.error(
                    path.span(),
                    format!("cannot read compose file {:?}: {e}", path.get_ref()),
                    None,
                );
                None
            }
        }
    }

    /// Names become Docker and Parameter Store names: a letter, then letters, digits, `-`, `_`.
    fn object_name(&mut self, name: &str, span: Range<usize>, what: &str) {
        if !valid_object_name(name) {
            self.error(
                span,
                format!("{what} name {name:?} must start with a lowercase letter and hold only a-z, 0-9, - and _ (at most 40)"),
                None,
            );
        }
    }

    fn one_of(&mut self, v: &Spanned<String>, what: &str, allowed: &[&str]) -> String {
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

    fn duration(&mut self, v: &Spanned<String>) -> Option<std::time::Duration> {
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
    fn templated(&mut self, s: &Spanned<String>) -> Option<String> {
        let mut ok = true;
        for (name, offset) in template::references(s.get_ref()) {
            if !self.vars.contains_key(&name) {
                // +1: the span includes the opening quote.
                let at = s.span().start + 1 + offset;
                let msg = format!("unknown template variable {name:?}");
                self.error(
                    at..at + name.len() + 4,
                    msg,
                    Some("declare it in [vars] or pass --var NAME=VALUE"),
                );
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

    fn int(
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

    /// `ami-…` or `ssm:/parameter/path`.
    fn ami(&mut self, a: &Spanned<String>) -> Option<AmiSource> {
        let text = self.templated(a)?;
        if let Some(path) = text.strip_prefix("ssm:") {
            Some(AmiSource::SsmParameter(path.to_string()))
        } else if text.starts_with("ami-") && text.len() > 4 {
            Some(AmiSource::Id(text))
        } else {
            let help = "use ssm:/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id";
            self.error(
                a.span(),
                format!("ami {text:?} is neither an ami-… id nor ssm:/parameter/path"),
                Some(help),
            );
            None
        }
    }

    fn pool(
        &mut self,
        role: Role,
        pool: Option<&Spanned<PoolFile>>,
        defaults: &NodesFile,
        nodes_span: Range<usize>,
    ) -> Option<NodePool> {
        // A pool's own setting wins over the one in [nodes].
        let own = pool.map(|p| p.get_ref());
        let instance_type = own
            .and_then(|p| p.instance_type.as_ref())
            .or(defaults.instance_type.as_ref());
        let ami = own.and_then(|p| p.ami.as_ref()).or(defaults.ami.as_ref());
        let volume = own
            .and_then(|p| p.root_volume_gb.as_ref())
            .or(defaults.root_volume_gb.as_ref());
        let name = role.pool();
        let count = match pool {
            Some(p) => self.int(&p.get_ref().count, &format!("{name} count"), 0..=1000)? as usize,
            None => 0,
        };
        if role == Role::Manager {
            let span = pool.map_or(nodes_span.clone(), |p| p.get_ref().count.span());
            if count == 0 {
                let help = "a Swarm needs at least one manager; use 1 to start, 3 or 5 for high availability";
                self.error(span, "there must be at least one manager", Some(help));
            } else if count % 2 == 0 {
                let msg = format!(
                    "{count} managers: an even count tolerates no more failures than {}",
                    count - 1
                );
                let help = "Raft needs a majority; 3 managers survive 1 failure, 5 survive 2";
                self.warn(span, msg, help);
            }
        }
        let instance_type = match instance_type {
            Some(t) => self.templated(t)?,
            None => "t3.small".to_string(),
        };
        let ami = match ami {
            Some(a) => self.ami(a)?,
            None => AmiSource::SsmParameter(DEFAULT_AMI_PARAMETER.to_string()),
        };
        let root_volume_gb = match volume {
            Some(v) => self.int(v, "root_volume_gb", 8..=16384)? as u32,
            None => 20,
        };
        Some(NodePool {
            role,
            count,
            instance_type,
            ami,
            root_volume_gb,
        })
    }

    fn load_balancer(&mut self, lb: &LoadBalancerFile, span: Range<usize>) -> Option<LoadBalancer> {
        let templated = lb.certificate_arn.as_ref().map(|c| (c, self.templated(c)));
        let certificate_arn = match templated {
            Some((_, None)) => None,
            Some((_, Some(arn))) if arn.starts_with("arn:") && arn.contains(":certificate/") => {
                Some(arn)
            }
            Some((c, Some(arn))) => {
                let msg = format!("certificate_arn {arn:?} is not an ACM certificate ARN");
                self.error(
                    c.span(),
                    msg,
                    Some("it looks like arn:aws:acm:REGION:ACCOUNT:certificate/ID"),
                );
                None
            }
            None => {
                let msg = "load_balancer.certificate_arn is missing: the HTTPS listener needs a certificate";
                let help =
                    "request or import one in ACM, then set certificate_arn = \"arn:aws:acm:…\"";
                self.error(
                    span.start..span.start + "[load_balancer]".len(),
                    msg,
                    Some(help),
                );
                None
            }
        };
        let tls_policy = match &lb.tls_policy {
            Some(p) if p.get_ref().starts_with("ELBSecurityPolicy-") => p.get_ref().clone(),
            Some(p) => {
                self.error(
                    p.span(),
                    format!(
                        "tls_policy {:?} is not an ELB security policy name",
                        p.get_ref()
                    ),
                    None,
                );
                String::new()
            }
            None => DEFAULT_TLS_POLICY.to_string(),
        };
        let target_port = self.int(&lb.target_port, "target_port", 1..=65535);
        let deregistration_delay = match &lb.deregistration_delay {
            Some(d) => self.int(d, "deregistration_delay", 0..=3600),
            None => Some(30),
        };
        let hc = lb.health_check.as_ref().map(|h| h.get_ref());
        let health_check = self.health_check(hc.unwrap_or(&HealthCheckFile::default()));
        Some(LoadBalancer {
            certificate_arn: certificate_arn?,
            tls_policy,
            target_port: target_port? as u16,
            deregistration_delay: deregistration_delay? as u32,
            health_check: health_check?,
        })
    }

    fn health_check(&mut self, h: &HealthCheckFile) -> Option<HealthCheck> {
        let path = h
            .path
            .as_ref()
            .map_or("/".to_string(), |p| p.get_ref().clone());
        if let Some(p) = &h.path
            && (!p.get_ref().starts_with('/') || p.get_ref().len() > 1024)
        {
            self.error(
                p.span(),
                format!(
                    "health check path {:?} must start with / and have at most 1024 characters",
                    p.get_ref()
                ),
                None,
            );
        }
        let matcher = h
            .matcher
            .as_ref()
            .map_or("200-399".to_string(), |m| m.get_ref().clone());
        if let Some(m) = &h.matcher
            && let Err(why) = http_matcher(m.get_ref())
        {
            let help = "one code (\"200\"), a list (\"200,204\") or one range (\"200-399\"), of codes from 200 to 499";
            self.error(
                m.span(),
                format!("health check matcher {:?} is not valid: {why}", m.get_ref()),
                Some(help),
            );
        }
        let mut num = |v: &Option<Spanned<i64>>, what: &str, range, default| match v {
            Some(v) => self.int(v, what, range),
            None => Some(default),
        };
        let interval = num(&h.interval, "health check interval", 5..=300, 15);
        let timeout = num(&h.timeout, "health check timeout", 2..=120, 5);
        let healthy = num(&h.healthy_threshold, "healthy_threshold", 2..=10, 3);
        let unhealthy = num(&h.unhealthy_threshold, "unhealthy_threshold", 2..=10, 2);
        // AWS refuses a timeout that is not shorter than the interval, defaults included
        // (CreateTargetGroup, HealthCheckTimeoutSeconds).
        let set = h.timeout.as_ref().or(h.interval.as_ref()).map(|v| v.span());
        if let (Some(i), Some(t), Some(span)) = (interval, timeout, set)
            && t >= i
        {
            let shown = |v: &Option<Spanned<i64>>, n| match v {
                Some(_) => format!("{n}s"),
                None => format!("{n}s (the default)"),
            };
            self.error(
                span,
                format!(
                    "health check timeout {} must be shorter than the interval {}",
                    shown(&h.timeout, t),
                    shown(&h.interval, i)
                ),
                Some("AWS refuses it when the target group is created: set timeout below interval"),
            );
        }
        Some(HealthCheck {
            path,
            matcher,
            interval: interval? as u32,
            timeout: timeout? as u32,
            healthy_threshold: healthy? as u32,
            unhealthy_threshold: unhealthy? as u32,
        })
    }
}

/// An ALB health check matcher: one code, a comma list of codes, or one range, of HTTP codes
/// 200 to 499 (`Matcher.HttpCode`, CreateTargetGroup).
fn http_matcher(m: &str) -> Result<(), String> {
    let code = |c: &str| match c.trim().parse::<u16>() {
        Ok(n) if (200..=499).contains(&n) => Ok(n),
        _ => Err(format!("{c:?} is not an HTTP code from 200 to 499")),
    };
    match m.split_once('-') {
        Some((low, high)) if !m.contains(',') => {
            let (low, high) = (code(low)?, code(high)?);
            if low > high {
                return Err(format!("the range runs backwards ({low} > {high})"));
            }
            Ok(())
        }
        Some(_) => Err("a list cannot hold a range".into()),
        None => m.split(',').try_for_each(|c| code(c).map(drop)),
    }
}

/// A duration as Docker writes it: whole seconds, or milliseconds when finer.
fn go_duration(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
