//! Lenient fixtures (`"format": "cmdb-lite/fixture-1"`): a dataset whose records give only
//! what a test cares about. [`expand`] fills the rest as bk-cmdb would have stored it and
//! returns a strict [`Dataset`], which then loads through the strict checks of `dataset.rs`
//! (references, uniqueness, sequences).
//!
//! What is filled (README "Using it in your tests" lists it for users):
//! - every record: a missing id is the next one after the largest id of its kind in the file;
//!   `creator`/`modifier`/`bk_created_by` the fixture's `user` (default `admin`), times the load
//!   time, `bk_supplier_account` the fixture's `supplier_account` (default `"0"`);
//! - businesses: `bk_biz_name` `biz-<id>`; hosts: empty IPs, cloud area 0;
//! - modules: `bk_biz_id` the only business, `bk_module_name` `module-<id>`, `bk_set_id` 0,
//!   service category 2 (bk-cmdb's built-in "Default"); a host that has a service instance in a
//!   module is added to the module's hosts;
//! - service categories: bk-cmdb's two built-in "Default" categories (ids 1 and 2) when the
//!   fixture gives none;
//! - service instances: the module (the business's only module, or one made for the business
//!   when it has none), the business (the module's), `service_template_id` (the module's),
//!   `labels` null, and the name bk-cmdb generates from the host IP and the first process's
//!   name and port;
//! - processes (under an instance's `processes` or at the top level with `service_instance_id`):
//!   `bk_func_name` defaults to `bk_process_name`; then every attribute is filled, trimmed and
//!   checked exactly as `create_process_instance` stores a process of a raw instance (spec 2.4),
//!   with the relation (spec 2.8) mirrored from the instance. A process that carries its own
//!   `relation` is taken as a strict stored record;
//! - service and process templates: as `create_service_template` / `batch_create_proc_template`
//!   store them; a process template's `property` is a spec as that API takes it (a top-level
//!   `bk_process_name` fills both names), checked and with its names locked.

use crate::dataset::{Dataset, FORMAT as STRICT_FORMAT};
use crate::domain::bound_process::HostIps;
use crate::domain::process::{self, ServerFields};
use crate::domain::service_instance::{FirstProcess, instance_name};
use crate::domain::template_property::ProcessProperty;
use crate::error::Lang;
use crate::store::records::*;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The `format` of a lenient fixture.
pub const FORMAT: &str = "cmdb-lite/fixture-1";

const KEYS: &[&str] = &[
    "format",
    "supplier_account",
    "user",
    "businesses",
    "hosts",
    "modules",
    "service_categories",
    "service_templates",
    "process_templates",
    "service_instances",
    "processes",
    "sequences",
];

/// The built-in service category new modules and templates use ("Default" / "Default").
const DEFAULT_CATEGORY: i64 = 2;

type Obj = Map<String, Value>;

/// Expands a lenient fixture into the strict dataset bk-cmdb would have stored, at `now_ms`.
/// The error names the first record that cannot be completed.
pub fn expand(fixture: Value, now_ms: i64) -> Result<Dataset, String> {
    let Value::Object(mut top) = fixture else {
        return Err("a fixture is a JSON object".into());
    };
    if let Some(k) = top.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!("unknown top-level key {k:?}"));
    }
    match top.get("format").and_then(Value::as_str) {
        Some(FORMAT) => {}
        other => return Err(format!("format is {other:?}, expected {FORMAT:?}")),
    }
    let supplier = match top.remove("supplier_account") {
        None => "0".to_string(),
        Some(Value::String(s)) => s,
        Some(_) => return Err("supplier_account must be a string".into()),
    };
    let user = match top.remove("user") {
        None => "admin".to_string(),
        Some(Value::String(s)) => s,
        Some(_) => return Err("user must be a string".into()),
    };
    let now = crate::clock::format_ms(now_ms);
    let mut ctx = Fill {
        supplier,
        user,
        now,
    };
    let mut list = |key: &str| -> Result<Vec<Obj>, String> {
        match top.remove(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Object(o) => Ok(o),
                    _ => Err(format!("{key}[{i}]: not an object")),
                })
                .collect(),
            Some(_) => Err(format!("{key}: not an array")),
        }
    };
    let businesses = list("businesses")?;
    let hosts = list("hosts")?;
    let modules = list("modules")?;
    let categories = list("service_categories")?;
    let service_templates = list("service_templates")?;
    let process_templates = list("process_templates")?;
    let instances = list("service_instances")?;
    let processes = list("processes")?;
    let sequences: BTreeMap<String, i64> = match top.remove("sequences") {
        None => BTreeMap::new(),
        Some(v) => serde_json::from_value(v).map_err(|e| format!("sequences: {e}"))?,
    };
    ctx.build(
        businesses,
        hosts,
        modules,
        categories,
        service_templates,
        process_templates,
        instances,
        processes,
        sequences,
    )
}

struct Fill {
    supplier: String,
    user: String,
    now: String,
}

/// Ids of one kind: the given ones, and the next free one for records without.
struct Ids {
    next: i64,
}

impl Ids {
    fn new(items: &[Obj], key: &str) -> Ids {
        let top = items
            .iter()
            .filter_map(|o| o.get(key).and_then(Value::as_i64))
            .max()
            .unwrap_or(0);
        Ids {
            next: top.max(0) + 1,
        }
    }
    /// The record's id, set if it had none.
    fn of(&mut self, o: &mut Obj, key: &str) -> Result<i64, String> {
        match o.get(key) {
            None | Some(Value::Null) => {
                let id = self.next;
                self.next += 1;
                o.insert(key.into(), Value::from(id));
                Ok(id)
            }
            Some(v) => v
                .as_i64()
                .ok_or_else(|| format!("{key} must be an integer")),
        }
    }
}

fn get_i64(o: &Obj, key: &str) -> Option<i64> {
    o.get(key).and_then(Value::as_i64)
}

fn fill(o: &mut Obj, key: &str, v: impl Into<Value>) {
    if !o.contains_key(key) {
        o.insert(key.into(), v.into());
    }
}

fn record<T: DeserializeOwned>(o: Obj, what: &str) -> Result<T, String> {
    serde_json::from_value(Value::Object(o)).map_err(|e| format!("{what}: {e}"))
}

impl Fill {
    fn stamp(&self, o: &mut Obj) {
        fill(o, "creator", self.user.as_str());
        fill(o, "modifier", self.user.as_str());
        fill(o, "create_time", self.now.as_str());
        fill(o, "last_time", self.now.as_str());
        fill(o, "bk_supplier_account", self.supplier.as_str());
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        &mut self,
        businesses: Vec<Obj>,
        hosts: Vec<Obj>,
        mut modules: Vec<Obj>,
        categories: Vec<Obj>,
        service_templates: Vec<Obj>,
        process_templates: Vec<Obj>,
        instances: Vec<Obj>,
        processes: Vec<Obj>,
        sequences: BTreeMap<String, i64>,
    ) -> Result<Dataset, String> {
        let mut ds = Dataset {
            format: STRICT_FORMAT.into(),
            supplier_account: self.supplier.clone(),
            cloud_areas: None,
            sets: None,
            businesses: Vec::new(),
            hosts: Vec::new(),
            modules: Vec::new(),
            service_categories: Vec::new(),
            service_templates: Vec::new(),
            process_templates: Vec::new(),
            service_instances: Vec::new(),
            processes: Vec::new(),
            sequences,
        };
        for (i, mut b) in businesses.into_iter().enumerate() {
            let what = format!("businesses[{i}]");
            let id = get_i64(&b, "bk_biz_id").ok_or(format!("{what}: bk_biz_id is required"))?;
            fill(&mut b, "bk_biz_name", format!("biz-{id}"));
            ds.businesses.push(b);
        }
        for (i, h) in hosts.into_iter().enumerate() {
            if get_i64(&h, "bk_host_id").is_none() {
                return Err(format!("hosts[{i}]: bk_host_id is required"));
            }
            ds.hosts.push(h);
        }
        let only_biz = match ds.businesses.as_slice() {
            [b] => get_i64(b, "bk_biz_id"),
            _ => None,
        };
        if categories.is_empty() {
            for (id, parent) in [(1, 0), (DEFAULT_CATEGORY, 1)] {
                ds.service_categories.push(ServiceCategory {
                    id,
                    name: "Default".into(),
                    bk_parent_id: parent,
                    bk_root_id: 1,
                    bk_biz_id: 0,
                });
            }
        } else {
            let mut ids = Ids::new(&categories, "id");
            for (i, mut c) in categories.into_iter().enumerate() {
                let what = format!("service_categories[{i}]");
                let id = ids.of(&mut c, "id").map_err(|e| format!("{what}: {e}"))?;
                let parent = get_i64(&c, "bk_parent_id").unwrap_or(0);
                fill(&mut c, "bk_root_id", if parent == 0 { id } else { parent });
                ds.service_categories.push(record(c, &what)?);
            }
        }
        let mut ids = Ids::new(&service_templates, "id");
        for (i, mut st) in service_templates.into_iter().enumerate() {
            let what = format!("service_templates[{i}]");
            let id = ids.of(&mut st, "id").map_err(|e| format!("{what}: {e}"))?;
            if let Some(b) = only_biz {
                fill(&mut st, "bk_biz_id", b);
            }
            fill(&mut st, "name", format!("template-{id}"));
            fill(&mut st, "service_category_id", DEFAULT_CATEGORY);
            self.stamp(&mut st);
            ds.service_templates.push(record(st, &what)?);
        }
        let mut ids = Ids::new(&process_templates, "id");
        for (i, mut pt) in process_templates.into_iter().enumerate() {
            let what = format!("process_templates[{i}]");
            ids.of(&mut pt, "id").map_err(|e| format!("{what}: {e}"))?;
            let st_id = get_i64(&pt, "service_template_id")
                .ok_or(format!("{what}: service_template_id is required"))?;
            if let Some(st) = ds.service_templates.iter().find(|s| s.id == st_id) {
                fill(&mut pt, "bk_biz_id", st.bk_biz_id);
            }
            let mut prop = match pt.remove("property") {
                None => Obj::new(),
                Some(Value::Object(o)) => o,
                Some(_) => return Err(format!("{what}: property must be an object")),
            };
            if let Some(name) = pt.get("bk_process_name").cloned() {
                for key in ["bk_process_name", "bk_func_name"] {
                    prop.entry(key)
                        .or_insert_with(|| serde_json::json!({ "value": name }));
                }
            }
            // As batch_create_proc_template stores a spec.
            let mut property = ProcessProperty::decode(&prop)
                .map_err(|e| format!("{what}: property: {}", e.render(Lang::En)))?;
            property
                .validate()
                .map_err(|field| format!("{what}: property: {field} is not a valid value"))?;
            property.lock_names();
            fill(&mut pt, "bk_process_name", property.process_name());
            pt.insert("property".into(), property.to_stored());
            self.stamp(&mut pt);
            ds.process_templates.push(record(pt, &what)?);
        }

        // Service instances: their module (made when the business has none), then processes.
        let mut module_ids = Ids::new(&modules, "bk_module_id");
        for (i, m) in modules.iter_mut().enumerate() {
            let what = format!("modules[{i}]");
            let id = module_ids
                .of(m, "bk_module_id")
                .map_err(|e| format!("{what}: {e}"))?;
            if let Some(b) = only_biz {
                fill(m, "bk_biz_id", b);
            }
            fill(m, "bk_module_name", format!("module-{id}"));
            fill(m, "service_category_id", DEFAULT_CATEGORY);
        }
        let mut si_ids = Ids::new(&instances, "id");
        let mut nested: Vec<(i64, Obj)> = Vec::new();
        let mut new_instances = Vec::new();
        for (i, mut si) in instances.into_iter().enumerate() {
            let what = format!("service_instances[{i}]");
            let id = si_ids
                .of(&mut si, "id")
                .map_err(|e| format!("{what}: {e}"))?;
            let host =
                get_i64(&si, "bk_host_id").ok_or(format!("{what}: bk_host_id is required"))?;
            let module = match get_i64(&si, "bk_module_id") {
                Some(m) => m,
                None => {
                    let biz = get_i64(&si, "bk_biz_id")
                        .or(only_biz)
                        .ok_or(format!("{what}: give bk_biz_id or bk_module_id"))?;
                    let of_biz: Vec<i64> = modules
                        .iter()
                        .filter(|m| get_i64(m, "bk_biz_id") == Some(biz))
                        .filter_map(|m| get_i64(m, "bk_module_id"))
                        .collect();
                    match of_biz.as_slice() {
                        [m] => *m,
                        [] => {
                            let mut m = Obj::new();
                            let id = module_ids.of(&mut m, "bk_module_id")?;
                            m.insert("bk_biz_id".into(), Value::from(biz));
                            m.insert("bk_module_name".into(), Value::from(format!("module-{id}")));
                            m.insert("service_category_id".into(), Value::from(DEFAULT_CATEGORY));
                            modules.push(m);
                            id
                        }
                        _ => {
                            return Err(format!(
                                "{what}: business {biz} has several modules: give bk_module_id"
                            ));
                        }
                    }
                }
            };
            si.insert("bk_module_id".into(), Value::from(module));
            let m = modules
                .iter_mut()
                .find(|m| get_i64(m, "bk_module_id") == Some(module))
                .ok_or(format!("{what}: module {module} is not in modules"))?;
            if let Some(b) = get_i64(m, "bk_biz_id") {
                fill(&mut si, "bk_biz_id", b);
            }
            fill(
                &mut si,
                "service_template_id",
                get_i64(m, "service_template_id").unwrap_or(0),
            );
            // bk-cmdb's service instance needs its host in its module.
            let hosts = m.entry("hosts").or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(hs) = hosts
                && !hs.iter().any(|h| h.as_i64() == Some(host))
            {
                hs.push(Value::from(host));
            }
            fill(&mut si, "labels", Value::Null);
            self.stamp(&mut si);
            match si.remove("processes") {
                None => {}
                Some(Value::Array(ps)) => {
                    for (j, p) in ps.into_iter().enumerate() {
                        let Value::Object(p) = p else {
                            return Err(format!("{what}.processes[{j}]: not an object"));
                        };
                        nested.push((id, p));
                    }
                }
                Some(_) => return Err(format!("{what}: processes must be an array")),
            }
            new_instances.push(si);
        }
        for (i, m) in modules.into_iter().enumerate() {
            let _ = i;
            ds.modules.push(m);
        }

        // Processes: nested ones first (in their instance's order), then the top-level ones.
        let mut all: Vec<(String, Obj)> = Vec::new();
        for (n, (si, mut p)) in nested.into_iter().enumerate() {
            p.insert("service_instance_id".into(), Value::from(si));
            all.push((format!("service_instances processes[{n}]"), p));
        }
        for (i, p) in processes.into_iter().enumerate() {
            all.push((format!("processes[{i}]"), p));
        }
        let given: Vec<Obj> = all.iter().map(|(_, p)| p.clone()).collect();
        let mut pids = Ids::new(&given, "bk_process_id");
        let mut first: BTreeMap<i64, FirstProcess> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for (what, mut p) in all {
            if p.contains_key("relation") {
                ds.processes.push(p);
                continue;
            }
            let si_id = get_i64(&p, "service_instance_id")
                .ok_or(format!("{what}: service_instance_id is required"))?;
            let Some(si) = new_instances
                .iter()
                .find(|s| get_i64(s, "id") == Some(si_id))
            else {
                return Err(format!(
                    "{what}: service instance {si_id} is not in service_instances"
                ));
            };
            let biz = get_i64(si, "bk_biz_id").unwrap_or(0);
            let host = get_i64(si, "bk_host_id").unwrap_or(0);
            let pid = pids
                .of(&mut p, "bk_process_id")
                .map_err(|e| format!("{what}: {e}"))?;
            if !seen.insert(pid) {
                return Err(format!("{what}: duplicate bk_process_id {pid}"));
            }
            if !p.contains_key("bk_func_name")
                && let Some(name) = p.get("bk_process_name").cloned()
            {
                p.insert("bk_func_name".into(), name);
            }
            let fields = ServerFields {
                biz_id: biz,
                service_instance_id: si_id,
                supplier: &self.supplier,
                user: &self.user,
                now: &self.now,
            };
            process::stamp_request_fields(&mut p, &fields);
            process::validate_create(&mut p)
                .map_err(|e| format!("{what}: {}", e.render(Lang::En)))?;
            process::stamp_insert_fields(&mut p, pid, &fields);
            first.entry(si_id).or_insert_with(|| FirstProcess {
                name: p
                    .get("bk_process_name")
                    .and_then(Value::as_str)
                    .map(String::from),
                port: p
                    .get("bind_info")
                    .and_then(Value::as_array)
                    .and_then(|rows| {
                        rows.iter()
                            .find_map(|r| r.get("port").and_then(Value::as_str).map(String::from))
                    }),
            });
            let relation = Relation {
                bk_biz_id: biz,
                bk_process_id: pid,
                service_instance_id: si_id,
                process_template_id: 0,
                bk_host_id: host,
                bk_supplier_account: self.supplier.clone(),
            };
            p.insert(
                "relation".into(),
                serde_json::to_value(&relation).map_err(|e| e.to_string())?,
            );
            ds.processes.push(p);
        }
        // The name bk-cmdb generates for an instance created without one.
        for (i, mut si) in new_instances.into_iter().enumerate() {
            if !si.contains_key("name") {
                let id = get_i64(&si, "id").unwrap_or(0);
                let host_id = get_i64(&si, "bk_host_id").unwrap_or(0);
                let text =
                    |h: &Obj, k: &str| h.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let name = match ds
                    .hosts
                    .iter()
                    .find(|h| get_i64(h, "bk_host_id") == Some(host_id))
                {
                    Some(h) => {
                        let (inner, outer) =
                            (text(h, "bk_host_innerip"), text(h, "bk_host_outerip"));
                        let (inner_v6, outer_v6) =
                            (text(h, "bk_host_innerip_v6"), text(h, "bk_host_outerip_v6"));
                        instance_name(
                            &HostIps {
                                inner: &inner,
                                outer: &outer,
                                inner_v6: &inner_v6,
                                outer_v6: &outer_v6,
                            },
                            first.get(&id),
                        )
                    }
                    None => String::new(),
                };
                si.insert("name".into(), Value::from(name));
            }
            ds.service_instances
                .push(record(si, &format!("service_instances[{i}]"))?);
        }
        // Processes are loaded in instance order, as an export lists them.
        ds.processes.sort_by_key(|p| {
            p.get("relation")
                .and_then(|r| r.get("service_instance_id"))
                .and_then(Value::as_i64)
                .unwrap_or(0)
        });
        Ok(ds)
    }
}
