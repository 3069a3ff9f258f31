use std::collections::BTreeMap;

use super::graph::{StepKind, steps};
use super::*;
use crate::model::resources::{Inputs, Resource, expand};
use crate::model::{ListenerAction, Live, Observed, Rule, Source, Spec};

const STACK: &str = r#"
[network]
cidr = "10.0.0.0/16"
[[network.subnets]]
zone = "us-east-1a"
cidr = "10.0.1.0/24"
[[network.subnets]]
zone = "us-east-1b"
cidr = "10.0.2.0/24"
[nodes]
public_key_file = "key.pub"
[nodes.managers]
count = 1
[nodes.workers]
count = 4
[load_balancer]
certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
target_port = 8080
[ssh]
jump_host = "bastion.example.com"
"#;

fn desired() -> Vec<Resource> {
    let read = |_: &std::path::Path| Ok("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB test".to_string());
    let stack = crate::config::parse("stacks/demo.toml", STACK, &BTreeMap::new(), &read)
        .unwrap()
        .stack;
    let inputs = Inputs {
        manager_ami: "ami-1".into(),
        worker_ami: "ami-1".into(),
        manager_user_data: "#!/bin/sh\necho manager\n".into(),
        worker_user_data: "#!/bin/sh\necho worker\n".into(),
        bastion: None,
        account: None,
    };
    expand(&stack, &inputs)
}

/// What AWS would report once `desired` is applied: same specs, hashes in place of bodies.
fn applied(desired: &[Resource]) -> Live {
    desired
        .iter()
        .enumerate()
        .map(|(n, r)| {
            let mut spec = r.spec.clone();
            match &mut spec {
                Spec::Instance(i) => i.user_data.clear(),
                Spec::KeyPair(k) => k.public_key.clear(),
                _ => {}
            }
            (
                r.address.clone(),
                Observed {
                    id: format!("id-{n}"),
                    spec,
                    outputs: BTreeMap::new(),
                },
            )
        })
        .collect()
}

fn plan_of(changes: Vec<Change>) -> Plan {
    Plan {
        format_version: PLAN_FORMAT_VERSION,
        stack: "demo".into(),
        region: None,
        lineage: None,
        serial: 0,
        stack_sha256: String::new(),
        created: chrono::DateTime::UNIX_EPOCH,
        destroy: false,
        changes,
        unchanged: BTreeMap::new(),
        ssh: None,
        deploy: Default::default(),
        notices: vec![],
        observed: BTreeMap::new(),
    }
}

fn actions(changes: &[Change]) -> Vec<(String, Action)> {
    changes
        .iter()
        .map(|c| (c.address.to_string(), c.action))
        .collect()
}

/// The index of the step that changes `address`.
/// Asserts that `a`'s step is one that `b`'s step waits for.
fn assert_before(changes: &[Change], a: &str, b: &str) {
    let steps = steps(changes).unwrap();
    let (ia, ib) = (step_of(&steps, changes, a), step_of(&steps, changes, b));
    assert!(steps[ib].after.contains(&ia), "{a} must come before {b}");
}

fn step_of(steps: &[graph::Step], changes: &[Change], address: &str) -> usize {
    steps
        .iter()
        .position(|s| {
            s.changes
                .iter()
                .any(|&c| changes[c].address.as_str() == address)
        })
        .unwrap()
}

#[test]
fn everything_is_created_from_nothing() {
    let plan = plan_of(diff(&desired(), None, &Live::new()));
    assert_eq!(
        plan.summary(),
        Summary {
            add: 23,
            change: 0,
            destroy: 0
        }
    );
    insta::assert_snapshot!("create_text", text::render(&plan, false));
}

#[test]
fn nothing_changes_when_aws_matches() {
    let d = desired();
    assert!(diff(&d, None, &applied(&d)).is_empty());
}

#[test]
fn drift_updates_replaces_and_deletes() {
    let d = desired();
    let mut live = applied(&d);
    let a = |s: &str| crate::model::Address::new(s);
    if let Spec::SecurityGroup(g) = &mut live.get_mut(&a("sg.node")).unwrap().spec {
        g.ingress.retain(|r| r.from_port != 2377);
        g.ingress.push(Rule {
            protocol: "tcp".into(),
            from_port: 22,
            to_port: 22,
            source: Source::Cidr("0.0.0.0/0".into()),
        });
    }
    if let Spec::Instance(i) = &mut live.get_mut(&a("node.worker[1]")).unwrap().spec {
        i.ami = "ami-0".into();
    }
    let extra = live[&a("node.worker[3]")].clone();
    live.insert(a("node.worker[7]"), extra);
    live.remove(&a("node.worker[2]"));

    let changes = diff(&d, None, &live);
    assert_eq!(
        actions(&changes),
        [
            ("node.worker[1]".to_string(), Action::Replace),
            ("node.worker[2]".to_string(), Action::Create),
            ("node.worker[7]".to_string(), Action::Delete),
            ("sg.node".to_string(), Action::Update),
            // A new instance is a new Swarm member: the old one (now Down) goes, the new joins.
            ("swarm.node.worker[1]".to_string(), Action::Replace),
            ("swarm.node.worker[2]".to_string(), Action::Replace),
            ("targets.8080".to_string(), Action::Update),
        ]
    );
    let targets = changes
        .iter()
        .find(|c| c.address.as_str() == "targets.8080")
        .unwrap();
    assert_eq!(
        targets.reason.as_deref(),
        Some("node.worker[1] gets a new id"),
        "re-registered after the replacement"
    );
    let plan = plan_of(changes);
    assert_eq!(
        plan.summary(),
        Summary {
            add: 4,
            change: 2,
            destroy: 4
        }
    );
    insta::assert_snapshot!("drift_text", text::render(&plan, false));
    insta::assert_json_snapshot!("drift_json", json::render(&plan));
    insta::assert_snapshot!("drift_markdown", markdown::render(&plan));
}

#[test]
fn a_replaced_subnet_replaces_its_instances_and_updates_its_users() {
    let d = desired();
    let mut live = applied(&d);
    if let Spec::Subnet(s) = &mut live
        .get_mut(&crate::model::Address::new("subnet[1]"))
        .unwrap()
        .spec
    {
        s.cidr = "10.0.9.0/24".into();
    }
    let changes = diff(&d, None, &live);
    assert_eq!(
        actions(&changes),
        [
            ("lb".to_string(), Action::Update),
            ("node.worker[1]".to_string(), Action::Replace),
            ("node.worker[3]".to_string(), Action::Replace),
            ("route_table".to_string(), Action::Update),
            ("subnet[1]".to_string(), Action::Replace),
            ("swarm.node.worker[1]".to_string(), Action::Replace),
            ("swarm.node.worker[3]".to_string(), Action::Replace),
            ("targets.8080".to_string(), Action::Update),
        ]
    );
    // Its nodes cannot hold an old and a new instance in one subnet: replaced delete-first,
    // in an order that exists.
    assert!(changes.iter().all(|c| c.rolling.is_none()));
    steps(&changes).unwrap();
}

/// A security group replaced (a new description) while a node is created: the group's delete
/// and create, the node's launch and join form no cycle with the rule that network objects
/// are removed last.
#[test]
fn a_replaced_group_beside_a_new_node_has_an_order() {
    let d = desired();
    let mut live = applied(&d);
    let a = |s: &str| crate::model::Address::new(s);
    if let Spec::SecurityGroup(g) = &mut live.get_mut(&a("sg.node")).unwrap().spec {
        g.description = "old".into();
    }
    live.remove(&a("node.worker[2]"));
    live.remove(&a("swarm.node.worker[2]"));
    let changes = diff(&d, None, &live);
    let sg = changes
        .iter()
        .find(|c| c.address.as_str() == "sg.node")
        .unwrap();
    assert_eq!(sg.action, Action::Replace);
    steps(&changes).unwrap();
}

#[test]
fn creates_follow_references_and_same_subnet_instances_launch_together() {
    let changes = diff(&desired(), None, &Live::new());
    let before = |a: &str, b: &str| assert_before(&changes, a, b);
    before("vpc", "subnet[0]");
    before("sg.lb", "sg.node");
    before("subnet[0]", "node.worker[0]");
    before("key_pair", "node.manager[0]");
    before("node.worker[3]", "targets.8080");
    // The load balancer once its VPC's internet gateway is attached and routed.
    before("igw", "lb");
    before("route_table", "lb");
    before("tg.8080", "listener.https");
    // Targets once their nodes joined; the listener forwards once its targets are in.
    before("swarm.node.worker[3]", "targets.8080");
    before("targets.8080", "listener.https");
    // The Swarm: members join once their instance exists, after the first manager's init, and
    // managers one at a time.
    before("node.worker[0]", "swarm.node.worker[0]");
    before("swarm.node.manager[0]", "swarm.node.worker[0]");
    before("swarm.node.manager[0]", "swarm.node.worker[3]");
    // Workers 0 and 2 share subnet[0]; 1 and 3 share subnet[1]; the manager has other settings.
    let steps = steps(&changes).unwrap();
    let index = |addr: &str| step_of(&steps, &changes, addr);
    assert_eq!(index("node.worker[0]"), index("node.worker[2]"));
    assert_eq!(index("node.worker[1]"), index("node.worker[3]"));
    assert_ne!(index("node.worker[0]"), index("node.worker[1]"));
    assert_ne!(index("node.manager[0]"), index("node.worker[0]"));
    assert_eq!(steps.len(), 21, "23 creates, two batches of two instances");
}

#[test]
fn destroy_removes_users_before_what_they_use() {
    let d = desired();
    let changes = diff(&[], None, &applied(&d));
    assert!(changes.iter().all(|c| c.action == Action::Delete));
    let before = |a: &str, b: &str| assert_before(&changes, a, b);
    before("targets.8080", "node.worker[0]");
    before("node.worker[0]", "subnet[0]");
    before("listener.https", "tg.8080");
    before("lb", "sg.lb");
    before("sg.node", "sg.lb");
    before("subnet[1]", "vpc");
    before("igw", "vpc");
}

/// Whether step `to` waits, directly or through others, for step `from`.
fn waits_for(steps: &[graph::Step], from: usize, to: usize) -> bool {
    let mut seen = vec![false; steps.len()];
    let mut stack = vec![to];
    while let Some(s) = stack.pop() {
        for &d in &steps[s].after {
            if d == from {
                return true;
            }
            if !std::mem::replace(&mut seen[d], true) {
                stack.push(d);
            }
        }
    }
    false
}

/// Three managers (manager[0] leads) and two workers on a new AMI: each node rolls new-first
/// (depose, launch, join, then the old member leaves and its instance goes), one at a time,
/// managers first with the leader last; `max_unavailable` lets workers roll together.
/// A run killed mid-roll left `node.manager[0]/old` (and its member) and no new manager: the
/// next plan launches and joins the new one, removes the old one only after, and starts the
/// next roll only once that is done.
#[test]
fn a_roll_an_earlier_run_left_is_finished_before_the_next_starts() {
    let d = desired();
    let mut live = applied(&d);
    let a = |s: &str| crate::model::Address::new(s);
    for old in ["node.manager[0]", "swarm.node.manager[0]"] {
        let o = live.remove(&a(old)).unwrap();
        live.insert(a(old).deposed(), o);
    }
    if let Spec::SwarmNode(m) = &mut live.get_mut(&a("swarm.node.manager[0]/old")).unwrap().spec {
        m.instance = a("node.manager[0]/old");
    }
    if let Spec::Instance(i) = &mut live.get_mut(&a("node.worker[0]")).unwrap().spec {
        i.ami = "ami-0".into();
    }
    let changes = diff(&d, None, &live);
    let old = changes
        .iter()
        .find(|c| c.address.as_str() == "swarm.node.manager[0]/old")
        .unwrap();
    assert_eq!(old.action, Action::Delete);
    assert!(
        old.reason
            .as_deref()
            .unwrap()
            .starts_with("swarm.node.manager[0] replaced it")
    );
    let steps = steps(&changes).unwrap();
    let at = |address: &str, kind: StepKind| {
        steps
            .iter()
            .position(|s| {
                s.kind == kind
                    && s.changes
                        .iter()
                        .any(|&c| changes[c].address.as_str() == address)
            })
            .unwrap_or_else(|| panic!("no {kind:?} step for {address}"))
    };
    let joined = at("swarm.node.manager[0]", StepKind::Create);
    let left = at("swarm.node.manager[0]/old", StepKind::Delete);
    assert!(
        waits_for(&steps, joined, left),
        "the old manager leaves once the new one joined"
    );
    assert!(waits_for(
        &steps,
        left,
        at("node.manager[0]/old", StepKind::Delete)
    ));
    assert!(
        waits_for(&steps, left, at("swarm.node.worker[0]", StepKind::Depose)),
        "the next roll starts once the one in flight is over"
    );
}

/// A destroy keeps its own access until the end: no network object (VPC, subnets, gateway,
/// route table, security groups) is removed before every Swarm step is over and every instance
/// and the load balancer are gone.
#[test]
fn destroy_takes_the_network_down_last() {
    let changes = diff(&[], None, &applied(&desired()));
    let steps = steps(&changes).unwrap();
    let is_network = |s: &Spec| {
        matches!(
            s,
            Spec::Vpc(_)
                | Spec::Subnet(_)
                | Spec::InternetGateway(_)
                | Spec::RouteTable(_)
                | Spec::SecurityGroup(_)
        )
    };
    let kind_of = |i: usize| changes[steps[i].changes[0]].spec();
    let network: Vec<usize> = (0..steps.len())
        .filter(|&i| is_network(kind_of(i)))
        .collect();
    let first: Vec<usize> = (0..steps.len())
        .filter(|&i| {
            let s = kind_of(i);
            s.on_swarm() || matches!(s, Spec::Instance(_) | Spec::LoadBalancer(_))
        })
        .collect();
    assert!(
        network.len() >= 6 && first.len() >= 8,
        "{network:?} {first:?}"
    );
    for &n in &network {
        for &f in &first {
            assert!(
                waits_for(&steps, f, n),
                "{} is removed only after {}",
                changes[steps[n].changes[0]].address,
                changes[steps[f].changes[0]].address
            );
        }
    }
}

/// A new public key is imported under a name of its own before the nodes roll onto it; the
/// old key pair goes once the last node launched with it is gone.
#[test]
fn a_new_key_pair_is_created_first_and_removed_after_the_nodes_rolled() {
    let d = desired();
    let mut live = applied(&d);
    let key = crate::model::Address::new("key_pair");
    if let Spec::KeyPair(k) = &mut live.get_mut(&key).unwrap().spec {
        k.public_key_sha256 = "0ld".into();
    }
    let changes = diff(&d, None, &live);
    let rolling = changes.iter().filter(|c| c.rolling.is_some()).count();
    assert_eq!(rolling, 10, "5 instances and their 5 members roll");
    let steps = steps(&changes).unwrap();
    let at = |address: &str, kind: StepKind| {
        steps
            .iter()
            .position(|s| {
                s.kind == kind
                    && s.changes
                        .iter()
                        .any(|&c| changes[c].address.as_str() == address)
            })
            .unwrap()
    };
    let (create, delete) = (
        at("key_pair", StepKind::Create),
        at("key_pair", StepKind::Delete),
    );
    assert!(waits_for(
        &steps,
        create,
        at("node.worker[0]", StepKind::Create)
    ));
    for n in ["manager[0]", "worker[0]", "worker[3]"] {
        assert!(waits_for(
            &steps,
            at(&format!("node.{n}"), StepKind::Delete),
            delete
        ));
    }
}

#[test]
fn node_replacements_roll_new_first_one_at_a_time_leader_last() {
    let read = |_: &std::path::Path| Ok("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB test".to_string());
    let text = STACK
        .replace("[nodes.managers]\ncount = 1", "[nodes.managers]\ncount = 3")
        .replace("[nodes.workers]\ncount = 4", "[nodes.workers]\ncount = 2");
    let stack = crate::config::parse("stacks/demo.toml", &text, &BTreeMap::new(), &read)
        .unwrap()
        .stack;
    let d = expand(&stack, &bare_inputs(None));
    let mut live = applied(&d);
    for (a, o) in live.iter_mut() {
        if let Spec::Instance(i) = &mut o.spec {
            i.ami = "ami-0".into();
        }
        if a.as_str() == "swarm.node.manager[0]" {
            o.outputs.insert("leader".into(), "true".into());
        }
    }
    let order = |changes: &[Change]| {
        let mut rolls: Vec<(usize, String, Option<usize>)> = changes
            .iter()
            .filter(|c| c.address.as_str().starts_with("node."))
            .map(|c| {
                let r = c.rolling.expect("every node rolls");
                (r.index, c.address.to_string(), r.after)
            })
            .collect();
        rolls.sort();
        rolls
    };
    let changes = diff(&d, None, &live);
    let roll = |i: usize, a: &str, after: Option<usize>| (i, a.to_string(), after);
    assert_eq!(
        order(&changes),
        [
            roll(1, "node.manager[1]", None),
            roll(2, "node.manager[2]", Some(1)),
            roll(3, "node.manager[0]", Some(2)),
            roll(4, "node.worker[0]", Some(3)),
            roll(5, "node.worker[1]", Some(4)),
        ]
    );
    let steps = steps(&changes).unwrap();
    let at = |address: &str, kind: StepKind| {
        steps
            .iter()
            .position(|s| s.kind == kind && changes[s.changes[0]].address.as_str() == address)
            .unwrap_or_else(|| panic!("no {kind:?} step for {address}"))
    };
    let rolls = [
        "manager[1]",
        "manager[2]",
        "manager[0]",
        "worker[0]",
        "worker[1]",
    ];
    for (k, n) in rolls.iter().enumerate() {
        let (node, member) = (format!("node.{n}"), format!("swarm.node.{n}"));
        let sequence = [
            at(&member, StepKind::Depose),
            at(&node, StepKind::Create),
            at(&member, StepKind::Create),
            at(&member, StepKind::Delete),
            at(&node, StepKind::Delete),
        ];
        for pair in sequence.windows(2) {
            assert!(waits_for(&steps, pair[0], pair[1]), "{n}: {pair:?}");
        }
        if let Some(next) = rolls.get(k + 1) {
            let next = at(&format!("swarm.node.{next}"), StepKind::Depose);
            assert!(
                waits_for(&steps, sequence[3], next),
                "{n} is out before {next} starts"
            );
        }
    }
    // The targets are synced once every roll is over.
    assert!(waits_for(
        &steps,
        at("swarm.node.worker[1]", StepKind::Delete),
        at("targets.8080", StepKind::Update)
    ));
    // Two workers at a time: both start once the last manager rolled.
    let options = DiffOptions {
        max_unavailable: 2,
        ..Default::default()
    };
    let wide = diff_with(&d, None, &live, &options);
    assert_eq!(
        order(&wide)[3..],
        [
            roll(4, "node.worker[0]", Some(3)),
            roll(5, "node.worker[1]", Some(3))
        ]
    );
    let plan = plan_of(changes);
    assert!(
        text::render(&plan, false).contains("+/- node.manager[0] (instance) id="),
        "create-before-destroy is shown as +/-"
    );
    assert!(
        text::render(&plan, false)
            .contains("# node.manager[0] will be replaced, the new one first (rolling: 3 of 5)")
    );
    let json = json::render(&plan);
    assert_eq!(json["changes"][0]["rolling"]["of"], 5);
}

#[test]
fn managers_join_one_at_a_time_and_workers_after_the_first() {
    let read = |_: &std::path::Path| Ok("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB test".to_string());
    let text = STACK.replace("[nodes.managers]\ncount = 1", "[nodes.managers]\ncount = 3");
    let stack = crate::config::parse("stacks/demo.toml", &text, &BTreeMap::new(), &read)
        .unwrap()
        .stack;
    let changes = diff(&expand(&stack, &bare_inputs(None)), None, &Live::new());
    let steps = steps(&changes).unwrap();
    let index = |addr: &str| step_of(&steps, &changes, addr);
    let waits_for = |a: &str, b: &str| steps[index(b)].after.contains(&index(a));
    assert!(waits_for("swarm.node.manager[0]", "swarm.node.manager[1]"));
    assert!(waits_for("swarm.node.manager[1]", "swarm.node.manager[2]"));
    assert!(
        !waits_for("swarm.node.manager[0]", "swarm.node.manager[2]"),
        "a chain, not a fan"
    );
    assert!(waits_for("swarm.node.manager[0]", "swarm.node.worker[2]"));
    assert!(
        !waits_for("swarm.node.worker[0]", "swarm.node.worker[1]"),
        "workers join in parallel"
    );
}

#[test]
fn a_new_target_port_takes_over_before_the_old_one_goes() {
    let d = desired();
    let mut live = applied(&d);
    let a = |s: &str| crate::model::Address::new(s);
    // What exists serves port 3000; the stack now says 8080.
    let mut old_group = live.remove(&a("tg.8080")).unwrap();
    if let Spec::TargetGroup(g) = &mut old_group.spec {
        g.port = 3000;
        g.name = "infra-demo-3000".into();
    }
    live.insert(a("tg.3000"), old_group);
    let mut old_targets = live.remove(&a("targets.8080")).unwrap();
    if let Spec::Targets(t) = &mut old_targets.spec {
        t.target_group = a("tg.3000");
    }
    live.insert(a("targets.3000"), old_targets);
    if let Spec::Listener(l) = &mut live.get_mut(&a("listener.https")).unwrap().spec {
        l.action = ListenerAction::Forward {
            target_group: a("tg.3000"),
        };
    }
    let changes = diff(&d, None, &live);
    assert_eq!(
        actions(&changes),
        [
            ("listener.https".to_string(), Action::Update),
            ("targets.3000".to_string(), Action::Delete),
            ("targets.8080".to_string(), Action::Create),
            ("tg.3000".to_string(), Action::Delete),
            ("tg.8080".to_string(), Action::Create),
        ],
        "the listener changes in place"
    );
    let before = |a: &str, b: &str| assert_before(&changes, a, b);
    before("tg.8080", "targets.8080");
    before("targets.8080", "listener.https");
    before("listener.https", "targets.3000");
    before("targets.3000", "tg.3000");
    before("listener.https", "tg.3000");
}

#[test]
fn with_a_bastion_the_nodes_take_ssh_only_from_it_and_the_swarm_waits_for_it() {
    let read = |_: &std::path::Path| Ok("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB test".to_string());
    let text = STACK
        .replace(
            "[ssh]\njump_host = \"bastion.example.com\"\n",
            "[bastion]\n",
        )
        .replace(
            "cidr = \"10.0.0.0/16\"\n",
            "cidr = \"10.0.0.0/16\"\nadmin_cidrs = [\"198.51.100.0/24\"]\n",
        );
    let stack = crate::config::parse("stacks/demo.toml", &text, &BTreeMap::new(), &read)
        .unwrap()
        .stack;
    let desired = expand(&stack, &bare_inputs(Some("#!/bin/sh\n")));
    let spec = |address: &str| {
        &desired
            .iter()
            .find(|r| r.address.as_str() == address)
            .unwrap()
            .spec
    };
    let ingress = |address: &str| match spec(address) {
        Spec::SecurityGroup(g) => g.ingress.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    let node = ingress("sg.node");
    assert!(
        node.contains(&"tcp/22 from sg.bastion".to_string()),
        "{node:?}"
    );
    assert!(
        !node.iter().any(|r| r.starts_with("tcp/22 from 198.")),
        "{node:?}"
    );
    assert_eq!(ingress("sg.bastion"), ["tcp/22 from 198.51.100.0/24"]);
    let Spec::Instance(bastion) = spec("node.bastion[0]") else {
        panic!("no bastion instance")
    };
    assert_eq!(
        (
            bastion.pool.as_str(),
            bastion.instance_type.as_str(),
            &bastion.security_groups
        ),
        ("bastion", "t3.micro", &vec![Address::new("sg.bastion")])
    );
    assert!(
        !desired
            .iter()
            .any(|r| r.address.as_str() == "swarm.node.bastion[0]"),
        "the bastion is no Swarm member"
    );
    let Spec::Targets(t) = spec("targets.8080") else {
        panic!()
    };
    assert!(
        !t.instances.contains(&Address::new("node.bastion[0]")),
        "nor a target"
    );

    let changes = diff(&desired, None, &Live::new());
    let order = steps(&changes).unwrap();
    let bastion = step_of(&order, &changes, "node.bastion[0]");
    let rule = step_of(&order, &changes, "sg.node");
    for member in ["swarm.node.manager[0]", "swarm.node.worker[0]"] {
        let s = step_of(&order, &changes, member);
        assert!(
            order[s].after.contains(&bastion) && order[s].after.contains(&rule),
            "{member} waits for the bastion and the rule that lets it in"
        );
    }
    // Destroyed: the bastion goes after the last step on the Swarm.
    let live = applied(&desired);
    let teardown = diff(&[], None, &live);
    let order = steps(&teardown).unwrap();
    let bastion = step_of(&order, &teardown, "node.bastion[0]");
    let leave = step_of(&order, &teardown, "swarm.node.worker[0]");
    assert!(order[bastion].after.contains(&leave));
}

/// Image `ami-1` everywhere and empty user-data; with `bastion`, its user-data.
fn bare_inputs(bastion: Option<&str>) -> Inputs {
    Inputs {
        manager_ami: "ami-1".into(),
        worker_ami: "ami-1".into(),
        manager_user_data: String::new(),
        worker_user_data: String::new(),
        bastion: bastion.map(|u| ("ami-1".to_string(), u.to_string())),
        account: None,
    }
}

/// A stack with `[registry]`, `[logging]` and policies of the user's: the nodes' role and
/// instance profile, the repositories, the log group, every node launched with the profile; the
/// policies as documents.
#[test]
fn the_nodes_identity_and_the_registry_are_plan_objects() {
    let read = |_: &std::path::Path| Ok("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB test".to_string());
    let text = format!(
        "{STACK}\n[registry]\nrepositories = [\"web\", \"team/worker\"]\nkeep_images = 30\n[logging]\ndriver = \"awslogs\"\nretention_days = 14\n"
    )
    .replace(
        "[nodes.managers]",
        "iam_policies = [\"arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy\"]\nmetadata_hop_limit = 2\n[nodes.managers]",
    );
    let stack = crate::config::parse("stacks/demo.toml", &text, &BTreeMap::new(), &read)
        .unwrap()
        .stack;
    let inputs = Inputs {
        account: Some(crate::model::resources::Account {
            id: "123456789012".into(),
            region: "us-east-1".into(),
            partition: "aws".into(),
        }),
        ..bare_inputs(None)
    };
    let desired = expand(&stack, &inputs);
    let find = |a: &str| {
        desired
            .iter()
            .find(|r| r.address.as_str() == a)
            .map(|r| r.spec.clone())
            .unwrap_or_else(|| panic!("no {a}"))
    };
    let Spec::IamRole(role) = find("iam.role.nodes") else {
        panic!("not a role")
    };
    let pretty = |doc: &str| {
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(doc).unwrap())
            .unwrap()
    };
    insta::assert_snapshot!("node_policy", pretty(&role.policy));
    insta::assert_snapshot!("node_trust_policy", pretty(&role.trust_policy));
    insta::assert_snapshot!(
        "lifecycle_policy",
        pretty(&crate::model::resources::lifecycle_policy(30))
    );
    assert_eq!(
        role.managed_policies,
        ["arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"]
    );
    assert!(
        matches!(find("iam.instance_profile.nodes"), Spec::InstanceProfile(p) if p.role.as_str() == "iam.role.nodes")
    );
    assert!(
        matches!(find("ecr.repository.team/worker"), Spec::Repository(r) if r.keep_images == 30 && r.scan_on_push && !r.immutable_tags)
    );
    assert!(
        matches!(find("logs.group"), Spec::LogGroup(g) if g.name == "/infra/demo" && g.retention_days == 14)
    );
    for r in &desired {
        if let Spec::Instance(i) = &r.spec {
            assert_eq!(
                i.instance_profile.as_ref().map(|a| a.as_str()),
                Some("iam.instance_profile.nodes"),
                "{}",
                r.address
            );
            assert_eq!(i.metadata_hop_limit, 2);
        }
    }
    // The profile exists before any node, its role before it; destroyed, in reverse.
    let changes = diff(&desired, None, &Live::new());
    let order = steps(&changes).unwrap();
    let role = step_of(&order, &changes, "iam.role.nodes");
    let profile = step_of(&order, &changes, "iam.instance_profile.nodes");
    let node = step_of(&order, &changes, "node.worker[0]");
    assert!(order[profile].after.contains(&role));
    assert!(order[node].after.contains(&profile));
    let teardown = diff(&[], None, &applied(&desired));
    let order = steps(&teardown).unwrap();
    let profile = step_of(&order, &teardown, "iam.instance_profile.nodes");
    let node = step_of(&order, &teardown, "node.worker[0]");
    assert!(order[profile].after.contains(&node));
}

/// Without a registry or policies of the user's, the nodes get no role (nothing needs one).
#[test]
fn no_role_without_a_feature_that_needs_one() {
    let desired = desired();
    assert!(
        !desired
            .iter()
            .any(|r| r.address.as_str().starts_with("iam."))
    );
    assert!(desired.iter().all(|r| match &r.spec {
        Spec::Instance(i) => i.instance_profile.is_none() && i.metadata_hop_limit == 1,
        _ => true,
    }));
}
