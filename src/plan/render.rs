//! Plan output: Terraform-like text for people, a versioned JSON document for machines.

use std::fmt::Write;

use console::Style;
use serde_json::{Value, json};

use super::{Action, Change, PLAN_FORMAT_VERSION, Plan};
use crate::model::SENSITIVE_FIELD;

struct Palette {
    add: Style,
    change: Style,
    destroy: Style,
    dim: Style,
    bold: Style,
}

impl Palette {
    fn new(color: bool) -> Self {
        let s = |st: Style| st.force_styling(color);
        Palette {
            add: s(Style::new().green()),
            change: s(Style::new().yellow()),
            destroy: s(Style::new().red()),
            dim: s(Style::new().dim()),
            bold: s(Style::new().bold()),
        }
    }
}

pub mod text {
    use super::*;

    pub fn render(plan: &Plan, color: bool) -> String {
        let p = Palette::new(color);
        let mut out = String::new();
        for n in &plan.notices {
            let _ = writeln!(out, "{} {n}\n", p.bold.apply_to("Note:"));
        }
        if !plan.has_changes() {
            let what = if plan.destroy {
                "Nothing to destroy"
            } else {
                "The stack matches the configuration"
            };
            let _ = writeln!(out, "{} {}.", p.bold.apply_to("No changes."), what);
            return out;
        }
        let _ = writeln!(out, "infra will perform the following actions:\n");
        for c in &plan.changes {
            change(&mut out, c, &p);
        }
        let s = plan.summary();
        let _ = writeln!(
            out,
            "{} {} to add, {} to change, {} to destroy.",
            p.bold.apply_to("Plan:"),
            s.add,
            s.change,
            s.destroy
        );
        out
    }

    fn change(out: &mut String, c: &Change, p: &Palette) {
        let (verb, symbol, style) = match (c.action, c.rolling) {
            (Action::Create, _) => ("will be created", "  +", &p.add),
            (Action::Update, _) => ("will be updated in place", "  ~", &p.change),
            (Action::Replace, Some(_)) => ("will be replaced, the new one first", "+/-", &p.change),
            (Action::Replace, None) => ("must be replaced", "-/+", &p.destroy),
            (Action::Delete, _) => ("will be destroyed", "  -", &p.destroy),
        };
        let roll = c
            .rolling
            .map(|r| format!(" (rolling: {} of {})", r.index, r.of))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}",
            p.bold.apply_to(format!("# {} {}{roll}", c.address, verb))
        );
        if let Some(reason) = &c.reason {
            let _ = writeln!(out, "  {}", p.dim.apply_to(format!("# (because {reason})")));
        }
        let id =
            c.id.as_ref()
                .map(|i| format!(" id={i}"))
                .unwrap_or_default();
        let _ = writeln!(
            out,
            "{} {} ({}){}",
            style.apply_to(symbol),
            c.address,
            c.spec().kind(),
            p.dim.apply_to(id)
        );
        match c.action {
            Action::Create => {
                let attrs = masked(c.spec());
                let width = attrs.keys().map(String::len).max().unwrap_or(0);
                for (k, v) in &attrs {
                    let _ = writeln!(
                        out,
                        "      {} {k:width$} = {}",
                        p.add.apply_to("+"),
                        value(v)
                    );
                }
            }
            Action::Update | Action::Replace => {
                let width = c.fields.iter().map(|f| f.name.len()).max().unwrap_or(0);
                for f in &c.fields {
                    let forces = if f.forces_replacement {
                        format!(" {}", p.destroy.apply_to("# forces replacement"))
                    } else {
                        String::new()
                    };
                    if is_sensitive(c, &f.name) {
                        let _ = writeln!(
                            out,
                            "      {} {:width$} = (sensitive value changed){forces}",
                            p.change.apply_to("~"),
                            f.name
                        );
                    } else if let (Value::Array(b), Value::Array(a)) = (&f.before, &f.after) {
                        let _ = writeln!(
                            out,
                            "      {} {:width$} = [{forces}",
                            p.change.apply_to("~"),
                            f.name
                        );
                        for item in a.iter().filter(|i| !b.contains(i)) {
                            let _ =
                                writeln!(out, "          {} {},", p.add.apply_to("+"), value(item));
                        }
                        for item in b.iter().filter(|i| !a.contains(i)) {
                            let _ = writeln!(
                                out,
                                "          {} {},",
                                p.destroy.apply_to("-"),
                                value(item)
                            );
                        }
                        let _ = writeln!(out, "        ]");
                    } else {
                        let (b, a) = (value(&f.before), value(&f.after));
                        let _ = writeln!(
                            out,
                            "      {} {:width$} = {b} -> {a}{forces}",
                            p.change.apply_to("~"),
                            f.name
                        );
                    }
                }
            }
            Action::Delete => {}
        }
        out.push('\n');
    }

    fn value(v: &Value) -> String {
        match v {
            Value::Null => "(none)".to_string(),
            other => other.to_string(),
        }
    }
}

/// A spec's attributes with the sensitive one masked.
fn masked(spec: &crate::model::Spec) -> serde_json::Map<String, Value> {
    let mut attrs = spec.attributes();
    if spec.kind() == SENSITIVE_FIELD.0
        && let Some(v) = attrs.get_mut(SENSITIVE_FIELD.1)
    {
        *v = json!("(sensitive value)");
    }
    attrs
}

fn is_sensitive(c: &Change, field: &str) -> bool {
    (c.spec().kind(), field) == SENSITIVE_FIELD
}

pub mod json {
    use super::*;

    /// The `--json` document; its shape is documented in docs/plan-json.md.
    pub fn render(plan: &Plan) -> Value {
        let s = plan.summary();
        let changes: Vec<Value> = plan
            .changes
            .iter()
            .map(|c| {
                json!({
                    "address": c.address,
                    "kind": c.spec().kind(),
                    "action": c.action,
                    "id": c.id,
                    "reason": c.reason,
                    "rolling": c.rolling,
                    "fields": c.fields.iter().map(|f| {
                        let mut f = f.clone();
                        if is_sensitive(c, &f.name) {
                            f.before = json!("(sensitive value)");
                            f.after = json!("(sensitive value changed)");
                        }
                        f
                    }).collect::<Vec<_>>(),
                    "before": c.before.as_ref().map(masked),
                    "after": c.after.as_ref().map(masked),
                })
            })
            .collect();
        json!({
            "format_version": PLAN_FORMAT_VERSION.to_string(),
            "stack": plan.stack,
            "lineage": plan.lineage,
            "serial": plan.serial,
            "destroy": plan.destroy,
            "changed": plan.has_changes(),
            "notices": plan.notices,
            "summary": s,
            "changes": changes,
        })
    }
}

pub mod markdown {
    use super::*;

    /// A pull-request comment: the counts, a table of changes, the full plan folded away. Only
    /// attributes are shown, which never hold a secret (bodies are represented by hashes).
    pub fn render(plan: &Plan) -> String {
        let s = plan.summary();
        let mut out = String::new();
        let verb = if plan.destroy { "destroy" } else { "plan" };
        let notices: String = plan
            .notices
            .iter()
            .map(|n| format!("\n> **Note:** {n}\n"))
            .collect();
        if !plan.has_changes() {
            let _ = writeln!(
                out,
                "### infra {verb} `{}`: no changes\n\nThe stack matches the configuration.\n{notices}",
                plan.stack
            );
            return out;
        }
        let _ = writeln!(
            out,
            "### infra {verb} `{}`: {} to add, {} to change, {} to destroy\n",
            plan.stack, s.add, s.change, s.destroy
        );
        out.push_str(&notices);
        let _ = writeln!(
            out,
            "| | address | kind | what changes |\n|---|---|---|---|"
        );
        for c in &plan.changes {
            let symbol = match (c.action, c.rolling) {
                (Action::Create, _) => "➕ create".to_string(),
                (Action::Update, _) => "✏️ update".to_string(),
                (Action::Replace, Some(r)) => {
                    format!("♻️ replace (rolling: {} of {})", r.index, r.of)
                }
                (Action::Replace, None) => "♻️ replace".to_string(),
                (Action::Delete, _) => "❌ delete".to_string(),
            };
            let what = match c.action {
                Action::Create | Action::Delete => String::new(),
                _ if c.fields.is_empty() => c.reason.clone().unwrap_or_default(),
                _ => c
                    .fields
                    .iter()
                    .map(|f| {
                        if f.forces_replacement {
                            format!("`{}` (forces replacement)", f.name)
                        } else {
                            format!("`{}`", f.name)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let _ = writeln!(
                out,
                "| {symbol} | `{}` | {} | {} |",
                c.address,
                c.spec().kind(),
                what.replace('|', "\\|")
            );
        }
        let _ = writeln!(out, "\n<details><summary>Full plan</summary>\n\n```diff");
        for line in text::render(plan, false).replace("```", "'''").lines() {
            let _ = writeln!(out, "{}", diff_line(line));
        }
        let _ = writeln!(out, "```\n\n</details>");
        out
    }

    /// GitHub colours a diff line by its first character: move the plan's marker there.
    fn diff_line(line: &str) -> String {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        let marker = [
            ("-/+ ", '!'),
            ("+/- ", '!'),
            ("+ ", '+'),
            ("- ", '-'),
            ("~ ", '!'),
        ]
        .iter()
        .find(|(prefix, _)| body.starts_with(prefix))
        .map(|(_, m)| *m);
        match marker {
            Some(m) => format!("{m}{}{body}", " ".repeat(indent.max(1) - 1)),
            None => line.to_string(),
        }
    }
}
