//! `infra status`: the nodes as AWS and the Swarm see them right now.

use serde_json::{Value, json};

use super::load::load;
use super::nodes::read_swarm_live;
use super::{Context, Result};
use crate::cloud::Cloud;
use crate::model::resources::{swarm_address, targets_address};
use crate::model::{Address, Live, Spec};

pub struct StatusOptions {
    pub json: bool,
}

pub async fn status(ctx: &Context, opts: StatusOptions) -> Result<()> {
    let (loaded, _) = load(ctx).await?;
    let stack = loaded.stack;
    let cloud = Cloud::connect(&stack.name, stack.region.as_deref(), ctx.calls.clone()).await?;
    let backend = super::backend(ctx, &stack.state, stack.region.as_deref()).await?;
    let state = backend.load().await?;
    let named = crate::cloud::Named::of(
        Some(&stack),
        state
            .iter()
            .flat_map(|s| s.resources.values().map(|r| &r.spec)),
    );
    let live = cloud.read_live(&named).await?;
    let pinned = state.map(|s| s.host_keys).unwrap_or_default();
    let (swarm, swarm_note) = if stack.swarm {
        match read_swarm_live(ctx, &cloud, &stack, &live, &pinned).await {
            Ok(members) => (members, None),
            Err(e) => (
                Default::default(),
                Some(format!("the Swarm could not be read: {e}")),
            ),
        }
    } else {
        (Default::default(), None)
    };
    let nodes = node_rows(&stack, &live, &swarm);
    let services = service_rows(&swarm);
    let dns = live
        .get(&Address::new("lb"))
        .and_then(|l| l.outputs.get("dns_name"))
        .cloned();
    if opts.json {
        let doc = json!({
            "stack": stack.name,
            "load_balancer_dns_name": dns,
            "nodes": nodes,
            "services": services,
            "note": swarm_note,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serializes")
        );
        return Ok(());
    }
    print_tables(&stack.name, dns.as_deref(), &nodes, &services);
    if let Some(note) = swarm_note {
        eprintln!("warning: {note}");
    }
    Ok(())
}

/// A row per instance: AWS's view, the member it runs, its health in the target group of the
/// target port (while a new one takes over, the others are not what the listener forwards to).
fn node_rows(stack: &crate::model::Stack, live: &Live, swarm: &Live) -> Vec<Value> {
    let health = live
        .get(&targets_address(stack.load_balancer.target_port))
        .map(|t| t.outputs.clone())
        .unwrap_or_default();
    live.iter()
        .filter(|(_, o)| matches!(o.spec, Spec::Instance(_)))
        .map(|(address, o)| {
            let Spec::Instance(i) = &o.spec else {
                unreachable!("filtered")
            };
            let member = swarm
                .get(&swarm_address(address))
                .and_then(|m| match &m.spec {
                    Spec::SwarmNode(s) => Some(s),
                    _ => None,
                });
            json!({
                "address": address,
                "instance": o.id,
                "zone": o.outputs.get("zone"),
                "instance_state": o.outputs.get("state"),
                "private_ip": o.outputs.get("private_ip"),
                "public_ip": o.outputs.get("public_ip"),
                "pool": i.pool,
                "swarm_role": member.map(|m| m.role.clone()),
                "swarm_availability": member.map(|m| m.availability.clone()),
                "swarm_state": member.map(|m| m.state.clone()),
                "target_health": health.get(address.as_str()),
            })
        })
        .collect()
}

/// A row per service, as the Swarm reports it.
fn service_rows(swarm: &Live) -> Vec<Value> {
    swarm
        .iter()
        .filter(|(_, o)| matches!(o.spec, Spec::Service(_)))
        .map(|(address, o)| {
            let out = |k: &str| o.outputs.get(k).cloned().unwrap_or_default();
            json!({
                "address": address,
                "name": out("name"),
                "replicas": out("replicas"),
                "image": out("image"),
                "update_state": out("update_state"),
            })
        })
        .collect()
}

/// The text form: a table of nodes, then one of services.
fn print_tables(stack: &str, dns: Option<&str>, nodes: &[Value], services: &[Value]) {
    println!("stack {}: load balancer {}", stack, dns.unwrap_or("(none)"));
    if nodes.is_empty() {
        println!("no nodes");
    } else {
        let cell = |n: &Value, k: &str| n[k].as_str().unwrap_or("-").to_string();
        println!(
            "{:<18} {:<21} {:<12} {:<9} {:<15} {:<9} {:<8} {:<6} TARGET",
            "NODE", "INSTANCE", "ZONE", "STATE", "PRIVATE IP", "ROLE", "SWARM", "AVAIL"
        );
        for n in nodes {
            println!(
                "{:<18} {:<21} {:<12} {:<9} {:<15} {:<9} {:<8} {:<6} {}",
                cell(n, "address"),
                cell(n, "instance"),
                cell(n, "zone"),
                cell(n, "instance_state"),
                cell(n, "private_ip"),
                cell(n, "swarm_role"),
                cell(n, "swarm_state"),
                cell(n, "swarm_availability"),
                cell(n, "target_health")
            );
        }
    }
    if !services.is_empty() {
        let cell = |n: &Value, k: &str| n[k].as_str().unwrap_or("-").to_string();
        println!(
            "\n{:<24} {:<10} {:<20} IMAGE",
            "SERVICE", "RUNNING", "LAST UPDATE"
        );
        for s in services {
            println!(
                "{:<24} {:<10} {:<20} {}",
                cell(s, "name"),
                cell(s, "replicas"),
                cell(s, "update_state"),
                cell(s, "image")
            );
        }
    }
}
