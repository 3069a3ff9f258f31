use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A stable name for one object the stack owns, e.g. `vpc`, `subnet[1]`, `node.worker[2]`.
/// It is written into the `infra:address` tag, so it must never change meaning.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Address(String);

impl Address {
    pub fn new(s: impl Into<String>) -> Self {
        Address(s.into())
    }

    pub fn indexed(base: &str, index: usize) -> Self {
        Address(format!("{base}[{index}]"))
    }

    pub fn node(pool: &str, index: usize) -> Self {
        Address::indexed(&format!("node.{pool}"), index)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where an object replaced create-before-destroy lives until it is removed: its instance
    /// is retagged `node.worker[1]/old` before the new one is launched under `node.worker[1]`,
    /// so the two are never read as one (and a run killed mid-roll finds the old one by name).
    pub fn deposed(&self) -> Self {
        Address(format!("{}{DEPOSED}", self.0))
    }

    /// `node.worker[1]/old` → Some(`node.worker[1]`).
    pub fn deposed_from(&self) -> Option<Self> {
        self.0.strip_suffix(DEPOSED).map(Address::new)
    }

    /// `node.worker[12]` → (`node.worker`, Some(12)).
    pub fn split_index(&self) -> (&str, Option<usize>) {
        if let Some(open) = self.0.rfind('[')
            && self.0.ends_with(']')
            && let Ok(i) = self.0[open + 1..self.0.len() - 1].parse()
        {
            return (&self.0[..open], Some(i));
        }
        (&self.0, None)
    }
}

const DEPOSED: &str = "/old";

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Natural order, so `node.worker[2]` sorts before `node.worker[10]`.
impl Ord for Address {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, ai) = self.split_index();
        let (b, bi) = other.split_index();
        a.cmp(b)
            .then(ai.cmp(&bi))
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for Address {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut v = [
            Address::node("worker", 10),
            Address::node("worker", 2),
            Address::new("lb"),
        ];
        v.sort();
        let names: Vec<_> = v.iter().map(|a| a.to_string()).collect();
        assert_eq!(names, ["lb", "node.worker[2]", "node.worker[10]"]);
    }

    #[test]
    fn split() {
        assert_eq!(
            Address::node("manager", 3).split_index(),
            ("node.manager", Some(3))
        );
        assert_eq!(Address::new("vpc").split_index(), ("vpc", None));
    }
}
