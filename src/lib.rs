//! cmdb-lite: BlueKing CMDB's process-management API over one embedded redb store.
//! See ARCHITECTURE.md for the map of this crate.

pub mod api;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod dataset;
pub mod domain;
pub mod error;
pub mod http;
pub mod limits;
pub mod memory;
pub mod store;
