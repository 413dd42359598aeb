//! Every size and count limit, named once (product.md section 6, spec sections 2 and 4).

/// Processes in one create or update request (bk-cmdb `BKMaxUpdateOrCreatePageSize`).
pub const MAX_PROCESSES_PER_REQUEST: usize = 100;
/// A request body; larger bodies get HTTP 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// UTF-8 bytes of a singlechar value, after trimming.
pub const MAX_SINGLECHAR_BYTES: usize = 256;
/// UTF-8 bytes of a longchar value, after trimming.
pub const MAX_LONGCHAR_BYTES: usize = 2000;
/// Deepest JSON nesting a request may have; deeper bodies are refused as malformed (1199000).
/// This is serde_json's own recursion limit; `http` tests pin it.
pub const MAX_JSON_DEPTH: usize = 127;
/// Seconds one socket read or write may block: a keep-alive connection idle for longer, or a
/// client that stalls mid-request, is closed.
pub const READ_TIMEOUT_SECS: u64 = 30;
/// Default number of HTTP worker threads.
pub const DEFAULT_THREADS: usize = 16;
/// Largest dataset file `import` reads.
pub const MAX_DATASET_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Default redb page cache, in MiB.
pub const DEFAULT_CACHE_MIB: usize = 32;
/// Seconds a graceful shutdown (SIGTERM, SIGINT) waits for the requests in progress.
pub const SHUTDOWN_GRACE_SECS: u64 = 10;
/// Times a read runs when the database file fails under it and is reopened (store::Store::read).
pub const STORE_READ_ATTEMPTS: usize = 3;
