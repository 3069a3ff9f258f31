//! infra: Docker Swarm clusters on AWS, as code. The layers, each module's job and how to add an
//! object kind: docs/architecture.md.

pub mod apply;
pub mod cli;
pub mod cloud;
pub mod compose;
pub mod config;
pub mod model;
pub mod ops;
pub mod plan;
pub mod render;
pub mod state;
pub mod swarm;
