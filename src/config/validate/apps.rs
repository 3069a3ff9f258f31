//! What runs on the Swarm: `[secrets]`, `[services]` (with their update policy) or the user's
//! compose file, and how they are deployed.

use std::path::Path;

use toml::Spanned;

use super::Validator;
use crate::config::ReadFile;
use crate::config::schema::*;
use crate::model::*;

impl<'a> Validator<'a> {
    /// Secrets, services (or the user's compose file) and how to deploy them.
    pub(super) fn apps(&mut self, f: &StackFile, read_file: ReadFile) -> Option<Apps> {
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
        let keep_alive = f
            .keep_alive
            .as_ref()
            .and_then(|d| self.duration(d))
            .map(go_duration);
        let health_check = f
            .health_check
            .as_ref()
            .map(|h| self.service_health(h.get_ref()));
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
            keep_alive,
            health_check,
            update,
        })
    }

    /// A service's `health_check`, with the defaults for what it leaves out.
    fn service_health(&mut self, h: &ServiceHealthFile) -> ServiceHealth {
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
            start_interval: h
                .start_interval
                .as_ref()
                .and_then(|d| self.duration(d))
                .map(go_duration),
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
}

/// A duration as Docker writes it: whole seconds, or milliseconds when finer.
fn go_duration(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
