//! What an image (AMI) tells about its nodes: the user its cloud-init creates for the key pair.
//!
//! The rules are AWS's list of default user names ("Manage system users on your Amazon EC2 Linux
//! instance", <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/managing-users.html>):
//! Amazon Linux, RHEL and SUSE log in as `ec2-user`, Ubuntu as `ubuntu`, Debian as `admin`,
//! Fedora as `fedora`.

/// The login user of an image, by its name as DescribeImages reports it (`al2023-ami-…`,
/// `ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-…`, `debian-12-amd64-…`); None
/// when the name tells nothing.
pub fn login_user(image_name: &str) -> Option<&'static str> {
    let name = image_name.to_ascii_lowercase();
    let name = name.rsplit('/').next().unwrap_or(&name);
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| name.starts_with(p));
    if starts(&["al20", "amzn", "rhel-", "suse-sles"]) {
        Some("ec2-user")
    } else if starts(&["ubuntu"]) {
        Some("ubuntu")
    } else if starts(&["debian"]) {
        Some("admin")
    } else if starts(&["fedora"]) {
        Some("fedora")
    } else {
        None
    }
}

/// The login user of the images a public SSM parameter names, by its path; None for any other
/// parameter (its image's name decides at plan time).
pub fn login_user_of_parameter(path: &str) -> Option<&'static str> {
    [
        ("/aws/service/ami-amazon-linux-latest/", "ec2-user"),
        ("/aws/service/canonical/ubuntu/", "ubuntu"),
        ("/aws/service/debian/", "admin"),
        ("/aws/service/suse/", "ec2-user"),
    ]
    .into_iter()
    .find(|(prefix, _)| path.starts_with(prefix))
    .map(|(_, user)| user)
}

/// Where the login user of a pool comes from, for `infra validate`.
pub fn describe_login_user(source: &super::AmiSource, explicit: Option<&str>) -> String {
    match (explicit, source) {
        (Some(user), _) => format!("{user} ([ssh] user)"),
        (None, super::AmiSource::SsmParameter(p)) => match login_user_of_parameter(p) {
            Some(user) => format!("{user} (the image parameter {p})"),
            None => "the login user of the image, from its name (at plan)".into(),
        },
        (None, super::AmiSource::Id(id)) => {
            format!("the login user of {id}, from its name (at plan)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AmiSource;

    #[test]
    fn login_user_follows_the_image_name() {
        for (name, user) in [
            (
                "al2023-ami-2023.12.20260930.0-kernel-6.12-x86_64",
                Some("ec2-user"),
            ),
            ("amzn2-ami-hvm-2.0.20180810-x86_64-gp2", Some("ec2-user")),
            (
                "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20251001",
                Some("ubuntu"),
            ),
            ("debian-12-amd64-20250101-1982", Some("admin")),
            (
                "RHEL-9.4.0_HVM-20240423-x86_64-62-Hourly2-GP3",
                Some("ec2-user"),
            ),
            (
                "suse-sles-15-sp6-v20240101-hvm-ssd-x86_64",
                Some("ec2-user"),
            ),
            (
                "Fedora-Cloud-Base-40-1.14.x86_64-hvm-us-east-1-gp3-0",
                Some("fedora"),
            ),
            ("Windows_Server-2016-English-Full-Base-2017.10.13", None),
            ("my-golden-image-42", None),
        ] {
            assert_eq!(login_user(name), user, "{name}");
        }
    }

    #[test]
    fn login_user_of_public_parameters() {
        let al = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";
        assert_eq!(login_user_of_parameter(al), Some("ec2-user"));
        assert_eq!(
            login_user_of_parameter(crate::model::DEFAULT_AMI_PARAMETER),
            Some("ubuntu")
        );
        let debian = "/aws/service/debian/release/12/latest/amd64";
        assert_eq!(login_user_of_parameter(debian), Some("admin"));
        assert_eq!(login_user_of_parameter("/mine/golden-ami"), None);
    }

    #[test]
    fn validate_names_where_the_user_comes_from() {
        let al = AmiSource::SsmParameter(
            "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64".into(),
        );
        assert!(describe_login_user(&al, None).starts_with("ec2-user (the image parameter"));
        assert_eq!(
            describe_login_user(&al, Some("deploy")),
            "deploy ([ssh] user)"
        );
        let id = AmiSource::Id("ami-0abc".into());
        assert_eq!(
            describe_login_user(&id, None),
            "the login user of ami-0abc, from its name (at plan)"
        );
    }
}
