//! Test harness: a real moto server per test, a scratch project directory, the real `infra`
//! binary, an independent boto3 reader (tests/world/aws/aws.py), and testbed nodes that boot
//! like EC2 instances (tests/world/nodes). By part of the test world:
//!
//! - `world`: the venv, the files under tests/world, ports for the servers started from them
//! - `aws`: moto behind the strictness proxy, the fault proxy, the boto3 reader and its dumps
//! - `alb`: the ALB data plane (tests/world/alb)
//! - `ecr`: ECR's registry and the instance metadata service, as the nodes reach them
//! - `nodes`: testbeds and their nodes, the Swarm as a manager sees it, what nodes serve
//! - `project`: a scratch project directory and the `infra` binary run in it
//! - `sandbox`: the sandbox stack on a testbed, as `scripts/sandbox up` makes it
//! - `crash`: runs killed at points and what the next run must leave
//! - `traffic`: requests through the load balancer, request loops
#![allow(dead_code)]

mod alb;
mod aws;
mod crash;
mod ecr;
mod nodes;
mod project;
mod sandbox;
pub mod traffic;
mod world;

// Each test binary uses some of these, none all of them.
#[allow(unused_imports)]
pub use {
    alb::Alb,
    aws::{FaultProxy, Moto, live_instances, tagged_left},
    crash::{actions, assert_exactly, kill_at_point, kill_point, spawn_via},
    nodes::{Image, Testbed, healthy, manager_node, members, serves, targets, testbed},
    project::{Project, Run, files_under, printed},
    sandbox::{GREETING_V1, Registry, sandbox, sandbox_in, sandbox_with, with_compose_file},
    world::{venv, wait_for_port, world},
};
