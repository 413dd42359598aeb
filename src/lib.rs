//! cmdb-lite: BlueKing CMDB's process-management API over one embedded redb store.
//! See ARCHITECTURE.md for the map of this crate.

/// Writes one lifecycle line to the server log (stderr) with a timestamp and a level:
/// `log!("...")` is info, `log!(warn, "...")` and `log!(error, "...")` the others (see
/// [`log`](mod@log)). Unlike `eprintln!`, which panics when stderr cannot be written (a log file
/// on a full disk, a closed pipe), a failed write is ignored: a log line must never take a
/// worker down.
#[macro_export]
macro_rules! log {
    (warn, $($arg:tt)*) => {
        $crate::log::line($crate::log::Level::Warn, format_args!($($arg)*))
    };
    (error, $($arg:tt)*) => {
        $crate::log::line($crate::log::Level::Error, format_args!($($arg)*))
    };
    ($($arg:tt)*) => {
        $crate::log::line($crate::log::Level::Info, format_args!($($arg)*))
    };
}

pub mod api;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod client;
pub mod clock;
pub mod dataset;
pub mod disk;
pub mod domain;
pub mod error;
pub mod faults;
pub mod fetch;
pub mod fixture;
pub mod http;
pub mod journal;
pub mod limits;
pub mod log;
pub mod memory;
pub mod metrics;
pub mod push;
pub mod seed;
pub mod signals;
pub mod store;
pub mod tempdir;
pub mod testing;
