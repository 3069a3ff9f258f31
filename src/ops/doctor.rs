//! `infra doctor`: checks the live cluster for the pitfalls that bite Docker Swarm on AWS, each
//! with what to do. Read only: AWS (one read of the stack, the certificate, the load balancer's
//! attributes), the Swarm through one manager, and each node's facts (one SSH call a node).

use std::collections::BTreeMap;

use futures::StreamExt;
use serde::Serialize;

use super::reach::{Reached, reach};
use super::{Context, Result};
use crate::model::resources::ESP;
use crate::model::{Address, Live, Rule, Source, Spec};
use crate::swarm::docker::{Member, NetworkInfo, NodeFacts, ServiceInfo};

pub struct DoctorOptions {
    pub json: bool,
}

/// Ordered: the worst of several is their `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One check's outcome: what was found, and what to do unless it is fine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub level: Level,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    fn ok(check: &'static str, detail: impl Into<String>) -> Self {
        Finding {
            check,
            level: Level::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn bad(check: &'static str, level: Level, detail: String, fix: String) -> Self {
        Finding {
            check,
            level,
            detail,
            fix: Some(fix),
        }
    }
}

/// Nodes read at once.
const READ_AT_ONCE: usize = 8;

/// Runs every check; true when none failed (exit 0), false otherwise (exit 1).
pub async fn doctor(ctx: &Context, opts: DoctorOptions) -> Result<bool> {
    let reached = reach(ctx).await?;
    let mut findings = vec![swarm_ports(&reached.live)];
    let services = swarm_and_nodes(ctx, &reached, &mut findings).await;
    findings.push(metadata_hop_limit(&reached));
    findings.extend(load_balancer(&reached, &services).await?);
    let healthy = findings.iter().all(|f| f.level != Level::Fail);
    if opts.json {
        let doc = serde_json::json!({
            "stack": reached.stack.name,
            "healthy": healthy,
            "findings": findings,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serializes")
        );
    } else {
        for f in &findings {
            let level = match f.level {
                Level::Ok => "ok",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            println!("{level:<5} {:<20} {}", f.check, f.detail);
            if let Some(fix) = &f.fix {
                println!("{:<26} fix: {fix}", "");
            }
        }
        let failed = findings.iter().filter(|f| f.level == Level::Fail).count();
        println!(
            "\n{} checks, {failed} failed, {} warnings",
            findings.len(),
            findings.iter().filter(|f| f.level == Level::Warn).count()
        );
    }
    Ok(healthy)
}

/// The Swarm's members and each node's own facts: engine versions, clocks, disks, the overlay
/// MTU against the nodes' interfaces. Returns the stack's services, for the checks after.
async fn swarm_and_nodes(
    ctx: &Context,
    reached: &Reached,
    findings: &mut Vec<Finding>,
) -> Vec<ServiceInfo> {
    let outside = reached.outside();
    let swarm = reached.swarm(ctx, &outside);
    let (networks, services) = match swarm.services_and_tasks(&reached.managers()).await {
        Ok((view, _)) => {
            findings.push(members(&view.members, reached));
            (view.networks, view.services)
        }
        Err(e) => {
            findings.push(Finding::bad(
                "swarm",
                Level::Fail,
                format!("the Swarm could not be read: {e}"),
                "see `infra status`; `infra apply` rebuilds what is missing".into(),
            ));
            (Vec::new(), Vec::new())
        }
    };
    let read: Vec<_> = futures::stream::iter(&reached.nodes)
        .map(|n| {
            let swarm = &swarm;
            async move { (n.host.address.clone(), swarm.node_facts(n).await) }
        })
        .buffer_unordered(READ_AT_ONCE)
        .collect()
        .await;
    let mut facts = BTreeMap::new();
    for (node, result) in read {
        match result {
            // The clock as its offset from this machine's: the nodes are compared to each other.
            Ok((f, here)) => {
                let clock = f.clock - here;
                facts.insert(node, NodeFacts { clock, ..f });
            }
            Err(e) => findings.push(Finding::bad(
                "node",
                Level::Fail,
                format!("{node} cannot be read: {e}"),
                format!("`infra ssh {node}` to look; `infra apply --replace {node}` replaces it"),
            )),
        }
    }
    if !facts.is_empty() {
        findings.push(engine_versions(&facts));
        findings.push(clocks(&facts));
        findings.push(disks(&facts));
        findings.push(overlay_mtu(&networks, &facts));
    }
    services
}

/// Every node a ready, active member.
fn members(members: &[Member], reached: &Reached) -> Finding {
    let mut bad = Vec::new();
    for n in &reached.nodes {
        match members.iter().find(|m| m.addr == n.private_ip) {
            None => bad.push(format!("{} is not a member", n.host.address)),
            Some(m) if m.state != "ready" => bad.push(format!("{} is {}", n.host.address, m.state)),
            Some(_) => {}
        }
    }
    if bad.is_empty() {
        Finding::ok(
            "swarm",
            format!("{} nodes, all ready members", reached.nodes.len()),
        )
    } else {
        Finding::bad(
            "swarm",
            Level::Fail,
            bad.join(", "),
            "`infra plan` shows what apply would do about it".into(),
        )
    }
}

/// The ports a Swarm needs among its nodes
/// (https://docs.docker.com/engine/swarm/swarm-tutorial/#open-protocols-and-ports-between-the-hosts),
/// each allowed from the nodes' own group.
fn swarm_ports(live: &Live) -> Finding {
    let check = "swarm ports";
    let group = Address::new("sg.node");
    let Some(Spec::SecurityGroup(sg)) = live.get(&group).map(|o| &o.spec) else {
        return Finding::bad(
            check,
            Level::Fail,
            "the nodes' security group (sg.node) does not exist".into(),
            "run `infra apply`".into(),
        );
    };
    let needed = [
        ("tcp", 2377, "2377/tcp (cluster management)"),
        ("tcp", 7946, "7946/tcp (node communication)"),
        ("udp", 7946, "7946/udp (node communication)"),
        ("udp", 4789, "4789/udp (overlay network traffic)"),
        (ESP, 0, "ESP (encrypted overlay networks)"),
    ];
    let allows = |protocol: &str, port: u16| {
        sg.ingress.iter().any(|r: &Rule| {
            r.source == Source::Group(group.clone())
                && (r.protocol == "-1"
                    || (r.protocol == protocol
                        && (protocol == ESP || (r.from_port..=r.to_port).contains(&port))))
        })
    };
    let missing: Vec<&str> = needed
        .iter()
        .filter(|(protocol, port, _)| !allows(protocol, *port))
        .map(|(_, _, name)| *name)
        .collect();
    if missing.is_empty() {
        Finding::ok(
            check,
            "sg.node allows 2377/tcp, 7946/tcp+udp, 4789/udp and ESP among the nodes",
        )
    } else {
        Finding::bad(
            check,
            Level::Fail,
            format!(
                "sg.node does not allow {} among the nodes: members and overlay networks break",
                missing.join(", ")
            ),
            "run `infra apply` (it restores the group's rules; `infra plan` shows them)".into(),
        )
    }
}

/// One Docker Engine version on every node: a Swarm of mixed versions is supported only while a
/// rolling upgrade runs through it.
fn engine_versions(facts: &BTreeMap<Address, NodeFacts>) -> Finding {
    let check = "docker engine";
    let mut by_version: BTreeMap<&str, Vec<&Address>> = BTreeMap::new();
    for (node, f) in facts {
        by_version.entry(f.engine.as_str()).or_default().push(node);
    }
    if by_version.len() == 1 && !by_version.contains_key("unknown") {
        let version = by_version.keys().next().expect("one");
        return Finding::ok(check, format!("{version} on every node"));
    }
    let most = by_version
        .iter()
        .max_by_key(|(_, nodes)| nodes.len())
        .map(|(v, _)| *v)
        .unwrap_or_default();
    let odd: Vec<String> = by_version
        .iter()
        .filter(|(v, _)| **v != most)
        .flat_map(|(v, nodes)| nodes.iter().map(move |n| format!("{n} runs {v}")))
        .collect();
    Finding::bad(
        check,
        Level::Fail,
        format!("{} (the others {most})", odd.join(", ")),
        "replace the odd nodes so every node runs one version: `infra roll-nodes --all`, or `infra apply --replace NODE`".into(),
    )
}

/// The nodes' clocks, against each other (and this machine's, for the record).
fn clocks(facts: &BTreeMap<Address, NodeFacts>) -> Finding {
    let check = "clocks";
    let offsets: Vec<(&Address, f64)> = facts.iter().map(|(n, f)| (n, f.clock)).collect();
    let min = offsets.iter().map(|(_, c)| *c).fold(f64::MAX, f64::min);
    let max = offsets.iter().map(|(_, c)| *c).fold(f64::MIN, f64::max);
    let spread = max - min;
    if spread <= 1.0 {
        let here = offsets.iter().map(|(_, c)| c.abs()).fold(0.0, f64::max);
        return Finding::ok(
            check,
            format!(
                "the nodes' clocks agree within {:.0} ms (and with this machine's within {:.0} ms)",
                spread * 1000.0,
                here * 1000.0
            ),
        );
    }
    let (fast, _) = offsets
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("nodes");
    Finding::bad(
        check,
        Level::Fail,
        format!("the nodes' clocks differ by {spread:.1} s ({fast} is ahead): log order, TLS certificates and AWS request signatures (refused beyond 5 minutes) suffer"),
        "keep chrony running with the Amazon Time Sync Service (169.254.169.123), as Amazon Linux does by default".into(),
    )
}

/// Free space on Docker's file system: images, containers and logs live there.
fn disks(facts: &BTreeMap<Address, NodeFacts>) -> Finding {
    let check = "disk";
    let mut low = Vec::new();
    let mut level = Level::Ok;
    for (node, f) in facts {
        let Some((size, free)) = f.disk else { continue };
        let share = free as f64 / size.max(1) as f64;
        let gib = free as f64 / (1u64 << 30) as f64;
        if share < 0.10 || free < 1 << 30 {
            level = Level::Fail;
        } else if share < 0.20 {
            level = level.max(Level::Warn);
        } else {
            continue;
        }
        low.push(format!(
            "{node}: {gib:.1} GiB free ({:.0} %)",
            share * 100.0
        ));
    }
    if low.is_empty() {
        return Finding::ok(check, "every node has at least 20 % of its disk free");
    }
    Finding::bad(
        check,
        level,
        low.join(", "),
        "remove unused images (`infra ssh NODE -- docker image prune -a`), or give the pool a larger root_volume_gb (a rolling replacement)".into(),
    )
}

/// Docker's overlay networks wrap each packet in VXLAN (50 bytes): a network's MTU option
/// (default 1500) is the size of the wrapped packet, so the nodes' interfaces must carry it
/// (https://docs.docker.com/engine/network/drivers/overlay/#options), or large packets between
/// tasks are silently dropped.
fn overlay_mtu(networks: &[NetworkInfo], facts: &BTreeMap<Address, NodeFacts>) -> Finding {
    let check = "overlay mtu";
    let Some((node, (dev, path))) = facts
        .iter()
        .filter_map(|(n, f)| Some((n, f.mtu.clone()?)))
        .min_by_key(|(_, (_, mtu))| *mtu)
    else {
        return Finding::ok(check, "no interface MTU could be read");
    };
    let too_large: Vec<String> = networks
        .iter()
        .filter(|n| n.driver == "overlay")
        .filter_map(|n| {
            let mtu: u32 = n
                .options
                .get("com.docker.network.driver.mtu")
                .and_then(|m| m.parse().ok())
                .unwrap_or(1500);
            (mtu > path).then(|| format!("{} ({mtu})", n.name))
        })
        .collect();
    if too_large.is_empty() {
        return Finding::ok(
            check,
            format!(
                "the stack's overlay networks fit the nodes' smallest MTU ({path} on {node} {dev})"
            ),
        );
    }
    Finding::bad(
        check,
        Level::Fail,
        format!(
            "{}: more than the MTU of {node}'s {dev} ({path}); large packets between tasks are dropped",
            too_large.join(", ")
        ),
        format!(
            "set the network's `driver_opts: com.docker.network.driver.mtu: \"{path}\"` in the compose file"
        ),
    )
}

/// The instances' metadata hop limit: 1 keeps the node's role out of reach of containers (one
/// hop further, behind Docker's bridge); a container that needs it needs 2.
fn metadata_hop_limit(reached: &Reached) -> Finding {
    let check = "metadata hop limit";
    let wanted = reached.stack.node_access.metadata_hop_limit;
    let mut differ = Vec::new();
    for (address, o) in &reached.live {
        if let Spec::Instance(i) = &o.spec
            && i.metadata_hop_limit != wanted
        {
            differ.push(format!("{address} has {}", i.metadata_hop_limit));
        }
    }
    if !differ.is_empty() {
        return Finding::bad(
            check,
            Level::Warn,
            format!("the stack says {wanted}, but {}", differ.join(", ")),
            "run `infra apply` (it sets the hop limit in place)".into(),
        );
    }
    Finding::ok(
        check,
        if wanted < 2 {
            format!(
                "{wanted} on every node: containers cannot reach the instance metadata (the node's role); set [nodes] metadata_hop_limit = 2 if one must"
            )
        } else {
            format!(
                "{wanted} on every node: containers reach the instance metadata and the node's role"
            )
        },
    )
}

/// The HTTPS listener's certificate, and the idle timeout the services' keep-alive must exceed.
async fn load_balancer(reached: &Reached, services: &[ServiceInfo]) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    let lb = &reached.stack.load_balancer;
    if !lb.certificate_arn.is_empty() {
        let cert = reached.cloud.certificate(&lb.certificate_arn).await?;
        let now = chrono::Utc::now().timestamp();
        findings.push(certificate(&lb.certificate_arn, cert.as_ref(), now));
    }
    if let Some(arn) = reached
        .live
        .get(&Address::new("lb"))
        .and_then(|o| o.outputs.get("arn"))
    {
        let idle = reached.cloud.idle_timeout(arn).await?;
        findings.push(keep_alive(services, idle));
    }
    Ok(findings)
}

/// The label that says a service's HTTP keep-alive timeout (`keep_alive`, or a compose file's
/// `deploy.labels`).
pub const LABEL_KEEP_ALIVE: &str = "infra.keep-alive";

/// Each service's keep-alive, where known, against the load balancer's idle timeout: a service
/// that closes an idle connection first may close one the load balancer just sent a request on
/// (a 502). https://docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#connection-idle-timeout
fn keep_alive(services: &[ServiceInfo], idle: u64) -> Finding {
    let check = "keep-alive";
    let known: Vec<(&str, Option<std::time::Duration>)> = services
        .iter()
        .filter_map(|s| {
            let label = s.labels.get(LABEL_KEEP_ALIVE)?;
            Some((s.name.as_str(), humantime::parse_duration(label).ok()))
        })
        .collect();
    if known.is_empty() {
        return Finding::ok(
            check,
            format!(
                "the load balancer keeps idle connections {idle} s; no service says its keep-alive (`keep_alive`): each must be longer"
            ),
        );
    }
    let short: Vec<String> = known
        .iter()
        .filter(|(_, d)| d.is_none_or(|d| d.as_secs() <= idle))
        .map(|(name, d)| match d {
            Some(d) => format!("{name} keeps idle connections {} s", d.as_secs()),
            None => format!("{name}'s {LABEL_KEEP_ALIVE} is not a duration"),
        })
        .collect();
    if short.is_empty() {
        return Finding::ok(
            check,
            format!(
                "every service that says it keeps idle connections longer than the load balancer's {idle} s"
            ),
        );
    }
    Finding::bad(
        check,
        Level::Fail,
        format!(
            "{}, the load balancer {idle} s: the service may close a connection the load balancer is about to reuse (a 502)",
            short.join(", ")
        ),
        format!(
            "make the server's keep-alive timeout longer than {idle} s (Node.js: server.keepAliveTimeout; gunicorn: --keep-alive), then set keep_alive"
        ),
    )
}

fn certificate(arn: &str, cert: Option<&crate::cloud::CertificateFacts>, now: i64) -> Finding {
    let check = "certificate";
    let Some(cert) = cert else {
        return Finding::bad(
            check,
            Level::Fail,
            format!("ACM does not know {arn}"),
            "set [load_balancer] certificate_arn to a certificate of the stack's region".into(),
        );
    };
    if cert.status != "ISSUED" {
        return Finding::bad(
            check,
            Level::Fail,
            format!("{arn} is {}", cert.status),
            "see the certificate in ACM (aws acm describe-certificate)".into(),
        );
    }
    let Some(not_after) = cert.not_after else {
        return Finding::ok(check, "issued");
    };
    let days = (not_after - now) / 86_400;
    let level = match days {
        ..14 => Level::Fail,
        14..30 => Level::Warn,
        _ => return Finding::ok(check, format!("issued, expires in {days} days")),
    };
    Finding::bad(
        check,
        level,
        format!("{arn} expires in {days} days"),
        "ACM renews the certificates it issued 60 days ahead (a failed renewal shows in ACM); import a new one in place of an imported certificate".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(engine: &str, clock: f64) -> NodeFacts {
        NodeFacts {
            engine: engine.into(),
            clock,
            disk: Some((100 << 30, 50 << 30)),
            mtu: Some(("eth0".into(), 9001)),
        }
    }

    #[test]
    fn finds_a_node_on_another_engine_and_clocks_apart() {
        let mut nodes = BTreeMap::from([
            (Address::node("manager", 0), facts("26.1.5", 100.0)),
            (Address::node("worker", 0), facts("26.1.5", 100.2)),
        ]);
        assert_eq!(engine_versions(&nodes).level, Level::Ok);
        assert_eq!(clocks(&nodes).level, Level::Ok);
        nodes.insert(Address::node("worker", 1), facts("20.10.24", 103.0));
        let f = engine_versions(&nodes);
        assert_eq!(
            (f.level, f.detail.as_str()),
            (
                Level::Fail,
                "node.worker[1] runs 20.10.24 (the others 26.1.5)"
            )
        );
        let f = clocks(&nodes);
        assert_eq!(f.level, Level::Fail);
        assert!(
            f.detail.contains("3.0 s (node.worker[1] is ahead)"),
            "{}",
            f.detail
        );
    }

    #[test]
    fn finds_full_disks_and_overlays_larger_than_the_path() {
        let mut nodes = BTreeMap::from([(Address::node("manager", 0), facts("26.1.5", 0.0))]);
        assert_eq!(disks(&nodes).level, Level::Ok);
        nodes.get_mut(&Address::node("manager", 0)).unwrap().disk = Some((100 << 30, 15 << 30));
        assert_eq!(disks(&nodes).level, Level::Warn);
        nodes.get_mut(&Address::node("manager", 0)).unwrap().mtu = Some(("eth0".into(), 1450));
        let net = |mtu: Option<&str>| NetworkInfo {
            id: "n1".into(),
            name: "s_default".into(),
            driver: "overlay".into(),
            attachable: false,
            internal: false,
            options: mtu
                .map(|m| BTreeMap::from([("com.docker.network.driver.mtu".into(), m.into())]))
                .unwrap_or_default(),
            labels: BTreeMap::new(),
        };
        let f = overlay_mtu(&[net(None)], &nodes);
        assert_eq!(f.level, Level::Fail);
        assert_eq!(
            f.fix.as_deref(),
            Some(
                "set the network's `driver_opts: com.docker.network.driver.mtu: \"1450\"` in the compose file"
            )
        );
        assert_eq!(overlay_mtu(&[net(Some("1450"))], &nodes).level, Level::Ok);
    }

    #[test]
    fn finds_a_swarm_port_missing_from_the_nodes_group() {
        let live = |rules: &[&str]| {
            let sg = crate::model::SecurityGroupSpec {
                name: "infra-s-node".into(),
                description: String::new(),
                vpc: Address::new("vpc"),
                ingress: rules.iter().map(|r| r.parse().unwrap()).collect(),
            };
            Live::from([(
                Address::new("sg.node"),
                crate::model::Observed {
                    id: "sg-1".into(),
                    spec: Spec::SecurityGroup(sg),
                    outputs: BTreeMap::new(),
                },
            )])
        };
        let all = [
            "tcp/2377 from sg.node",
            "tcp/7946 from sg.node",
            "udp/7946 from sg.node",
            "udp/4789 from sg.node",
            "esp from sg.node",
        ];
        assert_eq!(swarm_ports(&live(&all)).level, Level::Ok);
        assert_eq!(swarm_ports(&live(&["-1 from sg.node"])).level, Level::Ok);
        let f = swarm_ports(&live(&[
            all[0],
            all[1],
            all[3],
            all[4],
            "udp/7946 from 10.0.0.0/16",
        ]));
        assert_eq!(f.level, Level::Fail);
        assert!(
            f.detail.contains("7946/udp (node communication)"),
            "{}",
            f.detail
        );
        assert_eq!(swarm_ports(&Live::new()).level, Level::Fail);
    }

    #[test]
    fn a_keep_alive_shorter_than_the_idle_timeout_fails() {
        let service = |name: &str, label: Option<&str>| ServiceInfo {
            id: name.into(),
            name: name.into(),
            image: "web:1".into(),
            mode: "global".into(),
            ports: vec![],
            secrets: vec![],
            configs: vec![],
            networks: vec![],
            labels: label
                .map(|l| BTreeMap::from([(LABEL_KEEP_ALIVE.to_string(), l.to_string())]))
                .unwrap_or_default(),
            replicas: "1/1".into(),
            update_state: String::new(),
            update_message: String::new(),
            tasks: vec![],
        };
        assert_eq!(keep_alive(&[service("s_web", None)], 60).level, Level::Ok);
        assert_eq!(
            keep_alive(&[service("s_web", Some("75s"))], 60).level,
            Level::Ok
        );
        let f = keep_alive(
            &[service("s_web", Some("5s")), service("s_api", Some("2m"))],
            60,
        );
        assert_eq!(f.level, Level::Fail);
        assert!(
            f.detail
                .starts_with("s_web keeps idle connections 5 s, the load balancer 60 s"),
            "{}",
            f.detail
        );
    }

    #[test]
    fn a_certificate_near_its_end_fails() {
        let cert = |days: i64| crate::cloud::CertificateFacts {
            status: "ISSUED".into(),
            not_after: Some(days * 86_400),
        };
        assert_eq!(certificate("arn", Some(&cert(90)), 0).level, Level::Ok);
        assert_eq!(certificate("arn", Some(&cert(20)), 0).level, Level::Warn);
        assert_eq!(certificate("arn", Some(&cert(3)), 0).level, Level::Fail);
        assert_eq!(certificate("arn", None, 0).level, Level::Fail);
    }
}
