//! `[nodes]` and its pools: the public key, each pool's count, instance type, image and root
//! volume.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use super::Validator;
use crate::config::ReadFile;
use crate::config::schema::*;
use crate::model::*;

impl<'a> Validator<'a> {
    pub(super) fn public_key(
        &mut self,
        path: &Spanned<String>,
        read_file: ReadFile,
    ) -> Option<String> {
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

    pub(super) fn pool(
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

    /// `ami-…` or `ssm:/parameter/path`.
    pub(super) fn ami(&mut self, a: &Spanned<String>) -> Option<AmiSource> {
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
}
