//! The Swarm half of a plan: what Docker will not change in place is replaced, what did not
//! converge is a change, and a published port changes hands in order.

use std::collections::BTreeMap;

use super::graph::{StepKind, steps};
use super::{Action, Change, diff};
use crate::model::resources::Resource;
use crate::model::{
    Address, CONVERGED, Live, Observed, ServiceSpec, Spec, SwarmNetworkSpec, SwarmSecretSpec,
};

fn service(mode: &str, ports: &[&str], networks: &[&str]) -> ServiceSpec {
    ServiceSpec {
        image: "docker.io/library/web:1".into(),
        mode: mode.into(),
        state: CONVERGED.into(),
        ports: ports.iter().map(|p| p.to_string()).collect(),
        secrets: vec![],
        networks: networks.iter().map(|n| Address::new(*n)).collect(),
        configs: vec![],
        definition_sha256: "d1".into(),
        definition: String::new(),
    }
}

fn network(hash: &str) -> SwarmNetworkSpec {
    SwarmNetworkSpec {
        name: "demo_back".into(),
        driver: "overlay".into(),
        attachable: false,
        internal: false,
        encrypted: false,
        definition_sha256: hash.into(),
        create_args: vec![],
    }
}

fn desired(objects: &[(&str, Spec)]) -> Vec<Resource> {
    objects
        .iter()
        .map(|(a, spec)| Resource {
            address: Address::new(*a),
            spec: spec.clone(),
        })
        .collect()
}

fn live(objects: &[(&str, Spec)]) -> Live {
    objects
        .iter()
        .map(|(a, spec)| {
            let observed = Observed {
                id: format!("id-{a}"),
                spec: spec.clone(),
                outputs: BTreeMap::new(),
            };
            (Address::new(*a), observed)
        })
        .collect()
}

fn change<'a>(changes: &'a [Change], address: &str) -> &'a Change {
    changes
        .iter()
        .find(|c| c.address.as_str() == address)
        .unwrap_or_else(|| panic!("no change of {address} in {changes:#?}"))
}

/// Whether the step `then` of the plan's changes waits for the step `first`, (address, kind)
/// each.
fn waits(changes: &[Change], first: (&str, StepKind), then: (&str, StepKind)) -> bool {
    let steps = steps(changes).unwrap();
    let at = |(address, kind): (&str, StepKind)| {
        steps
            .iter()
            .position(|s| s.kind == kind && changes[s.changes[0]].address.as_str() == address)
            .unwrap_or_else(|| panic!("no {kind:?} step of {address}"))
    };
    steps[at(then)].after.contains(&at(first))
}

#[test]
fn a_mode_type_change_replaces_the_service_and_says_why() {
    let web = "swarm.service.web";
    for (from, to) in [
        ("replicated 4", "global"),
        ("global", "replicated 1"),
        ("replicated 1", "replicated-job"),
        ("global-job", "global"),
    ] {
        let before = live(&[(web, Spec::Service(service(from, &[], &[])))]);
        let after = desired(&[(web, Spec::Service(service(to, &[], &[])))]);
        let changes = diff(&after, None, &before);
        let c = change(&changes, web);
        assert_eq!(c.action, Action::Replace, "{from} -> {to}");
        assert!(c.fields[0].forces_replacement);
        let reason = c.reason.as_deref().unwrap();
        assert!(
            reason.starts_with(
                "mode cannot change in place (Docker: \"service mode change is not allowed\")"
            ) && reason.contains("runs no task in between"),
            "{reason}"
        );
        // Removed (and gone) before it is created again.
        assert!(waits(
            &changes,
            (web, StepKind::Delete),
            (web, StepKind::Create)
        ));
    }
}

#[test]
fn the_replica_count_changes_in_place() {
    let web = "swarm.service.web";
    let before = live(&[(web, Spec::Service(service("replicated 4", &[], &[])))]);
    let after = desired(&[(web, Spec::Service(service("replicated 2", &[], &[])))]);
    let changes = diff(&after, None, &before);
    let c = change(&changes, web);
    assert_eq!((c.action, c.reason.as_deref()), (Action::Update, None));
    assert!(!c.fields[0].forces_replacement);
}

#[test]
fn a_replaced_network_replaces_the_services_on_it() {
    let (web, back) = ("swarm.service.web", "swarm.network.back");
    let on_back = Spec::Service(service("replicated 1", &[], &[back]));
    let before = live(&[
        (back, Spec::SwarmNetwork(network("h1"))),
        (web, on_back.clone()),
    ]);
    let after = desired(&[(back, Spec::SwarmNetwork(network("h2"))), (web, on_back)]);
    let changes = diff(&after, None, &before);
    assert_eq!(change(&changes, back).action, Action::Replace);
    let c = change(&changes, web);
    assert_eq!(c.action, Action::Replace);
    assert!(
        c.reason.as_deref().unwrap().starts_with(
            "swarm.network.back is replaced: Docker cannot remove a network a service uses"
        ),
        "{:?}",
        c.reason
    );
    // With a secret renewed too (listed before its networks), still replaced.
    let mut with_secret = service("replicated 1", &[], &[back]);
    with_secret.secrets = vec![Address::new("swarm.secret.key_2")];
    let key = Spec::SwarmSecret(SwarmSecretSpec {
        name: "key_2".into(),
        secret: Address::new("secret.key"),
    });
    let after = desired(&[
        (back, Spec::SwarmNetwork(network("h2"))),
        ("swarm.secret.key_2", key),
        (web, Spec::Service(with_secret)),
    ]);
    let both = diff(&after, None, &before);
    assert_eq!(change(&both, web).action, Action::Replace);
    // The service goes before its network, and comes back after the new one.
    assert!(waits(
        &changes,
        (web, StepKind::Delete),
        (back, StepKind::Delete)
    ));
    assert!(waits(
        &changes,
        (back, StepKind::Create),
        (web, StepKind::Create)
    ));
}

#[test]
fn a_service_docker_did_not_converge_is_updated_with_dockers_reason() {
    let web = "swarm.service.web";
    let mut broken = service("replicated 1", &[], &[]);
    broken.state = "0 of 1 tasks running; demo_db.1 rejected: invalid mount config".into();
    let before = live(&[(web, Spec::Service(broken))]);
    let after = desired(&[(web, Spec::Service(service("replicated 1", &[], &[])))]);
    let changes = diff(&after, None, &before);
    let c = change(&changes, web);
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.fields.len(), 1);
    assert_eq!(c.fields[0].name, "state");
    assert_eq!(
        c.fields[0].before,
        "0 of 1 tasks running; demo_db.1 rejected: invalid mount config"
    );
    assert_eq!(c.fields[0].after, CONVERGED);
}

#[test]
fn a_published_port_changes_hands_in_order() {
    let (old, new) = ("swarm.service.old", "swarm.service.new");
    let port = "8080:80/tcp (ingress)";
    // `old` gives the port up (updated without it), `new` takes it: after, never before.
    let before = live(&[(old, Spec::Service(service("replicated 1", &[port], &[])))]);
    let after = desired(&[
        (old, Spec::Service(service("replicated 1", &[], &[]))),
        (new, Spec::Service(service("replicated 1", &[port], &[]))),
    ]);
    let changes = diff(&after, None, &before);
    assert!(waits(
        &changes,
        (old, StepKind::Update),
        (new, StepKind::Create)
    ));
    // Removed from the file: the removal comes first.
    let after = desired(&[(new, Spec::Service(service("replicated 1", &[port], &[])))]);
    let changes = diff(&after, None, &before);
    assert!(waits(
        &changes,
        (old, StepKind::Delete),
        (new, StepKind::Create)
    ));
    // Host-mode ports coexist: no order (two services may swap them in one apply).
    let host = "8080:80/tcp (host)";
    let before = live(&[(old, Spec::Service(service("replicated 1", &[host], &[])))]);
    let after = desired(&[
        (old, Spec::Service(service("replicated 1", &[], &[]))),
        (new, Spec::Service(service("replicated 1", &[host], &[]))),
    ]);
    let changes = diff(&after, None, &before);
    assert!(!waits(
        &changes,
        (old, StepKind::Update),
        (new, StepKind::Create)
    ));
}

/// A service is changed once the membership settled: here a run killed mid-roll left
/// `swarm.node.worker[0]/old`, and the service it left short of a task is updated only after
/// that member left (a drain under a running update ends its tasks, and Docker rolls back).
#[test]
fn a_service_changes_after_members_left() {
    let (web, old) = ("swarm.service.web", "swarm.node.worker[0]/old");
    let member = crate::model::SwarmNodeSpec {
        instance: Address::new("node.worker[0]/old"),
        role: "worker".into(),
        availability: "active".into(),
        state: "ready".into(),
        labels: BTreeMap::new(),
    };
    let mut short = service("global", &[], &[]);
    short.state = "2 of 3 tasks running; demo_web.x rejected: not ready".into();
    let before = live(&[(web, Spec::Service(short)), (old, Spec::SwarmNode(member))]);
    let after = desired(&[(web, Spec::Service(service("global", &[], &[])))]);
    let changes = diff(&after, None, &before);
    assert_eq!(change(&changes, old).action, Action::Delete);
    assert!(waits(
        &changes,
        (old, StepKind::Delete),
        (web, StepKind::Update)
    ));
}
