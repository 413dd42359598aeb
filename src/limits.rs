//! Every size and count limit, named once (product.md section 6, spec sections 2 and 4). The
//! benchmark's own defaults (`BENCH_*`) live beside it in `bench`.

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
/// client that stalls mid-request, is closed (`serve --read-timeout-secs`).
pub const READ_TIMEOUT_SECS: u64 = 30;
/// Seconds a whole request body may take to arrive after its headers; a body still incomplete
/// then is answered with HTTP 408 (`serve --body-timeout-secs`).
pub const BODY_TIMEOUT_SECS: u64 = 120;
/// Default connections open at once (`serve --max-connections`): at the cap the connection idle
/// longest is closed for a new one, and when all have a request in progress a new one gets 503.
/// Each costs a descriptor and at most two threads (see ARCHITECTURE, "Bounds").
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Open files `serve` keeps for itself beyond its connections (store, listener, log, signals),
/// checked against `RLIMIT_NOFILE` at start.
pub const FDS_RESERVED: usize = 64;
/// Seconds a request head may take: from the connection's accept for its first request, from
/// its first byte for later ones; beyond, the connection is closed (`serve --head-timeout-secs`).
pub const HEAD_TIMEOUT_SECS: u64 = 10;
/// Default memory budget of request bodies in flight, in MiB (`serve --max-body-memory`): a body's
/// bytes and then what parsing them costs (`http/budget.rs`) are held from it until the answer.
/// It holds one body of the largest size (`MAX_BODY_BYTES`) with room to parse it.
pub const DEFAULT_BODY_MEMORY_MIB: usize = 32;
/// Milliseconds a request waits for room in the body budget before its 503.
pub const BODY_MEMORY_WAIT_MILLIS: u64 = 2000;
/// Seconds between two log lines of the same refusal cause (the others are counted).
pub const REFUSAL_LOG_INTERVAL_SECS: u64 = 10;
/// Bytes read from a request body at a time.
pub const BODY_READ_CHUNK_BYTES: usize = 64 * 1024;
/// Default number of requests worked on at once (`serve --threads`).
pub const DEFAULT_THREADS: usize = 16;
/// Largest dataset file `import` reads.
pub const MAX_DATASET_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Default redb page cache, in MiB (`serve --cache-mib`). The server's peak RSS is about this
/// plus 15-35 MiB (the more, the more large answers are built at once), so 16 keeps it under 50
/// of the 64 MiB budget. Measured with `bench --scale` on 1,000,000 processes (a 1.1 GB file):
/// create and list latency did not change between 8, 16, 32 and 64 MiB (the kernel's page
/// cache holds the file; redb's cache only saves the copy), while the peak RSS with bursts of 8
/// concurrent lists was 47 MiB at 16 and 65 MiB at 32.
pub const DEFAULT_CACHE_MIB: usize = 16;
/// glibc malloc arenas of the server (see `memory.rs`).
pub const MALLOC_ARENAS: usize = 2;
/// Largest page a list request may ask for (bk-cmdb `BKMaxPageSize`).
pub const MAX_PAGE_SIZE: i64 = 1000;
/// The page limit that means "everything" where bk-cmdb accepts it (`BKNoLimit`).
pub const NO_LIMIT: i64 = 999_999_999;
/// Runes of a service-template name, after trimming (bk-cmdb `MainlineNameFieldMaxLength`).
pub const MAX_TEMPLATE_NAME_RUNES: usize = 256;
/// Process templates in one `batch_create_proc_template` (`BKMaxUpdateOrCreatePageSize`).
pub const MAX_PROC_TEMPLATES_PER_CREATE: usize = 100;
/// Process templates in one `delete_proc_template` (`BKMaxDeletePageSize`).
pub const MAX_PROC_TEMPLATES_PER_DELETE: usize = 500;
/// Ids in one `list_proc_template` (`process_template_ids`).
pub const MAX_PROC_TEMPLATE_IDS_PER_LIST: usize = 200;
/// Ids in one `delete_process_instance` or `delete_service_instance` request, and instances one
/// `remove_label_from_service_instance` request may name (bk-cmdb `BKMaxDeletePageSize`).
pub const MAX_IDS_PER_DELETE: usize = 500;
/// Process ids in one `list_process_detail_by_ids` request (bk-cmdb `BKMaxInstanceLimit`).
pub const MAX_IDS_PER_DETAIL_LIST: usize = 500;
/// Service instances in one `create_service_instance` request (`BKMaxUpdateOrCreatePageSize`).
pub const MAX_SERVICE_INSTANCES_PER_CREATE: usize = 100;
/// Service instances one `add_label_for_service_instance` request may name
/// (`BKMaxUpdateOrCreatePageSize`).
pub const MAX_LABEL_ADD_INSTANCES: usize = 100;
/// Host ids one `list_service_instance` request may filter on (`BKMaxPageSize`).
pub const MAX_LIST_HOST_IDS: usize = 1000;
/// Bytes of a label key or value (bk-cmdb refuses 64 and more).
pub const MAX_LABEL_BYTES: usize = 63;
/// Bytes of a service-instance name (bk-cmdb `NameFieldMaxLength`).
pub const MAX_SERVICE_INSTANCE_NAME_BYTES: usize = 256;
/// Ids of one `find_set_batch` / `find_module_batch` request, host ids of
/// `find_host_biz_relations`, template and module ids of `find_host_by_service_template`
/// (`BKMaxInstanceLimit`).
pub const MAX_BATCH_IDS: usize = 500;
/// Set ids of one `find_module_with_relation` or `list_biz_hosts` request, and its page size
/// (500) for the former.
pub const MAX_RELATION_SET_IDS: usize = 200;
pub const MAX_RELATION_PAGE: i64 = 500;
/// Module ids of one `list_biz_hosts` request.
pub const MAX_LIST_HOSTS_MODULE_IDS: usize = 500;
/// Page size of `list_biz_hosts_topo` (bk-cmdb `BKMaxInstanceLimit`).
pub const MAX_HOSTS_TOPO_PAGE: i64 = 500;
/// Ids of `service_template_ids` / `bk_module_ids` in one `list_service_template_difference`
/// (bk-cmdb's `maxIDLen`; its docs say 20, its code 100).
pub const MAX_SYNC_STATUS_IDS: usize = 100;
/// Modules in one `sync_service_template_to_service_instance` or
/// `list_service_template_sync_status` (bk-cmdb has no limit: one sync is one transaction
/// here, so its size is bounded).
pub const MAX_SYNC_MODULES: usize = 1000;
/// A template sync that writes more processes than this (hosts × process templates) runs in a
/// write transaction holding the store alone instead of joining a group commit, whose undo log
/// would copy every process it changes (about 1.2 KiB each): reads and writes wait for it, and
/// memory stays bounded by redb's cache whatever the module's size.
pub const MAX_SYNC_GROUPED_PROCESSES: usize = 5_000;
/// Characters (runes) of a service-category name (bk-cmdb `ServiceCategory.Validate`).
pub const MAX_CATEGORY_NAME_RUNES: usize = 128;
/// `import` prints a progress line on stderr after every so many processes.
pub const IMPORT_PROGRESS_EVERY: usize = 100_000;
/// Seconds a graceful shutdown (SIGTERM, SIGINT) waits for the requests in progress.
pub const SHUTDOWN_GRACE_SECS: u64 = 10;
/// Times a read runs when the database file fails under it and is reopened (store::Store::read).
pub const STORE_READ_ATTEMPTS: usize = 3;
/// After the file failed (a full disk): milliseconds before the first write may try it again,
/// and the most between two tries (each failed try doubles the wait). Writes in between are
/// refused at once with 1199018, so readers lose the store only for one reopen per try.
pub const WRITE_PROBE_FIRST_MILLIS: u64 = 250;
pub const WRITE_PROBE_MAX_MILLIS: u64 = 4000;
/// Write requests one group commit may hold (`store/group.rs`): a cap on how long a request
/// waits for the batch it joined.
pub const MAX_REQUESTS_PER_COMMIT: usize = 128;
/// Microseconds the group-commit writer waits, at most, before it starts a batch, for as many
/// requests as were in flight when its last batch ended (`store/group.rs`).
pub const BATCH_LINGER_MICROS: u64 = 300;
/// Seconds of change log `resource_watch` answers from (bk-cmdb's `ttlSeconds`, 6 hours); older
/// events are not answered and are removed by the next write of their resource.
pub const EVENT_WINDOW_SECS: u32 = 6 * 60 * 60;
/// Events kept per watched resource; beyond it the oldest go first. A process event is
/// 0.5-1 KiB on disk (its whole record), so a full log of processes costs about 100 MiB and a
/// full log of every resource at most 300 MiB.
pub const MAX_EVENTS_PER_RESOURCE: u64 = 100_000;
/// Events a log may hold beyond `MAX_EVENTS_PER_RESOURCE` before it is cut back to it: the
/// retention then runs once per thousand events, not on every commit (1% more room at most).
pub const EVENT_TRIM_SLACK: u64 = MAX_EVENTS_PER_RESOURCE / 100;
/// Events in one `resource_watch` answer after the first (bk-cmdb's `eventStep`, 200; an
/// answer holds at most 201).
pub const WATCH_EVENTS_PER_ANSWER: usize = 200;
/// Seconds a `resource_watch` with a cursor waits for an event before answering that nothing
/// happened (bk-cmdb's `timeoutWatchLoopSeconds`, 20: it answers once the clock's whole
/// seconds have moved past it, 20-21 s) (`serve --watch-timeout-secs`).
pub const WATCH_TIMEOUT_SECS: u64 = 20;
/// Milliseconds bk-cmdb's event server sleeps before answering a malformed or refused watch.
pub const WATCH_ERROR_DELAY_MS: u64 = 500;
/// Bytes of a lenient fixture (`cmdb-lite/fixture-1`), which is read whole into memory;
/// larger datasets are strict and streamed.
pub const MAX_FIXTURE_BYTES: usize = 2 * 1024 * 1024;
/// Requests the journal of `serve --admin` keeps (`GET /_cmdb/requests`); the oldest go first.
pub const JOURNAL_MAX_ENTRIES: usize = 1000;
/// Bytes of a request body (and of a path) the journal keeps; the rest is cut, and the entry
/// says so. With `JOURNAL_MAX_ENTRIES`, the journal holds at most about 4 MiB, and its JSON
/// (control characters escaped six-fold at worst) about 25 MiB while it is answered.
pub const JOURNAL_MAX_BODY_BYTES: usize = 2048;
/// Fault rules active at once (`POST /_cmdb/faults`).
pub const MAX_FAULTS: usize = 100;
/// The longest delay a fault may add to an answer, in milliseconds.
pub const MAX_FAULT_DELAY_MS: u64 = 60_000;
/// Hosts one add_host_to_business_idle may add (bk-cmdb's own limit, 1199035 beyond).
pub const MAX_HOSTS_PER_ADD: usize = 200;
/// Hosts and modules one transfer may name (1199035 beyond).
pub const MAX_TRANSFER_HOSTS: usize = 500;
pub const MAX_TRANSFER_MODULES: usize = 100;
/// Sets one batch_delete_set may name (1199035 beyond).
pub const MAX_SETS_PER_DELETE: usize = 200;
/// Hosts one module may hold: the module's record lists them (1199035 beyond).
pub const MAX_HOSTS_PER_MODULE: usize = 100_000;
/// Records the migration of a version-1 store reads at a time before rewriting them
/// (`store/migrate.rs`): its memory stays that of one chunk whatever the store's size.
pub const MIGRATION_CHUNK: usize = 1_024;
/// Free bytes a migration wants beyond the size of the file itself (redb writes the new values
/// beside the old ones until its commit frees them).
pub const MIGRATION_SPARE_BYTES: u64 = 16 * 1024 * 1024;
/// Bytes of a request's path written in its access-log line (longer paths end with `...`).
pub const MAX_LOGGED_PATH_BYTES: usize = 512;
/// A streamed list answer (`http/stream.rs`) is rendered into a buffer of about this many
/// bytes at a time (plus the one piece that crosses it: an instance's own fields or one
/// process), refilled only once the socket has taken it: what a slow reader of a large list
/// holds. An answer that ends within the first buffer is sent whole, with its `Content-Length`.
pub const STREAM_CHUNK_BYTES: usize = 64 * 1024;
/// The online export (`GET /_cmdb/export`) hands its output to the connection in pieces of this
/// many bytes, with at most `EXPORT_CHUNKS_IN_FLIGHT` of them waiting: its memory is bounded
/// whatever the store's size.
pub const EXPORT_CHUNK_BYTES: usize = 64 * 1024;
pub const EXPORT_CHUNKS_IN_FLIGHT: usize = 4;
/// Online exports running at once; more are answered with HTTP 503.
pub const MAX_CONCURRENT_EXPORTS: usize = 2;
/// redb page cache of the offline commands (`export`, `check`, `compact`), in MiB.
pub const OFFLINE_CACHE_MIB: usize = 16;
/// Seconds `export --from` waits for the server on one read or write.
pub const EXPORT_FROM_TIMEOUT_SECS: u64 = 60;
/// Bytes of a `--auth` file (apps, users and their grants).
pub const MAX_AUTH_FILE_BYTES: usize = 1024 * 1024;
/// Characters of an app code and of an app secret, as the API gateway limits them.
pub const MAX_APP_CODE_CHARS: usize = 32;
pub const MAX_APP_SECRET_CHARS: usize = 128;
/// Bytes of an `X-Bkapi-JWT` token that is verified (the gateway's are under 1 KiB).
pub const MAX_JWT_BYTES: usize = 16 * 1024;
