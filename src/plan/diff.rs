//! desired + prior state + live → changes.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, Change, FieldChange};
use crate::model::{Address, Live, resources::Resource};
use crate::state::State;

pub fn diff(desired: &[Resource], prior: Option<&State>, live: &Live) -> Vec<Change> {
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
                    reason: gone
                        .then(|| "it no longer exists in AWS (removed outside infra)".to_string()),
                })
            }
            Some(obs) => {
                let fields = compare(&obs.spec, &r.spec);
                let replace =
                    obs.spec.kind() != r.spec.kind() || fields.iter().any(|f| f.forces_replacement);
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
                    reason: None,
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
                    reason: address.as_str().starts_with("orphan.").then(|| {
                        "it carries the stack's tag but belongs to no address (left by an interrupted run)".to_string()
                    }),
                },
            );
        }
    }
    cascade(desired, live, &mut changes);
    changes.into_values().collect()
}

fn compare(before: &crate::model::Spec, after: &crate::model::Spec) -> Vec<FieldChange> {
    let (b, a) = (before.attributes(), after.attributes());
    let replace = after.replace_fields();
    a.iter()
        .filter_map(|(name, av)| {
            let bv = b.get(name).cloned().unwrap_or(serde_json::Value::Null);
            (bv != *av).then(|| FieldChange {
                name: name.clone(),
                before: bv,
                after: av.clone(),
                forces_replacement: replace.contains(&name.as_str()),
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
            let Some(dep) = r
                .spec
                .references()
                .into_iter()
                .find(|d| **d != r.address && renewed.contains(*d))
                .cloned()
            else {
                continue;
            };
            let Some(obs) = live.get(&r.address) else {
                continue;
            };
            let attrs = r.spec.attributes();
            let quoted = serde_json::Value::String(dep.to_string()).to_string();
            let forces = r.spec.replace_fields().iter().any(|f| {
                attrs
                    .get(*f)
                    .is_some_and(|v| v.to_string().contains(&quoted))
            });
            let action = if forces {
                Action::Replace
            } else {
                Action::Update
            };
            if current == Some(action) {
                continue;
            }
            let reason = format!("{dep} gets a new id");
            let change = changes.entry(r.address.clone()).or_insert_with(|| Change {
                address: r.address.clone(),
                action,
                id: Some(obs.id.clone()),
                before: Some(obs.spec.clone()),
                after: Some(r.spec.clone()),
                fields: vec![],
                reason: None,
            });
            change.action = action;
            change.reason.get_or_insert(reason);
            changed = true;
        }
        if !changed {
            return;
        }
    }
}
