//! `cmdb-lite bench --scale`: a store of 10,000 processes against one of 1,000,000, both
//! loaded with `cmdb-lite import` (import time and peak RSS, startup, create and list latency
//! in alternating slices, the servers' peak RSS).

use super::*;

pub(super) struct ScaleSide {
    pub(super) label: String,
    pub(super) layout: Layout,
    pub(super) dataset_bytes: u64,
    pub(super) generate: Duration,
    pub(super) import: Duration,
    pub(super) import_hwm_kib: Option<u64>,
    /// Peak RSS (KiB) and time of the offline `export` and `check` of the imported store.
    pub(super) export: (Option<u64>, Duration),
    pub(super) check: (Option<u64>, Duration),
    pub(super) db: PathBuf,
    pub(super) db_bytes: u64,
}

pub(super) fn scale(o: &Options, tmp: &TempDir) -> Result<(), String> {
    let per = BENCH_PROCESSES_PER_INSTANCE;
    if o.scale_processes < 10 * per || !o.scale_processes.is_multiple_of(per) {
        return Err(format!(
            "--scale-processes must be a multiple of {per} and at least {}",
            10 * per
        ));
    }
    // The small store has BENCH_SCALE_SMALL processes, or a tenth of a smaller large one.
    let small = (BENCH_SCALE_SMALL.min(o.scale_processes / 10) / per).max(1) * per;
    let now = clock::format_ms(clock::now_ms());
    let mut sides = Vec::new();
    for (label, total) in [("small", small), ("large", o.scale_processes)] {
        let layout = Layout {
            populated: total / per,
            per_instance: per,
            empty: o.connections,
        };
        let file = tmp.join(&format!("{label}.json"));
        eprintln!("bench: generating {total} processes…");
        let t = Instant::now();
        layout.write(&file, &now)?;
        let generate = t.elapsed();
        let dataset_bytes = size_of(&file);
        let db = tmp.join(&format!("{label}.redb"));
        eprintln!("bench: cmdb-lite import ({} MiB)…", dataset_bytes >> 20);
        let t = Instant::now();
        let import_hwm_kib = import(&file, &db)?;
        let import = t.elapsed();
        let _ = std::fs::remove_file(&file);
        // The offline commands on the store just closed: streamed, so bounded memory.
        eprintln!("bench: cmdb-lite export and check…");
        let out = tmp.join(&format!("{label}.export.json"));
        let export = measured_run(&[
            OsStr::new("export"),
            OsStr::new("--db"),
            db.as_os_str(),
            OsStr::new("--out"),
            out.as_os_str(),
        ])?;
        let _ = std::fs::remove_file(&out);
        let check = measured_run(&[OsStr::new("check"), OsStr::new("--db"), db.as_os_str()])?;
        sides.push(ScaleSide {
            label: count_label(total),
            layout,
            dataset_bytes,
            generate,
            import,
            import_hwm_kib,
            export,
            check,
            db_bytes: size_of(&db),
            db,
        });
    }

    // Startup to the first answered request (the list of an empty instance), on each freshly
    // imported store.
    let mut servers = Vec::new();
    let mut startups = Vec::new();
    for side in &sides {
        let t = Instant::now();
        let server = Server::start(&side.db, None, o, false)?;
        let mut client = Client::connect(&server.addr)?;
        let body = list_body(side.layout.populated as i64 + 1);
        let answer = client.post(LIST_PATH, body.as_bytes())?;
        expect_ok(answer)?;
        startups.push(t.elapsed());
        servers.push(server);
    }
    for (side, server) in sides.iter().zip(&servers) {
        check_list(&server.addr, 1, side.layout.per_instance)?;
        let module = side.layout.scattered_host_modules(0)[0];
        check_count(
            &server.addr,
            HOSTS_PATH,
            &hosts_body(module),
            BENCH_HOSTS_PER_MODULE,
        )?;
        let related = related_body(SI_MODULE_BASE + 1);
        check_count(
            &server.addr,
            RELATED_PATH,
            &related,
            side.layout.per_instance,
        )?;
    }

    // Alternating slices: create (1 connection, 1 process per request), list (one service
    // instance of 1,000 processes, a different one each time); then, for the peak RSS, bursts of
    // the heaviest loads: creates of 100 processes and lists, each on every connection at once.
    let slice = Duration::from_secs_f64(o.secs) / BENCH_ROUNDS as u32;
    let mut creates = vec![Measured::default(); sides.len()];
    let mut lists = vec![Measured::default(); sides.len()];
    let mut host_lists = vec![Measured::default(); sides.len()];
    let mut related = vec![Measured::default(); sides.len()];
    for round in 0..BENCH_ROUNDS {
        eprintln!("bench: round {} of {BENCH_ROUNDS}…", round + 1);
        for (i, (side, server)) in sides.iter().zip(&servers).enumerate() {
            let targets: Vec<i64> = side.layout.empty_ids().collect();
            let spec = CreateSpec {
                addr: &server.addr,
                path: CREATE_PATH,
                targets: &targets[..1],
                per_req: 1,
                floor: false,
            };
            creates[i].absorb(create_load(&spec, &format!("c{round}"), slice)?);
            let order = side.layout.scattered_populated(round);
            lists[i].absorb(list_load(&server.addr, &order, slice)?);
            let bodies: Vec<String> = side
                .layout
                .scattered_host_modules(round)
                .into_iter()
                .map(hosts_body)
                .collect();
            host_lists[i].absorb(post_load(&server.addr, HOSTS_PATH, &bodies, slice)?);
            let bodies: Vec<String> = order
                .iter()
                .map(|&si| related_body(SI_MODULE_BASE + si))
                .collect();
            related[i].absorb(post_load(&server.addr, RELATED_PATH, &bodies, slice)?);
        }
    }
    for (side, server) in sides.iter().zip(&servers) {
        let targets: Vec<i64> = side.layout.empty_ids().collect();
        let spec = CreateSpec {
            addr: &server.addr,
            path: CREATE_PATH,
            targets: &targets,
            per_req: MAX_PROCESSES_PER_REQUEST,
            floor: false,
        };
        create_load(&spec, "burst", slice)?;
        let order = side.layout.scattered_populated(BENCH_ROUNDS);
        std::thread::scope(|scope| {
            let lists: Vec<_> = (0..o.connections)
                .map(|c| {
                    let order = &order[c % order.len()..];
                    scope.spawn(move || list_load(&server.addr, order, slice))
                })
                .collect();
            for l in lists {
                l.join()
                    .map_err(|_| "a load thread panicked".to_string())??;
            }
            Ok::<(), String>(())
        })?;
    }
    let hwms: Vec<Option<u64>> = servers.iter().map(Server::vm_hwm_kib).collect();
    // The online export (GET /_cmdb/export through `export --from`) of each running server.
    let mut online = Vec::new();
    for (side, server) in sides.iter().zip(&servers) {
        eprintln!("bench: cmdb-lite export --from ({})…", side.label);
        let out = tmp.join("online.export.json");
        let url = format!("http://{}", server.addr);
        let (_, took) = measured_run(&[
            OsStr::new("export"),
            OsStr::new("--from"),
            OsStr::new(&url),
            OsStr::new("--out"),
            out.as_os_str(),
        ])?;
        let _ = std::fs::remove_file(&out);
        online.push((took, server.vm_hwm_kib()));
    }
    drop(servers);

    let (s, l) = (&sides[0], &sides[1]);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<40} {:>12} {:>12} {:>9}  target",
        "scale",
        s.label,
        l.label,
        format!("{}/{}", l.label, s.label)
    );
    let line = |out: &mut String, name: &str, a: f64, b: f64, target: &str| {
        let _ = writeln!(
            out,
            "{name:<40} {a:>12.1} {b:>12.1} {:>9.2}  {target}",
            b / a
        );
    };
    let mb = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    let kib_mb = |k: Option<u64>| k.map_or(f64::NAN, |k| k as f64 / 1024.0);
    line(
        &mut out,
        "dataset file MiB",
        mb(s.dataset_bytes),
        mb(l.dataset_bytes),
        "",
    );
    line(
        &mut out,
        "dataset generation s",
        s.generate.as_secs_f64(),
        l.generate.as_secs_f64(),
        "",
    );
    line(
        &mut out,
        "import s",
        s.import.as_secs_f64(),
        l.import.as_secs_f64(),
        "",
    );
    line(
        &mut out,
        "import peak RSS MiB",
        kib_mb(s.import_hwm_kib),
        kib_mb(l.import_hwm_kib),
        "",
    );
    line(
        &mut out,
        "offline export s",
        s.export.1.as_secs_f64(),
        l.export.1.as_secs_f64(),
        "",
    );
    line(
        &mut out,
        "offline export peak RSS MiB",
        kib_mb(s.export.0),
        kib_mb(l.export.0),
        "< 64 MiB",
    );
    line(
        &mut out,
        "check s",
        s.check.1.as_secs_f64(),
        l.check.1.as_secs_f64(),
        "",
    );
    line(
        &mut out,
        "check peak RSS MiB",
        kib_mb(s.check.0),
        kib_mb(l.check.0),
        "< 64 MiB",
    );
    line(
        &mut out,
        "online export s (export --from)",
        online[0].0.as_secs_f64(),
        online[1].0.as_secs_f64(),
        "",
    );
    line(
        &mut out,
        "database file MiB",
        mb(s.db_bytes),
        mb(l.db_bytes),
        "",
    );
    let per_process = |side: &ScaleSide| {
        side.db_bytes as f64 / (side.layout.populated * side.layout.per_instance).max(1) as f64
    };
    line(
        &mut out,
        "database bytes per process",
        per_process(s),
        per_process(l),
        "≤ 400 at 1M",
    );
    line(
        &mut out,
        "startup to first answer ms",
        startups[0].as_secs_f64() * 1e3,
        startups[1].as_secs_f64() * 1e3,
        "< 200 ms",
    );
    for (name, m) in [
        ("create p50 µs (1 conn, 1 proc/req)", &creates),
        ("list p50 µs (1 instance, 1,000 procs)", &lists),
        ("list_biz_hosts p50 µs (module, 1,000 hosts)", &host_lists),
        ("process_related p50 µs (module, 1,000 procs)", &related),
    ] {
        line(
            &mut out,
            name,
            m[0].percentile(0.50) as f64,
            m[1].percentile(0.50) as f64,
            "ratio ≤ 1.5",
        );
        let name99 = name.replace("p50", "p99");
        line(
            &mut out,
            &name99,
            m[0].percentile(0.99) as f64,
            m[1].percentile(0.99) as f64,
            "",
        );
        let name_n = name.replace("p50 µs", "requests");
        line(
            &mut out,
            &name_n,
            m[0].requests as f64,
            m[1].requests as f64,
            "",
        );
    }
    line(
        &mut out,
        "server peak RSS (VmHWM) MiB",
        kib_mb(hwms[0]),
        kib_mb(hwms[1]),
        "< 64 MiB",
    );
    line(
        &mut out,
        "server peak RSS after online export MiB",
        kib_mb(online[0].1),
        kib_mb(online[1].1),
        "< 64 MiB",
    );
    print!("{out}");
    Ok(())
}

pub(super) fn size_of(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Runs `cmdb-lite import FILE --db DB`; returns its peak RSS, sampled from /proc while it runs.
pub(super) fn import(file: &Path, db: &Path) -> Result<Option<u64>, String> {
    let args = [
        OsStr::new("import"),
        file.as_os_str(),
        OsStr::new("--db"),
        db.as_os_str(),
    ];
    Ok(measured_run(&args)?.0)
}

/// Runs `cmdb-lite <args>` to completion, sampling its peak RSS (VmHWM) every 5 ms: the peak
/// RSS in KiB and the time taken.
pub(super) fn measured_run(args: &[&OsStr]) -> Result<(Option<u64>, Duration), String> {
    let t = Instant::now();
    let mut child = Command::new(exe()?)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {args:?}: {e}"))?;
    let mut hwm = None;
    loop {
        if let Some(k) = vm_hwm_kib(child.id()) {
            hwm = Some(k);
        }
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) if status.success() => return Ok((hwm, t.elapsed())),
            Some(status) => return Err(format!("{args:?} failed: {status}")),
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}
