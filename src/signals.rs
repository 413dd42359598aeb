//! Process signals, all in this file: SIGTERM and SIGINT ask `serve` to shut down gracefully,
//! SIGHUP to reload its `--auth` file, and SIGXFSZ is ignored.
//!
//! The three signals are blocked in the calling thread by [`Shutdown::install`], which
//! `serve` calls before it starts any thread: every thread spawned later inherits the mask, so
//! the signals stay pending until [`Shutdown::wait`] takes one with `sigwait`. No handler ever
//! runs in signal context, so nothing here has to be async-signal-safe, and a signal that
//! arrives while the store is still opening is simply handled once the server is up.
//!
//! SIGXFSZ is sent to a process that writes past its file-size limit (`RLIMIT_FSIZE`); its
//! default action kills the process. Ignored, the write fails with `EFBIG` instead, which the
//! store treats like a full disk: the request gets a storage error and the server stays up.
//!
//! A few libc calls through `extern "C"` (the standard library links libc already) are enough,
//! which is why no signal crate is used.

use std::os::raw::c_int;

const SIGHUP: c_int = 1;
const SIGINT: c_int = 2;
const SIGTERM: c_int = 15;
/// 25 on Linux (x86-64, aarch64 and the other asm-generic ports) and on the BSDs and macOS.
const SIGXFSZ: c_int = 25;
#[cfg(target_os = "linux")]
const SIG_BLOCK: c_int = 0;
#[cfg(not(target_os = "linux"))]
const SIG_BLOCK: c_int = 1;
/// `SIG_IGN`, the "ignore" disposition, is the handler value 1 everywhere.
const SIG_IGN: usize = 1;

/// A `sigset_t`: 128 bytes in glibc and musl, 4 on macOS; this is at least as large and as
/// aligned as each, and only ever handled through the libc functions below.
#[repr(C, align(8))]
struct SigSet([u8; 128]);

unsafe extern "C" {
    fn sigemptyset(set: *mut SigSet) -> c_int;
    fn sigaddset(set: *mut SigSet, signum: c_int) -> c_int;
    fn pthread_sigmask(how: c_int, set: *const SigSet, oldset: *mut SigSet) -> c_int;
    fn sigwait(set: *const SigSet, sig: *mut c_int) -> c_int;
    fn signal(signum: c_int, handler: usize) -> usize;
}

/// Ignores SIGXFSZ for the whole process, so writing past a file-size limit fails with `EFBIG`
/// rather than killing it.
pub fn ignore_file_size_limit_signal() {
    // SAFETY: `signal` with `SIG_IGN` installs no handler and touches no Rust state.
    unsafe {
        signal(SIGXFSZ, SIG_IGN);
    }
}

/// SIGTERM, SIGINT and SIGHUP, blocked and waited for.
pub struct Shutdown {
    set: SigSet,
}

impl Shutdown {
    /// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread and in every thread it starts later.
    /// Call it before any thread is spawned.
    pub fn install() -> Result<Shutdown, String> {
        let mut set = SigSet([0; 128]);
        // SAFETY: `set` is a writable buffer at least as large as `sigset_t`, initialised by
        // `sigemptyset` before any other use; `pthread_sigmask` only reads it.
        let rc = unsafe {
            if sigemptyset(&mut set) != 0
                || sigaddset(&mut set, SIGTERM) != 0
                || sigaddset(&mut set, SIGINT) != 0
                || sigaddset(&mut set, SIGHUP) != 0
            {
                -1
            } else {
                pthread_sigmask(SIG_BLOCK, &set, std::ptr::null_mut())
            }
        };
        if rc != 0 {
            return Err("cannot block SIGTERM, SIGINT and SIGHUP".into());
        }
        Ok(Shutdown { set })
    }

    /// Waits until SIGTERM, SIGINT or SIGHUP arrives; returns its name.
    pub fn wait(&self) -> &'static str {
        loop {
            let mut sig: c_int = 0;
            // SAFETY: `self.set` was initialised by `install`; `sig` is a valid out pointer.
            let rc = unsafe { sigwait(&self.set, &mut sig) };
            match (rc, sig) {
                (0, SIGTERM) => return "SIGTERM",
                (0, SIGINT) => return "SIGINT",
                (0, SIGHUP) => return "SIGHUP",
                // Only the signals of the set can be returned, and sigwait fails only on an
                // invalid set; anything else is retried, unhurried.
                _ => std::thread::sleep(std::time::Duration::from_millis(100)),
            }
        }
    }
}
