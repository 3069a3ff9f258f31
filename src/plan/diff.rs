//! desired + prior state + live → changes.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, Change, FieldChange, Rolling};
use crate::model::resources::{Resource, swarm_address};
use crate::model::{Address, Live, Role, Spec};
use crate::state::State;

/// The changes, with replaced Swarm nodes rolling one at a time.
pub fn diff(desired: &[Resource], prior: Option<&State>, live: &Live) -> Vec<Change> {
    diff_with(desired, prior, live, &Options::default())
}

/// What a diff is asked for beyond the desired objects.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Replaced though unchanged (`--replace`).
    pub replace: BTreeSet<Address>,
    /// Workers a rolling replacement replaces at once (at least 1); managers: always one.
    pub max_unavailable: usize,
}

/// The changes between what is desired and what lives.
pub fn diff_with(
    desired: &[Resource],
    prior: Option<&State>,
    live: &Live,
    options: &Options,
) -> Vec<Change> {
    let mut changes: BTreeMap<Address, Change> = BTreeMap::new();
    for r in desired {
        let change = match live.get(&r.address) {
            None => {
                let gone = prior.is_some_and(|p| p.resources.contains_key(&r.address));
                Some(Change {
                    address: r.address.clone(),
                    action: Action::Create,
                    id: None,
                    before: None,
                    after: Some(r.spec.clone()),
                    fields: vec![],
                    reason: gone.then(|| gone_reason(&r.spec)),
                    rolling: None,
                })
            }
            Some(obs) => {
                let fields = compare(&obs.spec, &r.spec);
                let asked = options.replace.contains(&r.address);
                let forced = fields.iter().any(|f| f.forces_replacement);
                let replace = asked || obs.spec.kind() != r.spec.kind() || forced;
                let refused = fields
                    .iter()
                    .find_map(|f| r.spec.refuses_in_place(&f.name, &f.before, &f.after));
                (!fields.is_empty() || replace).then(|| Change {
                    address: r.address.clone(),
                    action: if replace {
                        Action::Replace
                    } else {
                        Action::Update
                    },
                    id: Some(obs.id.clone()),
                    before: Some(obs.spec.clone()),
                    after: Some(r.spec.clone()),
                    fields,
                    reason: match refused {
                        Some(why) => Some(why.to_string()),
                        None => (asked && !forced).then(|| "its replacement was asked for".into()),
                    },
                    rolling: None,
                })
            }
        };
        if let Some(c) = change {
            changes.insert(r.address.clone(), c);
        }
    }
    let wanted: BTreeSet<&Address> = desired.iter().map(|r| &r.address).collect();
    for (address, obs) in live {
        if !wanted.contains(address) {
            changes.insert(
                address.clone(),
                Change {
                    address: address.clone(),
                    action: Action::Delete,
                    id: Some(obs.id.clone()),
                    before: Some(obs.spec.clone()),
                    after: None,
                    fields: vec![],
                    reason: delete_reason(address),
                    rolling: None,
                },
            );
        }
    }
    cascade(desired, live, &mut changes);
    mark_rolling(live, &mut changes, options.max_unavailable.max(1));
    changes.into_values().collect()
}

/// Replacements of Swarm members' instances roll: create before destroy, one node at a time,
/// managers first with the Raft leader last (it hands leadership over once, when demoted),
/// then workers. A member that has not joined, or an instance that is not a member, is
/// replaced as any object is.
fn mark_rolling(live: &Live, changes: &mut BTreeMap<Address, Change>, max_unavailable: usize) {
    let is_leader = |member: &Address| {
        live.get(member)
            .is_some_and(|o| o.outputs.get("leader").is_some_and(|l| l == "true"))
    };
    let mut rolls: Vec<(bool, bool, Address)> = changes
        .values()
        .filter(|c| c.action == Action::Replace)
        .filter_map(|c| match (&c.before, &c.after) {
            (Some(Spec::Instance(i)), Some(after)) if i.pool != Role::Bastion.pool() => {
                let member = swarm_address(&c.address);
                let rejoins = changes
                    .get(&member)
                    .is_some_and(|m| m.action == Action::Replace);
                // A subnet replaced delete-first cannot hold the old and the new node at once.
                let room = after.references().iter().all(|d| {
                    changes.get(*d).is_none_or(|d| {
                        d.action != Action::Replace || matches!(d.spec(), Spec::KeyPair(_))
                    })
                });
                (rejoins && room)
                    .then(|| (i.pool != "manager", is_leader(&member), c.address.clone()))
            }
            _ => None,
        })
        .collect();
    rolls.sort();
    let of = rolls.len();
    let managers = rolls.iter().filter(|(worker, ..)| !worker).count();
    for (n, (worker, _, instance)) in rolls.into_iter().enumerate() {
        let index = n + 1;
        let after = if !worker {
            Some(index - 1)
        } else if index - managers <= max_unavailable {
            // The first workers start once the last manager rolled.
            Some(managers)
        } else {
            Some(index - max_unavailable)
        };
        let after = after.filter(|&a| a > 0);
        let rolling = Some(Rolling { index, of, after });
        for a in [swarm_address(&instance), instance] {
            if let Some(c) = changes.get_mut(&a) {
                c.rolling = rolling;
            }
        }
    }
}

fn gone_reason(spec: &Spec) -> String {
    if spec.on_swarm() {
        "it no longer exists in the Swarm (removed outside infra, or the Swarm was rebuilt)".into()
    } else {
        "it no longer exists in AWS (removed outside infra)".into()
    }
}

fn delete_reason(address: &Address) -> Option<String> {
    if address.as_str().starts_with("orphan.") {
        return Some(
            "it carries the stack's tag but belongs to no address (left by an interrupted run)"
                .into(),
        );
    }
    let successor = address.deposed_from()?;
    Some(format!(
        "{successor} replaced it; a rolling replacement an earlier run started ends with its removal"
    ))
}

fn compare(before: &crate::model::Spec, after: &crate::model::Spec) -> Vec<FieldChange> {
    let (b, a) = (before.attributes(), after.attributes());
    let replace = after.replace_fields();
    a.iter()
        .filter_map(|(name, av)| {
            let bv = b.get(name).cloned().unwrap_or(serde_json::Value::Null);
            (bv != *av).then(|| FieldChange {
                name: name.clone(),
                forces_replacement: replace.contains(&name.as_str())
                    || after.refuses_in_place(name, &bv, av).is_some(),
                before: bv,
                after: av.clone(),
            })
        })
        .collect()
}

/// An object that gets a new id (created or replaced) invalidates what refers to it: a
/// reference in a replace-only field replaces the referrer too, any other is updated in place.
fn cascade(desired: &[Resource], live: &Live, changes: &mut BTreeMap<Address, Change>) {
    loop {
        let renewed: BTreeSet<Address> = changes
            .values()
            .filter(|c| matches!(c.action, Action::Create | Action::Replace))
            .map(|c| c.address.clone())
            .collect();
        let mut changed = false;
        for r in desired {
            let current = changes.get(&r.address).map(|c| c.action);
            if matches!(current, Some(Action::Create | Action::Replace)) {
                continue;
            }
            let deps: Vec<&Address> = r
                .spec
                .references()
                .into_iter()
                .filter(|d| **d != r.address && renewed.contains(*d))
                .collect();
            if deps.is_empty() {
                continue;
            }
            let Some(obs) = live.get(&r.address) else {
                continue;
            };
            // Any renewed dependency that replaces it decides; else it is updated to follow.
            let attrs = r.spec.attributes();
            let replacing = deps.iter().find_map(|dep| {
                let quoted = serde_json::Value::String(dep.to_string()).to_string();
                let in_replace_field = r.spec.replace_fields().iter().any(|f| {
                    attrs
                        .get(*f)
                        .is_some_and(|v| v.to_string().contains(&quoted))
                });
                let why = changes
                    .get(*dep)
                    .filter(|d| d.action == Action::Replace)
                    .and_then(|d| r.spec.replaced_with(d.spec()));
                match why {
                    Some(why) => Some(format!("{dep} is replaced: {why}")),
                    None => in_replace_field.then(|| format!("{dep} gets a new id")),
                }
            });
            let action = if replacing.is_some() {
                Action::Replace
            } else {
                Action::Update
            };
            if current == Some(action) {
                continue;
            }
            let reason = replacing.unwrap_or_else(|| format!("{} gets a new id", deps[0]));
            let change = changes.entry(r.address.clone()).or_insert_with(|| Change {
                address: r.address.clone(),
                action,
                id: Some(obs.id.clone()),
                before: Some(obs.spec.clone()),
                after: Some(r.spec.clone()),
                fields: vec![],
                reason: None,
                rolling: None,
            });
            change.action = action;
            if action == Action::Replace {
                change.reason = Some(reason);
            } else {
                change.reason.get_or_insert(reason);
            }
            changed = true;
        }
        if !changed {
            return;
        }
    }
}
