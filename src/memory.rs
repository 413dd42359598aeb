//! The allocator's share of the server's memory: glibc malloc tuned at startup.
//!
//! glibc gives threads their own malloc arenas, up to 8 per core, and an arena keeps the memory
//! its largest burst needed. With 16 worker threads each answering now and then a large list,
//! every arena ends up holding its own copy of that burst: the server's peak RSS grew with the
//! number of threads that happened to serve one, to twice the redb cache (measured with
//! `cmdb-lite bench`: 80 MiB peak RSS with the default arenas against 48-52 MiB with one or two).
//! Capping the arenas keeps one shared pool; threads still allocate small objects from their
//! own caches (glibc's tcache) without taking a lock. Two, although the 16 workers and the
//! writer thread then queue for the arenas' locks (in a profile of 8 connections × 100
//! processes per request, futex waits inside malloc were 18% of the workers' samples and 13%
//! of the writer's) and four gained a few percent of create throughput: with four, `cmdb-lite
//! bench --scale` measured the server at 62.6 MiB peak RSS through its load bursts on
//! 1,000,000 processes and 71.4 MiB after an online export, against 46.8 and 51.0 with two.
//!
//! Blocks of 256 KiB and more (request bodies, their parse, large answers) are mapped on their
//! own and given back to the kernel when freed: glibc otherwise raises that threshold each time
//! such a block is freed, up to 32 MiB, after which bursts of large bodies stay in the heap and
//! in the RSS (1.4 GB after a burst of large bodies, in the probe that bounded body memory).
//!
//! A few libc calls through `extern "C"` (the standard library links libc already); on other C
//! libraries this does nothing.

/// Blocks from this size up are mapped on their own and unmapped when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: i32 = 256 * 1024;

/// Caps glibc's malloc arenas at `arenas`, and fixes its mmap threshold (see above). Call before
/// any thread is started.
pub fn limit_malloc_arenas(arenas: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::raw::c_int;
        /// `M_ARENA_MAX` and `M_MMAP_THRESHOLD` of glibc's malloc.h.
        const M_ARENA_MAX: c_int = -8;
        const M_MMAP_THRESHOLD: c_int = -3;
        unsafe extern "C" {
            fn mallopt(param: c_int, value: c_int) -> c_int;
        }
        // SAFETY: `mallopt` only sets a tuning parameter of the allocator; it is called before
        // any other thread exists.
        unsafe {
            mallopt(M_ARENA_MAX, c_int::try_from(arenas).unwrap_or(c_int::MAX));
            mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}
