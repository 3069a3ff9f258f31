//! Templates rendered with tera: the user-data that prepares a node, the services' compose file.

pub mod compose;

use crate::model::{Role, Stack};

const USER_DATA: &str = include_str!("../../templates/user-data.sh.tera");

/// The user-data script for every node of one pool (identical within a pool, so a pool's
/// instances can be launched in one call).
pub fn user_data(stack: &Stack, role: Role) -> Result<String, tera::Error> {
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
