//! The generated datasets the benchmark's servers start from, written straight as JSON (one
//! record template with holes for the ids and names).

use super::*;

/// A generated dataset: business 1, one raw module, `populated` service instances with
/// `per_instance` processes each (ids 1..), then `empty` service instances; one host per
/// instance.
pub(super) struct Layout {
    pub(super) populated: usize,
    pub(super) per_instance: usize,
    pub(super) empty: usize,
}

impl Layout {
    pub(super) fn instances(&self) -> usize {
        self.populated + self.empty
    }

    /// Hosts: every instance's, and at least one per `BENCH_PROCESSES_PER_HOST` processes, in
    /// whole host modules.
    pub(super) fn hosts(&self) -> usize {
        let n = self
            .instances()
            .max(self.populated * self.per_instance / BENCH_PROCESSES_PER_HOST)
            .max(BENCH_HOSTS_PER_MODULE);
        n.div_ceil(BENCH_HOSTS_PER_MODULE) * BENCH_HOSTS_PER_MODULE
    }

    /// The host modules, in a scattered order that differs per `round`.
    pub(super) fn scattered_host_modules(&self, round: usize) -> Vec<i64> {
        let n = self.hosts() / BENCH_HOSTS_PER_MODULE;
        (0..n)
            .map(|i| HOST_MODULE_BASE + ((i * 7 + round) % n) as i64)
            .collect()
    }

    pub(super) fn empty_ids(&self) -> impl Iterator<Item = i64> + use<> {
        let first = self.populated as i64 + 1;
        first..first + self.empty as i64
    }

    /// Every populated instance once, in a scattered order that differs per `round`.
    pub(super) fn scattered_populated(&self, round: usize) -> Vec<i64> {
        let n = self.populated;
        // 7919 is prime, so stepping by it modulo n visits every instance when n is not a
        // multiple of it.
        (0..n)
            .map(|i| ((i * 7919 + round * 31) % n) as i64 + 1)
            .collect()
    }

    /// Writes the dataset file, streaming the processes.
    pub(super) fn write(&self, path: &Path, now: &str) -> Result<(), String> {
        let file = std::fs::File::create(path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let io = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
        let hosts: Vec<i64> = (1..=self.hosts() as i64).collect();
        let instances: Vec<i64> = (1..=self.instances() as i64).collect();
        let populated = self.populated as i64;
        let mut modules = vec![json!({"bk_module_id": 1, "bk_biz_id": BIZ, "bk_set_id": 1,
            "bk_module_name": "bench", "service_category_id": 2,
            "hosts": &instances[self.populated..]})];
        for si in 1..=populated {
            modules.push(
                json!({"bk_module_id": SI_MODULE_BASE + si, "bk_biz_id": BIZ,
                "bk_set_id": 1, "bk_module_name": format!("si-{si}"), "service_category_id": 2,
                "hosts": [si]}),
            );
        }
        for (k, chunk) in hosts.chunks(BENCH_HOSTS_PER_MODULE).enumerate() {
            modules.push(
                json!({"bk_module_id": HOST_MODULE_BASE + k as i64, "bk_biz_id": BIZ,
                "bk_set_id": 1, "bk_module_name": format!("hosts-{k}"),
                "service_category_id": 2, "hosts": chunk}),
            );
        }
        let head = json!({
            "format": crate::dataset::FORMAT,
            "supplier_account": "0",
            "businesses": [{"bk_biz_id": BIZ, "bk_biz_name": "bench"}],
            "hosts": hosts.iter().map(|&h| json!({"bk_host_id": h,
                "bk_host_innerip": format!("10.{}.{}.{}", h >> 16 & 255, h >> 8 & 255, h & 255),
                "bk_host_name": format!("bench-{h}"), "bk_os_type": "1", "bk_cpu": 8}))
                .collect::<Vec<_>>(),
            "modules": modules,
            "service_categories": [
                {"id": 1, "name": "Default", "bk_root_id": 1},
                {"id": 2, "name": "Default", "bk_parent_id": 1, "bk_root_id": 1}],
            "service_instances": instances.iter().map(|&si| json!({"bk_biz_id": BIZ, "id": si,
                "name": format!("bench-{si}"), "labels": null, "service_template_id": 0,
                "bk_host_id": si,
                "bk_module_id": if si <= populated { SI_MODULE_BASE + si } else { 1 },
                "creator": "admin", "modifier": "admin",
                "create_time": now, "last_time": now, "bk_supplier_account": "0"}))
                .collect::<Vec<_>>(),
        });
        let head = head.to_string();
        w.write_all(&head.as_bytes()[..head.len() - 1])
            .map_err(io)?;
        w.write_all(b",\"processes\":[").map_err(io)?;
        let template = RecordTemplate::new(now)?;
        let mut pid = 0i64;
        for si in 1..=self.populated as i64 {
            for k in 0..self.per_instance {
                pid += 1;
                if pid > 1 {
                    w.write_all(b",").map_err(io)?;
                }
                template
                    .write(&mut w, pid, si, &format!("svc-{k}"))
                    .map_err(io)?;
            }
        }
        w.write_all(b"]}\n").map_err(io)?;
        w.flush().map_err(io)
    }
}

/// A stored process exactly as create would store it, for business 1.
pub(super) fn stored_process(
    name: &str,
    si: i64,
    pid: i64,
    now: &str,
) -> Result<Map<String, Value>, String> {
    let Value::Object(mut map) = process_info(name) else {
        unreachable!("process_info is an object")
    };
    let fields = ServerFields {
        biz_id: BIZ,
        service_instance_id: si,
        supplier: "0",
        user: "admin",
        now,
    };
    process::stamp_request_fields(&mut map, &fields);
    process::validate_create(&mut map).map_err(|e| format!("sample process: {e:?}"))?;
    process::stamp_insert_fields(&mut map, pid, &fields);
    Ok(map)
}

pub(super) fn relation(pid: i64, si: i64, host: i64) -> Relation {
    Relation {
        bk_biz_id: BIZ,
        bk_process_id: pid,
        service_instance_id: si,
        process_template_id: 0,
        bk_host_id: host,
        bk_supplier_account: "0".into(),
    }
}

/// One dataset process record as JSON text with holes for its id, instance and name.
pub(super) struct RecordTemplate {
    pub(super) parts: Vec<(String, Hole)>,
}

#[derive(Clone, Copy)]
pub(super) enum Hole {
    Pid,
    Si,
    Name,
    End,
}

impl RecordTemplate {
    const MARKS: [(&'static str, Hole); 3] = [
        ("\"@@PID@@\"", Hole::Pid),
        ("\"@@SI@@\"", Hole::Si),
        ("\"@@NAME@@\"", Hole::Name),
    ];

    pub(super) fn new(now: &str) -> Result<RecordTemplate, String> {
        let mut map = stored_process("@@NAME@@", 1, 1, now)?;
        map.insert("bk_process_id".into(), json!("@@PID@@"));
        map.insert("service_instance_id".into(), json!("@@SI@@"));
        map.insert(
            "relation".into(),
            json!({"bk_biz_id": BIZ, "bk_process_id": "@@PID@@", "service_instance_id": "@@SI@@",
                "process_template_id": 0, "bk_host_id": "@@SI@@", "bk_supplier_account": "0"}),
        );
        let mut text = Value::Object(map).to_string();
        let mut parts = Vec::new();
        loop {
            let next = Self::MARKS
                .iter()
                .filter_map(|&(m, h)| text.find(m).map(|at| (at, m.len(), h)))
                .min_by_key(|&(at, _, _)| at);
            match next {
                Some((at, len, hole)) => {
                    parts.push((text[..at].to_string(), hole));
                    text = text[at + len..].to_string();
                }
                None => {
                    parts.push((text, Hole::End));
                    break;
                }
            }
        }
        Ok(RecordTemplate { parts })
    }

    pub(super) fn write(
        &self,
        w: &mut impl Write,
        pid: i64,
        si: i64,
        name: &str,
    ) -> std::io::Result<()> {
        for (lit, hole) in &self.parts {
            w.write_all(lit.as_bytes())?;
            match hole {
                Hole::Pid => write!(w, "{pid}")?,
                Hole::Si => write!(w, "{si}")?,
                Hole::Name => write!(w, "\"{name}\"")?,
                Hole::End => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn generated_records_are_valid_json_with_their_ids() {
        let t = RecordTemplate::new("2026-01-02T03:04:05.678Z").unwrap();
        let mut out = Vec::new();
        t.write(&mut out, 42, 7, "svc-3").unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["bk_process_id"], json!(42));
        assert_eq!(v["service_instance_id"], json!(7));
        assert_eq!(v["bk_process_name"], json!("svc-3"));
        assert_eq!(v["bk_func_name"], json!("svc-3"));
        assert_eq!(v["relation"]["bk_process_id"], json!(42));
        assert_eq!(v["relation"]["bk_host_id"], json!(7));
    }

    #[test]
    fn scattered_order_visits_every_instance() {
        for populated in [1, 10, 1000] {
            let l = Layout {
                populated,
                per_instance: 1,
                empty: 0,
            };
            let mut seen = l.scattered_populated(3);
            seen.sort_unstable();
            assert_eq!(seen, (1..=populated as i64).collect::<Vec<_>>());
        }
    }
}
