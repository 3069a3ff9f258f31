//! How infra reaches the nodes: `[ssh]` settings, a path in over SSH, and `[bastion]`.

use toml::Spanned;

use super::Validator;
use crate::config::schema::*;
use crate::model::*;

impl<'a> Validator<'a> {
    pub(super) fn ssh(&mut self, ssh: Option<&SshFile>) -> SshSettings {
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

    /// With the Swarm on, infra itself logs in to the nodes: something must let it in.
    pub(super) fn ssh_path(&mut self, f: &StackFile, swarm: bool) {
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
    pub(super) fn bastion(
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
}
