//! Desired state: what the stack file asks for, after validation. Pure data, no I/O.

mod address;
pub mod image;
mod kinds;
pub mod resources;
mod spec;
mod stack;
pub mod targets;

pub use address::Address;
pub use kinds::*;
pub use spec::*;
pub use stack::*;

/// An object found in AWS, described in the same terms as the desired spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub id: String,
    pub spec: Spec,
    /// Facts AWS assigned (IP addresses, DNS names), for `infra output` and the state.
    pub outputs: std::collections::BTreeMap<String, String>,
}

/// Everything the stack owns in AWS right now, by address. Objects carrying the stack's tag
/// whose address cannot be told get an `orphan.<kind>.<id>` address, so the plan removes them.
pub type Live = std::collections::BTreeMap<Address, Observed>;
