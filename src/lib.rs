//! cmdb-lite: BlueKing CMDB's process-management API over one embedded redb store.
//! See ARCHITECTURE.md for the map of this crate.

/// Writes one line to the server log (stderr). Unlike `eprintln!`, which panics when stderr
/// cannot be written (a log file on a full disk, a closed pipe), a failed write is ignored: a
/// log line must never take a worker down.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod api;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod dataset;
pub mod disk;
pub mod domain;
pub mod error;
pub mod faults;
pub mod fixture;
pub mod http;
pub mod journal;
pub mod limits;
pub mod memory;
pub mod seed;
pub mod signals;
pub mod store;
pub mod testing;
