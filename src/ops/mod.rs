//! Operations the commands call: each one orchestrates config, cloud, plan, apply and state.
//!
//! One file per command (`plan`, `apply`, `status`, …) and the steps they share: `load` (the
//! stack file and its services), `desired` (the stack as it should be), `prepare` (a fresh
//! plan), `nodes` (reaching the Swarm), `reach` (what the day-2 commands start from), `refusals` and `checks` (what is refused before any
//! change).

mod apply;
mod checks;
mod context;
mod desired;
mod details;
mod doctor;
mod error;
mod exec;
mod init;
mod load;
mod logs;
mod migrate;
mod nodes;
mod output;
mod plan;
mod prepare;
mod reach;
mod recover;
mod refusals;
mod registry;
mod replace;
mod request;
mod scale;
mod shell;
mod status;
mod validate;
mod workspace;

pub use apply::{ApplyOptions, apply, destroy, force_unlock, roll_nodes, saved_plan_stack};
pub use context::{Context, backend, configured_backend};
pub use details::{DetailsOptions, details};
pub use doctor::{DoctorOptions, doctor};
pub use error::{OpsError, Result};
pub use exec::{ExecOptions, exec};
pub use init::init;
pub use logs::{LogsOptions, logs};
pub use migrate::{MigrateOptions, migrate};
pub use output::{OutputOptions, output};
pub use plan::{PlanFormat, PlanOptions, plan};
pub use recover::{RecoverOptions, recover_swarm};
pub use request::{Request, Roll};
pub use scale::{ScaleOptions, scale_nodes};
pub use shell::ssh;
pub use status::{StatusOptions, status};
pub use validate::{schema, validate};
pub use workspace::Workspace;
