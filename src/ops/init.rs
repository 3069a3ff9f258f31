//! `infra init [NAME]`: a starter stack file, the reference stack with every key commented.

use std::path::Path;

use super::{OpsError, Result};

const REFERENCE: &str = include_str!("../../stacks/aws-example.toml");

/// Writes `stacks/NAME.toml` under `root` (NAME: the given one, else the directory's name made
/// a valid stack name), refusing to overwrite one; returns its path.
pub fn init(root: &Path, name: Option<&str>) -> Result<std::path::PathBuf> {
    let name = match name {
        Some(n) => n.to_string(),
        None => default_name(root),
    };
    crate::config::check_stack_name(&name).map_err(OpsError::Usage)?;
    let file = root.join("stacks").join(format!("{name}.toml"));
    if file.exists() {
        return Err(OpsError::Usage(format!(
            "{} exists already: edit it, or choose another name (infra init NAME)",
            file.display()
        )));
    }
    let region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .ok();
    let text = starter(&name, region.as_deref());
    let io = |source| OpsError::Io {
        what: "cannot write",
        path: file.display().to_string(),
        source,
    };
    std::fs::create_dir_all(root.join("stacks")).map_err(io)?;
    std::fs::write(&file, text).map_err(io)?;
    Ok(file)
}

/// The reference stack, for `name`, in `region` when one is known (its zones follow).
pub fn starter(name: &str, region: Option<&str>) -> String {
    let text = format!(
        "# Written by `infra init` from infra's reference stack: every key, with its default.\n\
         # Make it yours (region and zones, admin_cidrs, public_key_file, certificate_arn, the\n\
         # services), then run `infra validate` and `infra plan`.\n{}",
        REFERENCE.replace("aws-example", name)
    );
    match region {
        Some(r) if r != "us-east-1" => text.replace("us-east-1", r),
        _ => text,
    }
}

/// The directory's name as a stack name (lowercase letters, digits, inner hyphens, 20 at most),
/// or `main`.
fn default_name(root: &Path) -> String {
    let dir = root
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let cleaned: String = dir
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let trimmed: String = cleaned.trim_matches('-').chars().take(20).collect();
    let trimmed = trimmed.trim_end_matches('-').to_string();
    if trimmed.is_empty() {
        "main".into()
    } else {
        trimmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_is_a_valid_stack_in_the_users_region() {
        let text = starter("shop", Some("eu-west-3"));
        assert!(text.contains("region = \"eu-west-3\""));
        assert!(text.contains("zone = \"eu-west-3a\""));
        assert!(!text.contains("us-east-1"));
        assert!(text.contains("this is stack \"shop\"") && !text.contains("aws-example"));
        let read = |_: &Path| Ok("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB me".to_string());
        let vars = crate::model::Vars::new();
        let loaded = crate::config::parse("stacks/shop.toml", &text, &vars, &read).unwrap();
        assert_eq!(loaded.stack.name, "shop");
    }

    #[test]
    fn the_default_name_comes_from_the_directory() {
        assert_eq!(default_name(Path::new("/home/me/My Shop_2")), "my-shop-2");
        assert_eq!(default_name(Path::new("/")), "main");
        assert_eq!(
            default_name(Path::new("/x/a-very-long-project-name-indeed")),
            "a-very-long-project"
        );
    }
}
