//! Amazon ECR and the instance metadata service as a testbed's nodes reach them: the registry's
//! front (tests/world/ecr/front.py, HTTPS at 10.77.ID.1:443 under ECR's names) and IMDSv2
//! (tests/world/nodes/imds.py, 169.254.169.254 in the testbed's namespace tbID-md), both reading
//! the project's moto. `Testbed::serve_registry` starts them.

use std::path::Path;

use super::aws::Moto;
use super::nodes::testbed;
use super::world::WorldService;

/// The registry's front and the metadata service of one testbed. Stopped on drop.
pub struct EcrWorld {
    _services: [WorldService; 2],
}

impl EcrWorld {
    pub fn start(id: &str, dir: &Path, moto: &Moto) -> EcrWorld {
        let images = testbed(&["images"]);
        let images = Path::new(images.trim());
        let world = moto.world.as_os_str();
        let (ca_cert, ca_key) = (images.join("world-ca.crt"), images.join("world-ca.key"));
        let front = [
            "--id".as_ref(),
            id.as_ref(),
            "--aws".as_ref(),
            moto.endpoint.as_ref(),
            "--world".as_ref(),
            world,
            "--ca-cert".as_ref(),
            ca_cert.as_os_str(),
            "--ca-key".as_ref(),
            ca_key.as_os_str(),
        ];
        let netns = format!("/var/run/netns/tb{id}-md");
        let map = dir.join("map");
        let imds = [
            "--netns".as_ref(),
            netns.as_ref(),
            "--map".as_ref(),
            map.as_os_str(),
            "--world".as_ref(),
            world,
        ];
        EcrWorld {
            _services: [
                WorldService::start(moto, "ecr/front.py", front, &dir.join("ecr-front.log")),
                WorldService::start(moto, "nodes/imds.py", imds, &dir.join("imds.log")),
            ],
        }
    }
}
