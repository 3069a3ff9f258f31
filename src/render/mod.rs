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
/// instances can be launched in one call).
pub fn user_data(stack: &Stack, role: Role) -> Result<String, tera::Error> {
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
    tera::Tera::one_off(USER_DATA, &ctx, false)
}
