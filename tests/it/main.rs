//! The integration tests: one crate, so the harness in `common` compiles once and every module
//! uses it. Each module is one subject, black-box against the real binary (`common::Server`
//! starts it on a loopback port with a temporary database) unless its header says otherwise.
//! Run one subject with `cargo test --test it <module>::`.

mod common;
// Shared with the cargo-fuzz target (fuzz/), which includes it by path.
#[path = "../fuzzgen/mod.rs"]
mod fuzzgen;

mod admin;
mod auth;
mod cli;
mod compat;
mod docs;
mod durability;
mod faults;
mod fuzz_create;
mod hostile;
mod migration;
mod ops;
mod process_instance;
mod process_lifecycle;
mod process_template;
mod push;
mod readme;
mod robustness;
mod service_category;
mod service_instance;
mod service_template;
mod single_node;
mod smoke;
mod template_sync;
mod topology;
mod topology_more;
mod topology_write;
mod watch;
