//! The sandbox stack (stacks/sandbox.toml) on a testbed of its own, set up the way
//! `scripts/sandbox up` sets it up: what most testbed tests start from.

use std::path::{Path, PathBuf};

use super::nodes::{Image, Testbed};
use super::project::Project;
use super::world::world;

/// The sandbox's secret value in the tests.
pub const GREETING_V1: &str = "s3cr3t-greeting-ONE-7f1d";

/// Where the sandbox's demo image comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registry {
    /// The stack's ECR repository, as `scripts/sandbox up` has it: the world's ECR and instance
    /// metadata service run, the repository and the image are left to the test.
    Ecr,
    /// The testbed's plain registry (`registry.test:5000`, no `[registry]`): the fast path for
    /// tests that are not about images, as the `docker` image is for tests not about booting.
    Plain,
}

/// The sandbox stack in a scratch directory, with its `.sandbox/` made the way
/// `scripts/sandbox up` makes it, and the demo image's `tags` in the testbed's registry (the
/// plain one: see [`Registry`]).
pub fn sandbox(id: &'static str, nodes: usize, tags: &[&str]) -> (Project, Testbed) {
    sandbox_with(id, nodes, tags, Image::Docker)
}

pub fn sandbox_with(
    id: &'static str,
    nodes: usize,
    tags: &[&str],
    image: Image,
) -> (Project, Testbed) {
    sandbox_in(
        Project::new("sandbox", 2),
        id,
        nodes,
        tags,
        image,
        Registry::Plain,
    )
}

/// The same in project `p` (one made with proxy arguments of its own), its image from
/// `registry`.
pub fn sandbox_in(
    mut p: Project,
    id: &'static str,
    nodes: usize,
    tags: &[&str],
    image: Image,
    registry: Registry,
) -> (Project, Testbed) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stack = std::fs::read_to_string(root.join("stacks/sandbox.toml")).unwrap();
    if registry == Registry::Plain {
        // The table and the comment above it, to the blank line that follows.
        let table = stack
            .find("[registry]")
            .expect("the sandbox has [registry]");
        let start = stack[..table].rfind("\n\n").unwrap() + 2;
        let end = table + stack[table..].find("\n\n").unwrap() + 2;
        stack = stack[..start].to_string() + &stack[end..];
        stack = stack.replace("{{ registry }}/infra-demo", "registry.test:5000/infra-demo");
    }
    std::fs::write(p.stack_file(), stack).unwrap();
    let mut bed = Testbed::up_with(id, p.dir.path().join(".sandbox/testbed"), nodes, image);
    bed.serve_load_balancer(&p);
    bed.serve_dns(&p);
    if registry == Registry::Ecr {
        bed.serve_registry(&p);
    }
    bed.reap_terminated(&p);
    let proxy = format!(
        "Host *\n  ProxyCommand {} {id} {} %h %p\n",
        world("nodes/connect").display(),
        bed.dir.display()
    );
    std::fs::write(p.dir.path().join(".sandbox/ssh_config"), proxy).unwrap();
    // v3 is the release that never gets healthy.
    for &tag in tags {
        let broken: &[&str] = if tag == "v3" { &["broken"] } else { &[] };
        let name = format!("infra-demo:{tag}");
        let mut args = vec![name.as_str(), tag];
        args.extend_from_slice(broken);
        bed.run("image", &args);
    }
    p.env = vec![
        ("INFRA_VAR_certificate_arn".into(), p.cert_arn.clone()),
        ("DEMO_GREETING".into(), GREETING_V1.into()),
    ];
    (p, bed)
}

/// The sandbox stack with its `[services]` replaced by `[swarm] compose_file = "compose.yml"`,
/// and `files` of the fixture folder `tests/fixtures/compose/<fixture>` copied next to it;
/// returns that directory (the stack file's).
pub fn with_compose_file(p: &Project, fixture: &str, files: &[&str]) -> PathBuf {
    let stack = std::fs::read_to_string(p.stack_file()).unwrap();
    let cut = stack
        .find("[services.web]")
        .expect("the sandbox has [services.web]");
    let stack = stack[..cut].replace("[swarm]\n", "[swarm]\ncompose_file = \"compose.yml\"\n");
    std::fs::write(p.stack_file(), stack).unwrap();
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/compose")
        .join(fixture);
    let dir = p.stack_file().parent().unwrap().to_path_buf();
    for f in files {
        std::fs::copy(from.join(f), dir.join(f)).unwrap();
    }
    dir
}
