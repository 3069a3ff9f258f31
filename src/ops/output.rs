use serde_json::json;

use super::{Context, Result};
use crate::model::Spec;

pub struct OutputOptions {
    pub json: bool,
}

/// What a user needs after an apply, read from the state: the load balancer's DNS name and
/// every node's id and addresses, each repository's URI (to push to).
pub async fn output(ctx: &Context, opts: OutputOptions) -> Result<()> {
    let backend = super::configured_backend(ctx, None).await?;
    let Some(state) = backend.load().await? else {
        return Err(super::OpsError::Usage(format!(
            "stack {} has no state yet: run `infra apply` first",
            ctx.workspace.stack_name
        )));
    };
    let lb = state.resources.get(&crate::model::Address::new("lb"));
    let dns = lb.and_then(|r| r.outputs.get("dns_name")).cloned();
    let nodes: Vec<serde_json::Value> = state
        .resources
        .iter()
        .filter(|(_, r)| matches!(r.spec, Spec::Instance(_)))
        .map(|(a, r)| {
            json!({
                "address": a,
                "id": r.id,
                "zone": r.outputs.get("zone"),
                "private_ip": r.outputs.get("private_ip"),
                "public_ip": r.outputs.get("public_ip"),
            })
        })
        .collect();
    let repositories: serde_json::Map<String, serde_json::Value> = state
        .resources
        .values()
        .filter_map(|r| match &r.spec {
            Spec::Repository(repo) => Some((repo.name.clone(), json!(r.outputs.get("uri")))),
            _ => None,
        })
        .collect();
    if opts.json {
        let doc = json!({
            "stack": state.stack,
            "load_balancer_dns_name": dns,
            "nodes": nodes,
            "repositories": repositories,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serializes")
        );
        return Ok(());
    }
    println!(
        "load_balancer_dns_name = {}",
        dns.as_deref().unwrap_or("(not created)")
    );
    println!("nodes:");
    for n in &nodes {
        let s = |k: &str| n[k].as_str().unwrap_or("-").to_string();
        println!(
            "  {:<18} {:<21} {:<12} private {:<15} public {}",
            s("address"),
            s("id"),
            s("zone"),
            s("private_ip"),
            s("public_ip")
        );
    }
    if !repositories.is_empty() {
        println!("repositories:");
        for (name, uri) in &repositories {
            println!("  {:<18} {}", name, uri.as_str().unwrap_or("-"));
        }
    }
    Ok(())
}
