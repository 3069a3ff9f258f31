//! `infra details`: each service of the stack as it runs now: image and digest, tasks running
//! of desired and on which nodes, the last update's state, the published ports and the target
//! health of the nodes that serve them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::reach::reach;
use super::{Context, Result};
use crate::model::resources::targets_address;
use crate::model::{Address, Live};
use crate::swarm::docker::{RunningTask, ServiceInfo};

pub struct DetailsOptions {
    pub json: bool,
}

pub async fn details(ctx: &Context, opts: DetailsOptions) -> Result<()> {
    let reached = reach(ctx).await?;
    let outside = reached.outside();
    let swarm = reached.swarm(ctx, &outside);
    let (view, tasks) = swarm.services_and_tasks(&reached.managers()).await?;
    let nodes = crate::swarm::addresses_by_hostname(&view.members, &reached.nodes);
    let services: Vec<Value> = view
        .services
        .iter()
        .map(|s| service_row(s, &tasks, &nodes, &reached.live))
        .collect();
    if opts.json {
        let doc = json!({ "stack": reached.stack.name, "services": services });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serializes")
        );
    } else {
        print_services(&reached.stack.name, &services);
    }
    Ok(())
}

/// One service: what Docker holds of it, its tasks by node, each node's health in the target
/// group of each published port.
fn service_row(
    s: &ServiceInfo,
    tasks: &[RunningTask],
    nodes: &BTreeMap<String, Address>,
    live: &Live,
) -> Value {
    let (image, digest) = match s.image.split_once('@') {
        Some((image, digest)) => (image, Some(digest)),
        None => (s.image.as_str(), None),
    };
    let published: Vec<u16> = s
        .ports
        .iter()
        .filter_map(|p| p.split_once(':')?.0.parse().ok())
        .collect();
    let health = |node: Option<&Address>| -> Value {
        let Some(node) = node else { return Value::Null };
        published
            .iter()
            .filter_map(|port| {
                let targets = live.get(&targets_address(*port))?;
                Some((port.to_string(), json!(targets.outputs.get(node.as_str()))))
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let mut rows: Vec<Value> = tasks
        .iter()
        .filter(|t| t.service() == s.name)
        .map(|t| {
            let node = nodes.get(&t.node);
            json!({
                "task": t.id,
                "name": t.name,
                "node": node.map_or(t.node.as_str(), |a| a.as_str()),
                "state": t.current_state,
                "target_health": health(node),
            })
        })
        .collect();
    rows.sort_by(|a, b| a["node"].as_str().cmp(&b["node"].as_str()));
    let (running, desired) = crate::swarm::docker::replica_counts(&s.replicas).unwrap_or((0, 0));
    json!({
        "name": s.name,
        "image": image,
        "digest": digest,
        "mode": s.mode,
        "running": running,
        "desired": desired,
        "update_state": (!s.update_state.is_empty()).then_some(&s.update_state),
        "update_message": (!s.update_message.is_empty()).then_some(&s.update_message),
        "ports": s.ports,
        "tasks": rows,
    })
}

/// A block per service: its line, then a line per task.
fn print_services(stack: &str, services: &[Value]) {
    if services.is_empty() {
        println!("stack {stack}: no services run");
        return;
    }
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    for (i, s) in services.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let ports: Vec<String> = s["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        println!(
            "{}  {}/{} tasks ({})  last update: {}",
            text(&s["name"]),
            s["running"],
            s["desired"],
            text(&s["mode"]),
            text(&s["update_state"])
        );
        if let Some(message) = s["update_message"].as_str() {
            println!("  {message}");
        }
        println!("  image   {}", text(&s["image"]));
        println!(
            "  digest  {}",
            s["digest"].as_str().unwrap_or("(not pinned)")
        );
        println!(
            "  ports   {}",
            if ports.is_empty() {
                "-".to_string()
            } else {
                ports.join(", ")
            }
        );
        for t in s["tasks"].as_array().into_iter().flatten() {
            let health: Vec<String> = t["target_health"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(port, h)| {
                    format!("target {port}: {}", h.as_str().unwrap_or("not registered"))
                })
                .collect();
            println!(
                "  {:<18} {:<14} {:<26} {}",
                text(&t["node"]),
                text(&t["task"]).chars().take(12).collect::<String>(),
                text(&t["state"]),
                health.join(", ")
            );
        }
    }
}
