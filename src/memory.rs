//! The allocator's share of the server's memory: glibc malloc tuned at startup.
//!
//! glibc gives threads their own malloc arenas, up to 8 per core, and an arena keeps the memory
//! its largest burst needed. With 16 worker threads each answering now and then a large list,
//! every arena ends up holding its own copy of that burst: the server's peak RSS grew with the
//! number of threads that happened to serve one, to twice the redb cache (measured with
//! `cmdb-lite bench`: 80 MiB peak RSS with the default arenas against 48-52 MiB with one or two).
//! Capping the arenas keeps one shared pool; threads still allocate small objects from their
//! own caches (glibc's tcache) without taking a lock.
//!
//! A few libc calls through `extern "C"` (the standard library links libc already); on other C
//! libraries this does nothing.

/// Caps glibc's malloc arenas at `arenas`. Call before any thread is started.
pub fn limit_malloc_arenas(arenas: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::raw::c_int;
        /// `M_ARENA_MAX` of glibc's malloc.h.
        const M_ARENA_MAX: c_int = -8;
        unsafe extern "C" {
            fn mallopt(param: c_int, value: c_int) -> c_int;
        }
        // SAFETY: `mallopt` only sets a tuning parameter of the allocator; it is called before
        // any other thread exists.
        unsafe {
            mallopt(M_ARENA_MAX, c_int::try_from(arenas).unwrap_or(c_int::MAX));
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}
