//! Templates rendered with tera: the user-data that prepares a node, and the compose file of
//! the stack's `[services]` (a user's own compose file is never rendered with tera: see
//! `crate::compose`).

use crate::model::{Role, Stack};

const USER_DATA: &str = include_str!("../../templates/user-data.sh.tera");
const STACK_YML: &str = include_str!("../../templates/stack.yml.tera");

/// The compose file of the stack's `[services]`.
pub fn services_compose(stack: &Stack) -> Result<String, tera::Error> {
    let mut ctx = tera::Context::new();
    ctx.insert("stack", &stack.name);
    ctx.insert("services", &stack.apps.services);
    tera::Tera::one_off(STACK_YML, &ctx, false)
}

/// The user-data script for every node of one pool (identical within a pool, so a pool's
/// instances can be launched in one call). `registry` is the stack's ECR registry host, with
/// `[registry]`: the nodes then get its credential helper, and the managers the refresher of
/// the services' stored pull credentials (see docs/registry.md).
pub fn user_data(stack: &Stack, role: Role, registry: Option<&str>) -> Result<String, tera::Error> {
    if role == Role::Bastion {
        // Nothing to install: its sshd only forwards infra's connections to the nodes.
        return Ok(format!(
            "#!/bin/sh\n# user-data for the {} bastion, rendered by infra: nothing to install.\necho \"infra user-data: bastion ready\"\n",
            stack.name
        ));
    }
    let mut ctx = tera::Context::new();
    ctx.insert("stack", &stack.name);
    ctx.insert("role", role.pool());
    // The images' own login users, and `[ssh] user` if it is another.
    let mut users = vec!["ubuntu", "ec2-user", "admin"];
    if let Some(user) = stack.ssh.user.as_deref()
        && !users.contains(&user)
    {
        users.push(user);
    }
    ctx.insert("ssh_users", &users);
    ctx.insert("registry", registry.unwrap_or_default());
    let refresh = stack
        .registry
        .as_ref()
        .map_or(0, |r| r.credentials_refresh_secs);
    ctx.insert("credentials_refresh_secs", &refresh);
    tera::Tera::one_off(USER_DATA, &ctx, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(registry: bool) -> Stack {
        stack_with(if registry {
            "[registry]\nrepositories = [\"web\"]\ncredentials_refresh = \"30m\"\n"
        } else {
            ""
        })
    }

    fn stack_with(more: &str) -> Stack {
        let read = |_: &std::path::Path| Ok("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB test".into());
        let text = "[network]\ncidr = \"10.0.0.0/16\"\n[[network.subnets]]\nzone = \"us-east-1a\"\ncidr = \"10.0.1.0/24\"\n[[network.subnets]]\nzone = \"us-east-1b\"\ncidr = \"10.0.2.0/24\"\n[nodes]\npublic_key_file = \"k.pub\"\n[nodes.managers]\ncount = 1\n[load_balancer]\ncertificate_arn = \"arn:aws:acm:us-east-1:123456789012:certificate/x\"\ntarget_port = 80\n[ssh]\njump_host = \"b.example.com\"\n".to_string()
            + more;
        crate::config::parse("stacks/demo.toml", &text, &Default::default(), &read)
            .unwrap()
            .stack
    }

    /// A stack without a registry gets the user-data it got before registries existed: a
    /// changed user-data replaces every node of every cluster at its next apply, so a change
    /// to this hash must be a decision (and a note in the release).
    #[test]
    fn user_data_without_a_registry_is_unchanged() {
        let script = user_data(&stack(false), Role::Worker, None).unwrap();
        assert_eq!(
            crate::model::resources::sha256_hex(&script),
            "1ff54d368de1e5c144ab1140d8a0d9663be7377c6c9ac053473d08306b204749"
        );
    }

    /// A health check's `start_interval` reaches the compose file only when the stack sets it
    /// (Docker Engine 25+ knows it).
    #[test]
    fn the_start_interval_is_rendered_only_when_set() {
        let service = "[services.web]\nimage = \"web:1\"\nport = 80\n[services.web.health_check]\ncommand = \"true\"\n";
        let plain = services_compose(&stack_with(service)).unwrap();
        assert!(
            plain.contains("start_period: 0s") && !plain.contains("start_interval"),
            "{plain}"
        );
        let fast = stack_with(&format!(
            "{service}start_period = \"3s\"\nstart_interval = \"500ms\"\n"
        ));
        let fast = services_compose(&fast).unwrap();
        assert!(fast.contains("      start_interval: 500ms\n"), "{fast}");
    }

    /// `keep_alive` becomes the service label the doctor reads, only when set.
    #[test]
    fn the_keep_alive_is_a_service_label() {
        let service = "[services.web]\nimage = \"web:1\"\nport = 80\n";
        let plain = services_compose(&stack_with(service)).unwrap();
        assert!(!plain.contains("labels"), "{plain}");
        let known =
            services_compose(&stack_with(&format!("{service}keep_alive = \"75s\"\n"))).unwrap();
        assert!(
            known.contains("      labels:\n        infra.keep-alive: \"75s\"\n"),
            "{known}"
        );
    }

    /// Valid `sh` for each role, with and without a registry; the refresher only on managers.
    #[test]
    fn user_data_is_a_valid_script_and_only_managers_renew_pull_credentials() {
        let host = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
        for (registry, role) in [
            (false, Role::Manager),
            (true, Role::Manager),
            (true, Role::Worker),
        ] {
            let script = user_data(&stack(registry), role, registry.then_some(host)).unwrap();
            let check = std::process::Command::new("sh")
                .args(["-n", "-c", &script])
                .output()
                .unwrap();
            assert!(
                check.status.success(),
                "{}",
                String::from_utf8_lossy(&check.stderr)
            );
            assert_eq!(script.contains("ecr-login"), registry);
            assert_eq!(
                script.contains("OnUnitActiveSec=1800"),
                registry && role == Role::Manager,
                "{script}"
            );
            if registry && role == Role::Manager {
                assert!(script.contains(&format!("    {host}/*)")), "{script}");
                assert!(
                    script.contains("--format '{{ .ManagerStatus.Leader }}'"),
                    "{script}"
                );
            }
        }
    }
}
