//! `cmdb-lite push`: replays a store's service categories, service templates, process
//! templates, service instances and processes into a bk-cmdb through its public API, in that
//! order, and keeps it in step on later pushes.
//!
//! - **Matching, not copying ids.** The target's topology must already hold the businesses
//!   (by name), sets and modules (by name path) and hosts (inner IP and cloud area) the pushed
//!   records hang on; what is missing is reported by name and nothing depending on it is
//!   written. Categories match by name under their parent, templates by name in their
//!   business, process templates by process name in their template, instances by module, host
//!   and template (raw ones by module, host and name), processes by name in their instance.
//! - **The id map** (`store/push_map.rs`), kept in the pushed store per target, says which
//!   target record each local one became and a digest of what was pushed: a later push sends
//!   only what changed (a record whose digest differs is updated; one that is gone is deleted
//!   on the target). Each acknowledged call's records are mapped durably before the next call.
//! - **Resumable.** A push killed between a call and its map write finds the record on the
//!   target by its match key next time and adopts it: nothing is created twice.

mod target;

pub use target::{Address, CallError, Family, Target};

use crate::domain::process_fields;
use crate::error::CcError;
use crate::store::push_map::Mapped;
use crate::store::records::{
    Business, Host, Module, ProcessTemplate, ServiceCategory, ServiceInstance, ServiceTemplate, Set,
};
use crate::store::{Store, StoreError};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::time::{Duration, Instant};

/// Records per create, update or delete call (bk-cmdb's own per-request maxima are 100 for
/// creates and updates of processes and instances).
pub const PUSH_BATCH: usize = 100;

/// Hosts read per `list_biz_hosts` page (bk-cmdb allows at most 500).
const HOST_PAGE: i64 = 500;

/// Kinds in the id map.
const CATEGORY: u8 = 1;
const TEMPLATE: u8 = 2;
const PROC_TEMPLATE: u8 = 3;
const INSTANCE: u8 = 4;
const PROCESS: u8 = 5;

/// What one push did (or, with `--dry-run`, would do), per kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Already on the target as pushed (mapped, or found by its match key).
    pub unchanged: u64,
    /// Not pushed: what it depends on is missing on the target.
    pub skipped: u64,
}

/// The outcome of a push.
#[derive(Debug, Default)]
pub struct Summary {
    pub categories: Tally,
    pub templates: Tally,
    pub process_templates: Tally,
    pub instances: Tally,
    pub processes: Tally,
    /// Calls made to the target.
    pub calls: u64,
    /// What could not be pushed, by name, once each.
    pub problems: Vec<String>,
    pub elapsed: Duration,
}

impl Summary {
    pub fn render(&self, dry_run: bool) -> String {
        let mut out = String::new();
        let verb = if dry_run { "would be " } else { "" };
        for (name, t) in [
            ("service categories", self.categories),
            ("service templates", self.templates),
            ("process templates", self.process_templates),
            ("service instances", self.instances),
            ("processes", self.processes),
        ] {
            out.push_str(&format!(
                "{name:<19} {verb}created {}, {verb}updated {}, {verb}deleted {}, unchanged {}, skipped {}\n",
                t.created, t.updated, t.deleted, t.unchanged, t.skipped
            ));
        }
        for p in &self.problems {
            out.push_str(&format!("not pushed: {p}\n"));
        }
        let secs = self.elapsed.as_secs_f64();
        out.push_str(&format!(
            "{} calls to the target in {secs:.1} s\n",
            self.calls
        ));
        out
    }
}

/// Why a push stopped.
#[derive(Debug)]
pub enum Failure {
    /// The target refused a call, or could not be reached: the push stops there (what was
    /// acknowledged before is mapped; the next push resumes).
    Call(CallError, Box<Summary>),
    /// The store could not be read or written.
    Store(String),
}

/// A push's settings.
pub struct Options<'a> {
    pub address: Address<'a>,
    pub dry_run: bool,
    /// Progress lines on stderr.
    pub progress: bool,
}

/// Pushes `store` to the target of `o`. `Ok` even if some records were skipped (see
/// `Summary::problems`).
pub fn run(store: &Store, o: &Options) -> Result<Summary, Failure> {
    let started = Instant::now();
    let target = Target::connect(&o.address).map_err(|why| {
        Failure::Call(
            CallError::Failed {
                api: "connect".into(),
                why,
            },
            Box::default(),
        )
    })?;
    let mut p = Push {
        store,
        key: format!(
            "{}#{:?}",
            o.address.url.trim_end_matches('/'),
            o.address.family
        ),
        t: target,
        dry: o.dry_run,
        sum: Summary::default(),
        seen_problems: HashSet::new(),
        progress: Progress::new(o.progress),
        src: Source::default(),
        topo: Topo::default(),
        mem: HashMap::new(),
    };
    let result = p.all();
    p.sum.calls = p.t.calls;
    p.sum.elapsed = started.elapsed();
    p.progress.finish();
    match result {
        Ok(()) => Ok(p.sum),
        Err(Stop::Call(e)) => Err(Failure::Call(e, Box::new(p.sum))),
        Err(Stop::Store(e)) => Err(Failure::Store(e)),
    }
}

enum Stop {
    Call(CallError),
    Store(String),
}

impl From<CallError> for Stop {
    fn from(e: CallError) -> Stop {
        Stop::Call(e)
    }
}

impl From<CcError> for Stop {
    fn from(e: CcError) -> Stop {
        Stop::Store(e.to_string())
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Stop {
        CcError::from(e).into()
    }
}

/// The small kinds of the source, read once.
#[derive(Default)]
struct Source {
    businesses: HashMap<i64, String>,
    sets: HashMap<i64, String>,
    /// Module id → (business, set, name, service template).
    modules: HashMap<i64, (i64, i64, String, i64)>,
    /// Host id → (inner IP, cloud).
    hosts: HashMap<i64, (String, i64)>,
    categories: Vec<ServiceCategory>,
    templates: Vec<ServiceTemplate>,
    proc_templates: Vec<ProcessTemplate>,
}

/// (set name, module name) → (module id, service template).
type ModulesByPath = HashMap<(String, String), (i64, i64)>;
/// (inner IP, cloud) → (host id, its modules).
type HostsByAddress = HashMap<(String, i64), (i64, HashSet<i64>)>;

/// The target's topology, read as needed.
#[derive(Default)]
struct Topo {
    /// Local business → target business (None: missing).
    biz: HashMap<i64, Option<i64>>,
    /// Target business → its modules.
    modules: HashMap<i64, ModulesByPath>,
    /// Target business → its hosts.
    hosts: HashMap<i64, HostsByAddress>,
}

struct Push<'a> {
    store: &'a Store,
    key: String,
    t: Target,
    dry: bool,
    sum: Summary,
    seen_problems: HashSet<String>,
    progress: Progress,
    src: Source,
    topo: Topo,
    /// The id map of the small kinds (all but processes), as the push goes: with `--dry-run`
    /// it also holds stand-ins for what would be created.
    mem: HashMap<u8, BTreeMap<i64, Mapped>>,
}

/// FNV-1a of a value's JSON text: the digest kept in the id map.
fn digest(v: &Value) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn as_i64(v: &Value, key: &str) -> i64 {
    v[key].as_i64().unwrap_or(0)
}

fn items(data: &Value) -> Vec<Value> {
    data["info"].as_array().cloned().unwrap_or_default()
}

impl Push<'_> {
    fn all(&mut self) -> Result<(), Stop> {
        self.read_source()?;
        let instances = self.store.read::<_, CcError>(|tx| {
            let mut n = 0u64;
            tx.scan::<ServiceInstance, CcError>(|_, _| {
                n += 1;
                Ok(true)
            })?;
            Ok(n)
        })?;
        let processes = self.store.read::<_, CcError>(|tx| {
            let mut n = 0u64;
            tx.scan_bytes::<CcError>(crate::store::tables::RELATIONS, |_, _| {
                n += 1;
                Ok(true)
            })?;
            Ok(n)
        })?;
        self.progress.total = self.src.categories.len() as u64
            + self.src.templates.len() as u64
            + self.src.proc_templates.len() as u64
            + instances
            + processes;
        self.categories()?;
        self.templates()?;
        self.proc_templates()?;
        self.instances_and_processes()?;
        self.deletes()?;
        Ok(())
    }

    fn problem(&mut self, p: String) {
        if self.seen_problems.insert(p.clone()) {
            self.sum.problems.push(p);
        }
    }

    fn read_source(&mut self) -> Result<(), Stop> {
        let src = self.store.read::<_, CcError>(|tx| {
            let mut s = Source::default();
            tx.scan::<Business, CcError>(|id, b| {
                s.businesses.insert(id, b.bk_biz_name);
                Ok(true)
            })?;
            tx.scan::<Set, CcError>(|id, x| {
                s.sets.insert(id, x.bk_set_name);
                Ok(true)
            })?;
            tx.scan::<Module, CcError>(|id, m| {
                s.modules.insert(
                    id,
                    (
                        m.bk_biz_id,
                        m.bk_set_id,
                        m.bk_module_name,
                        m.service_template_id,
                    ),
                );
                Ok(true)
            })?;
            tx.scan::<Host, CcError>(|id, h| {
                s.hosts.insert(id, (h.bk_host_innerip, h.bk_cloud_id));
                Ok(true)
            })?;
            tx.scan::<ServiceCategory, CcError>(|_, c| {
                s.categories.push(c);
                Ok(true)
            })?;
            tx.scan::<ServiceTemplate, CcError>(|_, t| {
                s.templates.push(t);
                Ok(true)
            })?;
            tx.scan::<ProcessTemplate, CcError>(|_, t| {
                s.proc_templates.push(t);
                Ok(true)
            })?;
            Ok(s)
        })?;
        self.src = src;
        Ok(())
    }

    /// The id map of a small kind (not processes).
    fn mapped(&mut self, kind: u8) -> Result<BTreeMap<i64, Mapped>, Stop> {
        debug_assert!(
            kind != PROCESS,
            "processes are mapped one instance at a time"
        );
        if !self.mem.contains_key(&kind) {
            let key = self.key.clone();
            let v = self.store.read(move |tx| tx.push_mapped(&key, kind))?;
            self.mem
                .insert(kind, v.into_iter().map(|m| (m.local, m)).collect());
        }
        Ok(self.mem[&kind].clone())
    }

    /// Maps records durably (with `--dry-run`, in memory only).
    fn map(&mut self, kind: u8, m: Vec<Mapped>) -> Result<(), Stop> {
        if let Some(mem) = self.mem.get_mut(&kind) {
            for x in &m {
                mem.insert(x.local, *x);
            }
        }
        if self.dry || m.is_empty() {
            return Ok(());
        }
        let key = self.key.clone();
        self.store
            .write_alone(move |tx| tx.push_map_put(&key, kind, &m))?;
        Ok(())
    }

    fn unmap(&mut self, kind: u8, locals: Vec<i64>) -> Result<(), Stop> {
        if let Some(mem) = self.mem.get_mut(&kind) {
            for l in &locals {
                mem.remove(l);
            }
        }
        if self.dry || locals.is_empty() {
            return Ok(());
        }
        let key = self.key.clone();
        self.store
            .write_alone(move |tx| tx.push_map_remove(&key, kind, &locals))?;
        Ok(())
    }

    /// The target business of a local one, looked up by name once.
    fn target_biz(&mut self, local: i64) -> Result<Option<i64>, Stop> {
        if let Some(t) = self.topo.biz.get(&local) {
            return Ok(*t);
        }
        let name = self.src.businesses.get(&local).cloned().unwrap_or_default();
        let data = self.t.call(
            "search_business",
            &json!({"fields": ["bk_biz_id", "bk_biz_name"],
                "condition": {"bk_biz_name": name}}),
        )?;
        let found = items(&data)
            .iter()
            .find(|b| b["bk_biz_name"] == json!(name))
            .map(|b| as_i64(b, "bk_biz_id"));
        if found.is_none() {
            self.problem(format!("business {name:?} is not on the target"));
        }
        self.topo.biz.insert(local, found);
        Ok(found)
    }

    /// The target module (and its service template) of a local module.
    fn target_module(&mut self, local: i64) -> Result<Option<(i64, i64, i64)>, Stop> {
        let Some((biz, set, name, _)) = self.src.modules.get(&local).cloned() else {
            return Ok(None);
        };
        let Some(tbiz) = self.target_biz(biz)? else {
            return Ok(None);
        };
        self.load_modules(tbiz)?;
        let set_name = self.src.sets.get(&set).cloned().unwrap_or_default();
        let found = self.topo.modules[&tbiz]
            .get(&(set_name.clone(), name.clone()))
            .copied();
        match found {
            Some((m, st)) => Ok(Some((tbiz, m, st))),
            None => {
                let biz_name = self.src.businesses.get(&biz).cloned().unwrap_or_default();
                self.problem(format!(
                    "module {biz_name}/{set_name}/{name} is not on the target"
                ));
                Ok(None)
            }
        }
    }

    /// Reads the target business's sets and modules once.
    fn load_modules(&mut self, tbiz: i64) -> Result<(), Stop> {
        if self.topo.modules.contains_key(&tbiz) {
            return Ok(());
        }
        let sets = self.t.call(
            "search_set",
            &json!({"bk_biz_id": tbiz, "bk_supplier_account": "0",
                    "fields": ["bk_set_id", "bk_set_name"], "condition": {}}),
        )?;
        let set_names: HashMap<i64, String> = items(&sets)
            .iter()
            .map(|s| {
                let n = s["bk_set_name"].as_str().unwrap_or("").to_string();
                (as_i64(s, "bk_set_id"), n)
            })
            .collect();
        let modules = self.t.call(
            "search_module",
            &json!({"bk_biz_id": tbiz, "bk_set_id": 0, "bk_supplier_account": "0",
                    "fields": ["bk_module_id", "bk_module_name", "bk_set_id",
                        "service_template_id"], "condition": {}}),
        )?;
        let mut by_path = HashMap::new();
        for m in items(&modules) {
            let set = set_names
                .get(&as_i64(&m, "bk_set_id"))
                .cloned()
                .unwrap_or_default();
            let n = m["bk_module_name"].as_str().unwrap_or("").to_string();
            by_path.insert(
                (set, n),
                (
                    as_i64(&m, "bk_module_id"),
                    as_i64(&m, "service_template_id"),
                ),
            );
        }
        self.topo.modules.insert(tbiz, by_path);
        Ok(())
    }

    /// The target host of a local one, if it is in the target module `tmodule`.
    fn target_host(&mut self, tbiz: i64, tmodule: i64, local: i64) -> Result<Option<i64>, Stop> {
        if !self.topo.hosts.contains_key(&tbiz) {
            let mut hosts = HashMap::new();
            let mut start = 0;
            loop {
                let data = self.t.call(
                    "list_biz_hosts_topo",
                    &json!({"bk_biz_id": tbiz, "page": {"start": start, "limit": HOST_PAGE},
                        "fields": ["bk_host_id", "bk_host_innerip", "bk_cloud_id"]}),
                )?;
                let page = items(&data);
                for h in &page {
                    let host = &h["host"];
                    let ip = host["bk_host_innerip"].as_str().unwrap_or("").to_string();
                    let modules: HashSet<i64> = h["topo"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|set| set["module"].as_array().cloned().unwrap_or_default())
                        .map(|m| as_i64(&m, "bk_module_id"))
                        .collect();
                    hosts.insert(
                        (ip, as_i64(host, "bk_cloud_id")),
                        (as_i64(host, "bk_host_id"), modules),
                    );
                }
                start += HOST_PAGE;
                if page.is_empty() || start >= as_i64(&data, "count") {
                    break;
                }
            }
            self.topo.hosts.insert(tbiz, hosts);
        }
        let (ip, cloud) = self.src.hosts.get(&local).cloned().unwrap_or_default();
        let found = self.topo.hosts[&tbiz].get(&(ip.clone(), cloud)).cloned();
        match found {
            Some((id, modules)) if modules.contains(&tmodule) => Ok(Some(id)),
            Some(_) => {
                self.problem(format!(
                    "host {ip} (cloud area {cloud}) is not in the target's module {tmodule}"
                ));
                Ok(None)
            }
            None => {
                self.problem(format!(
                    "host {ip} (cloud area {cloud}) is not in the target's business {tbiz}"
                ));
                Ok(None)
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Service categories

    fn categories(&mut self) -> Result<(), Stop> {
        let mut map = self.mapped(CATEGORY)?;
        let cats = std::mem::take(&mut self.src.categories);
        // Parents before children: roots (parent 0) first, then by id.
        let mut order: Vec<&ServiceCategory> = cats.iter().collect();
        order.sort_by_key(|c| (c.bk_parent_id != 0, c.id));
        let mut listed: HashMap<i64, Vec<Value>> = HashMap::new();
        let any_biz = self.any_target_biz()?;
        for c in order {
            self.progress.step();
            let tbiz = if c.bk_biz_id == 0 {
                any_biz
            } else {
                self.target_biz(c.bk_biz_id)?
            };
            let Some(tbiz) = tbiz else {
                self.sum.categories.skipped += 1;
                continue;
            };
            let tparent = if c.bk_parent_id == 0 {
                Some(0)
            } else {
                map.get(&c.bk_parent_id).map(|m| m.target)
            };
            let Some(tparent) = tparent else {
                self.sum.categories.skipped += 1;
                continue;
            };
            let own_biz = if c.bk_biz_id == 0 { 0 } else { tbiz };
            let d = digest(&json!([c.name, tparent, own_biz]));
            if map.get(&c.id).is_some_and(|m| m.digest == d) {
                self.sum.categories.unchanged += 1;
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = listed.entry(tbiz) {
                let data = self
                    .t
                    .call("list_service_category", &json!({"bk_biz_id": tbiz}))?;
                e.insert(items(&data));
            }
            let on_target = listed[&tbiz].iter().find(|t| {
                t["name"] == json!(c.name)
                    && as_i64(t, "bk_parent_id") == tparent
                    && as_i64(t, "bk_biz_id") == own_biz
            });
            let mapped_id = map.get(&c.id).map(|m| m.target);
            let tid = match (on_target, mapped_id) {
                (Some(t), _) => {
                    self.sum.categories.unchanged += 1;
                    as_i64(t, "id")
                }
                (None, Some(tid)) if c.bk_biz_id != 0 => {
                    // Renamed here: the target's follows.
                    self.sum.categories.updated += 1;
                    if !self.dry {
                        self.t.call(
                            "update_service_category",
                            &json!({"bk_biz_id": tbiz, "id": tid, "name": c.name}),
                        )?;
                    }
                    tid
                }
                (None, _) if c.bk_biz_id == 0 => {
                    self.problem(format!(
                        "built-in service category {:?} is not on the target",
                        c.name
                    ));
                    self.sum.categories.skipped += 1;
                    continue;
                }
                (None, _) => {
                    self.sum.categories.created += 1;
                    if self.dry {
                        // A stand-in id, so that what hangs on it is planned too.
                        -c.id
                    } else {
                        let made = self.t.call(
                            "create_service_category",
                            &json!({"bk_biz_id": tbiz, "name": c.name, "bk_parent_id": tparent}),
                        )?;
                        if let Some(list) = listed.get_mut(&tbiz) {
                            list.push(made.clone());
                        }
                        as_i64(&made, "id")
                    }
                }
            };
            let m = Mapped {
                local: c.id,
                target: tid,
                parent: own_biz,
                digest: d,
            };
            map.insert(c.id, m);
            self.map(CATEGORY, vec![m])?;
        }
        self.src.categories = cats;
        Ok(())
    }

    /// Some business of the target the pushed records go to (for reading its built-in
    /// categories).
    fn any_target_biz(&mut self) -> Result<Option<i64>, Stop> {
        let mut locals: Vec<i64> = self
            .src
            .templates
            .iter()
            .map(|t| t.bk_biz_id)
            .chain(self.src.categories.iter().map(|c| c.bk_biz_id))
            .filter(|b| *b != 0)
            .collect();
        locals.sort_unstable();
        locals.dedup();
        for b in locals {
            if let Some(t) = self.target_biz(b)? {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }

    // -----------------------------------------------------------------------------------------
    // Service templates

    fn templates(&mut self) -> Result<(), Stop> {
        let mut map = self.mapped(TEMPLATE)?;
        let cats = self.mapped(CATEGORY)?;
        let templates = std::mem::take(&mut self.src.templates);
        let mut listed: HashMap<i64, Vec<Value>> = HashMap::new();
        for st in &templates {
            self.progress.step();
            let Some(tbiz) = self.target_biz(st.bk_biz_id)? else {
                self.sum.templates.skipped += 1;
                continue;
            };
            let Some(tcat) = cats.get(&st.service_category_id).map(|m| m.target) else {
                self.problem(format!(
                    "service template {:?}: its category is not on the target",
                    st.name
                ));
                self.sum.templates.skipped += 1;
                continue;
            };
            let d = digest(&json!([st.name, tcat, tbiz]));
            if map.get(&st.id).is_some_and(|m| m.digest == d) {
                self.sum.templates.unchanged += 1;
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = listed.entry(tbiz) {
                let data = self.t.call(
                    "list_service_template",
                    &json!({"bk_biz_id": tbiz, "page": {"start": 0, "limit": 999_999_999}}),
                )?;
                e.insert(items(&data));
            }
            let mapped_id = map.get(&st.id).map(|m| m.target);
            let on_target = listed[&tbiz]
                .iter()
                .find(|t| Some(as_i64(t, "id")) == mapped_id)
                .or_else(|| listed[&tbiz].iter().find(|t| t["name"] == json!(st.name)))
                .cloned();
            let tid = match on_target {
                Some(t) => {
                    let tid = as_i64(&t, "id");
                    if t["name"] == json!(st.name) && as_i64(&t, "service_category_id") == tcat {
                        self.sum.templates.unchanged += 1;
                    } else {
                        self.sum.templates.updated += 1;
                        if !self.dry {
                            self.t.call(
                                "update_service_template",
                                &json!({"bk_biz_id": tbiz, "id": tid, "name": st.name,
                                    "service_category_id": tcat}),
                            )?;
                        }
                    }
                    tid
                }
                None => {
                    self.sum.templates.created += 1;
                    if self.dry {
                        -st.id
                    } else {
                        let made = self.t.call(
                            "create_service_template",
                            &json!({"bk_biz_id": tbiz, "name": st.name,
                                "service_category_id": tcat}),
                        )?;
                        as_i64(&made, "id")
                    }
                }
            };
            let m = Mapped {
                local: st.id,
                target: tid,
                parent: tbiz,
                digest: d,
            };
            map.insert(st.id, m);
            self.map(TEMPLATE, vec![m])?;
        }
        self.src.templates = templates;
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Process templates

    fn proc_templates(&mut self) -> Result<(), Stop> {
        let mut map = self.mapped(PROC_TEMPLATE)?;
        let templates = self.mapped(TEMPLATE)?;
        let pts = std::mem::take(&mut self.src.proc_templates);
        let mut changed: Vec<(i64, i64)> = Vec::new();
        let mut by_template: BTreeMap<i64, Vec<&ProcessTemplate>> = BTreeMap::new();
        for pt in &pts {
            by_template
                .entry(pt.service_template_id)
                .or_default()
                .push(pt);
        }
        for (st, group) in by_template {
            let Some(tst) = templates.get(&st).copied() else {
                for _ in &group {
                    self.progress.step();
                    self.sum.process_templates.skipped += 1;
                }
                continue;
            };
            let tbiz = tst.parent;
            let todo: Vec<(&ProcessTemplate, u64)> = group
                .iter()
                .map(|pt| {
                    (
                        *pt,
                        digest(&json!([pt.bk_process_name, pt.property, tst.target])),
                    )
                })
                .collect();
            if todo
                .iter()
                .all(|(pt, d)| map.get(&pt.id).is_some_and(|m| m.digest == *d))
            {
                for _ in &todo {
                    self.progress.step();
                    self.sum.process_templates.unchanged += 1;
                }
                continue;
            }
            let listed = self.t.call(
                "list_proc_template",
                &json!({"bk_biz_id": tbiz, "service_template_id": tst.target}),
            )?;
            let listed = items(&listed);
            let mut creates = Vec::new();
            let mut done = Vec::new();
            for (pt, d) in todo {
                self.progress.step();
                if map.get(&pt.id).is_some_and(|m| m.digest == d) {
                    self.sum.process_templates.unchanged += 1;
                    continue;
                }
                let mapped_id = map.get(&pt.id).map(|m| m.target);
                let on_target = listed
                    .iter()
                    .find(|t| Some(as_i64(t, "id")) == mapped_id)
                    .or_else(|| {
                        listed
                            .iter()
                            .find(|t| t["bk_process_name"] == json!(pt.bk_process_name))
                    });
                match on_target {
                    Some(t) => {
                        let tid = as_i64(t, "id");
                        if same_spec(&t["property"], &pt.property) {
                            self.sum.process_templates.unchanged += 1;
                        } else {
                            self.sum.process_templates.updated += 1;
                            if !self.dry {
                                self.t.call(
                                    "update_proc_template",
                                    &json!({"bk_biz_id": tbiz, "process_template_id": tid,
                                        "process_property": spec_of(&pt.property)}),
                                )?;
                            }
                        }
                        done.push(Mapped {
                            local: pt.id,
                            target: tid,
                            parent: st,
                            digest: d,
                        });
                    }
                    None => {
                        self.sum.process_templates.created += 1;
                        creates.push((pt, d));
                    }
                }
            }
            for m in &done {
                map.insert(m.local, *m);
            }
            self.map(PROC_TEMPLATE, done)?;
            if self.dry {
                continue;
            }
            changed.push((tbiz, tst.target));
            for chunk in creates.chunks(PUSH_BATCH) {
                let specs: Vec<Value> = chunk
                    .iter()
                    .map(|(pt, _)| json!({"spec": spec_of(&pt.property)}))
                    .collect();
                let ids = self.t.call(
                    "batch_create_proc_template",
                    &json!({"bk_biz_id": tbiz, "service_template_id": tst.target,
                        "processes": specs}),
                )?;
                let made: Vec<Mapped> = chunk
                    .iter()
                    .zip(ids.as_array().cloned().unwrap_or_default())
                    .map(|((pt, d), id)| Mapped {
                        local: pt.id,
                        target: id.as_i64().unwrap_or(0),
                        parent: st,
                        digest: *d,
                    })
                    .collect();
                for m in &made {
                    map.insert(m.local, *m);
                }
                self.map(PROC_TEMPLATE, made)?;
            }
        }
        self.src.proc_templates = pts;
        // Instances the target already has of a changed template take its processes as
        // bk-cmdb's users do: by syncing the template's modules.
        for (tbiz, tst) in changed {
            self.load_modules(tbiz)?;
            let modules: Vec<i64> = self.topo.modules[&tbiz]
                .values()
                .filter(|(_, st)| *st == tst)
                .map(|(m, _)| *m)
                .collect();
            if !modules.is_empty() {
                self.t.call(
                    "sync_service_template_to_service_instance",
                    &json!({"bk_biz_id": tbiz, "service_template_id": tst,
                        "bk_module_ids": modules}),
                )?;
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Service instances and their processes

    fn instances_and_processes(&mut self) -> Result<(), Stop> {
        let mut map = self.mapped(INSTANCE)?;
        let templates = self.mapped(TEMPLATE)?;
        let locked = self.locked_fields();
        let mut by_module: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        // Instance records are small; one module's are held at a time below.
        let ids: Vec<(i64, i64)> = self.store.read::<_, CcError>(|tx| {
            let mut v = Vec::new();
            tx.scan::<ServiceInstance, CcError>(|id, si| {
                v.push((si.bk_module_id, id));
                Ok(true)
            })?;
            Ok(v)
        })?;
        for (module, id) in ids {
            by_module.entry(module).or_default().push(id);
        }
        for (module, stubs) in by_module {
            let sis: Vec<ServiceInstance> = self.store.read::<_, CcError>(|tx| {
                let mut v = Vec::new();
                for id in &stubs {
                    if let Some(si) = tx.get::<ServiceInstance>(*id)? {
                        v.push(si);
                    }
                }
                Ok(v)
            })?;
            let Some((tbiz, tmodule, tmodule_st)) = self.target_module(module)? else {
                self.skip_instances(&sis)?;
                continue;
            };
            let local_st = self.src.modules.get(&module).map_or(0, |m| m.3);
            let want_st = if local_st == 0 {
                Some(0)
            } else {
                templates.get(&local_st).map(|m| m.target)
            };
            if want_st != Some(tmodule_st) {
                let (biz, set, name, _) = self.src.modules[&module].clone();
                let path = format!(
                    "{}/{}/{name}",
                    self.src.businesses.get(&biz).cloned().unwrap_or_default(),
                    self.src.sets.get(&set).cloned().unwrap_or_default()
                );
                self.problem(format!(
                    "module {path} on the target is not built from the same service template"
                ));
                self.skip_instances(&sis)?;
                continue;
            }
            let mut listed: Option<Vec<Value>> = None;
            let mut claimed: HashSet<i64> = HashSet::new();
            let mut creates: Vec<(ServiceInstance, i64, u64)> = Vec::new();
            let mut ready: Vec<(ServiceInstance, i64)> = Vec::new();
            for si in sis {
                self.progress.step();
                let Some(thost) = self.target_host(tbiz, tmodule, si.bk_host_id)? else {
                    self.skip_instances(std::slice::from_ref(&si))?;
                    self.progress.undo_step();
                    continue;
                };
                let tst = if si.service_template_id == 0 {
                    0
                } else {
                    tmodule_st
                };
                let d = digest(&json!([si.name, tmodule, thost, tst]));
                if let Some(m) = map.get(&si.id).filter(|m| m.digest == d) {
                    self.sum.instances.unchanged += 1;
                    claimed.insert(m.target);
                    ready.push((si, m.target));
                    continue;
                }
                if listed.is_none() {
                    let data = self.t.call(
                        "list_service_instance",
                        &json!({"bk_biz_id": tbiz, "bk_module_id": tmodule,
                            "page": {"start": 0, "limit": 0}}),
                    )?;
                    listed = Some(items(&data));
                }
                let on_target = listed.as_ref().and_then(|l| {
                    l.iter().find(|t| {
                        let id = as_i64(t, "id");
                        !claimed.contains(&id)
                            && as_i64(t, "bk_host_id") == thost
                            && as_i64(t, "service_template_id") == tst
                            && (tst != 0 || t["name"] == json!(si.name))
                    })
                });
                match on_target {
                    Some(t) => {
                        let tid = as_i64(t, "id");
                        claimed.insert(tid);
                        self.sum.instances.unchanged += 1;
                        let m = Mapped {
                            local: si.id,
                            target: tid,
                            parent: tbiz,
                            digest: d,
                        };
                        map.insert(si.id, m);
                        self.map(INSTANCE, vec![m])?;
                        ready.push((si, tid));
                    }
                    None => {
                        self.sum.instances.created += 1;
                        creates.push((si, thost, d));
                    }
                }
            }
            if self.dry {
                for (si, _, _) in &creates {
                    let n = self.store.read(|tx| tx.process_ids_of(si.id))?.len() as u64;
                    self.sum.processes.created += n;
                    self.progress.add(n);
                }
            } else {
                for chunk in creates.chunks(PUSH_BATCH) {
                    let mut instances = Vec::new();
                    for (si, thost, _) in chunk {
                        let processes = if si.service_template_id == 0 {
                            let first = self.store.read::<_, CcError>(|tx| {
                                let pid = tx.process_ids_of(si.id)?.first().copied();
                                Ok(match pid {
                                    Some(pid) => tx.process(pid)?,
                                    None => None,
                                })
                            })?;
                            match first {
                                Some(p) => json!([{"process_info": pushable(&p, None)}]),
                                None => json!([]),
                            }
                        } else {
                            json!([])
                        };
                        instances.push(json!({"bk_host_id": thost,
                            "service_instance_name": si.name, "processes": processes}));
                    }
                    let ids = self.t.call(
                        "create_service_instance",
                        &json!({"bk_biz_id": tbiz, "bk_module_id": tmodule,
                            "instances": instances}),
                    )?;
                    let ids = ids.as_array().cloned().unwrap_or_default();
                    let made: Vec<Mapped> = chunk
                        .iter()
                        .zip(&ids)
                        .map(|((si, _, d), id)| Mapped {
                            local: si.id,
                            target: id.as_i64().unwrap_or(0),
                            parent: tbiz,
                            digest: *d,
                        })
                        .collect();
                    for m in &made {
                        map.insert(m.local, *m);
                    }
                    self.map(INSTANCE, made.clone())?;
                    for ((si, _, _), m) in chunk.iter().zip(made) {
                        ready.push((si.clone(), m.target));
                    }
                }
            }
            for (si, tsi) in ready {
                self.processes(&si, tbiz, tsi, &locked)?;
            }
        }
        Ok(())
    }

    /// Counts the instances (and their processes) that cannot be pushed.
    fn skip_instances(&mut self, sis: &[ServiceInstance]) -> Result<(), Stop> {
        for si in sis {
            let n = self.store.read(|tx| tx.process_ids_of(si.id))?.len() as u64;
            self.sum.instances.skipped += 1;
            self.sum.processes.skipped += n;
            self.progress.add(n + 1);
        }
        Ok(())
    }

    /// The processes of one instance, mapped to `tsi` on the target.
    fn processes(
        &mut self,
        si: &ServiceInstance,
        tbiz: i64,
        tsi: i64,
        locked: &HashMap<i64, Vec<String>>,
    ) -> Result<(), Stop> {
        let key = self.key.clone();
        let (procs, mut map) = self.store.read::<_, CcError>(|tx| {
            let mut v = Vec::new();
            let mut map = BTreeMap::new();
            for pid in tx.process_ids_of(si.id)? {
                let (Some(p), Some(r)) = (tx.process(pid)?, tx.relation(pid)?) else {
                    continue;
                };
                if let Some(m) = tx.push_map_get(&key, PROCESS, pid)? {
                    map.insert(pid, m);
                }
                v.push((pid, p, r.process_template_id));
            }
            Ok((v, map))
        })?;
        let map = &mut map;
        // (id, stored process, process template, what a create or update sends, its digest)
        let todo: Vec<_> = procs
            .into_iter()
            .map(|(pid, p, pt)| {
                let body = pushable(&p, locked.get(&pt));
                let d = digest(&json!([body, tsi]));
                (pid, p, pt, body, d)
            })
            .collect();
        if todo
            .iter()
            .all(|(pid, _, _, _, d)| map.get(pid).is_some_and(|m| m.digest == *d))
        {
            self.sum.processes.unchanged += todo.len() as u64;
            self.progress.add(todo.len() as u64);
            return Ok(());
        }
        let listed = self.t.call(
            "list_process_instance",
            &json!({"bk_biz_id": tbiz, "service_instance_id": tsi}),
        )?;
        let listed = listed.as_array().cloned().unwrap_or_default();
        let mut claimed: HashSet<i64> = HashSet::new();
        let mut creates = Vec::new();
        let mut updates: Vec<(Value, Mapped)> = Vec::new();
        let mut adopted = Vec::new();
        for (pid, p, pt, body, d) in todo {
            self.progress.step();
            if let Some(m) = map.get(&pid).filter(|m| m.digest == d) {
                claimed.insert(m.target);
                self.sum.processes.unchanged += 1;
                continue;
            }
            let mapped_id = map.get(&pid).map(|m| m.target);
            let on_target = listed
                .iter()
                .find(|t| Some(as_i64(&t["property"], "bk_process_id")) == mapped_id)
                .or_else(|| {
                    listed.iter().find(|t| {
                        !claimed.contains(&as_i64(&t["property"], "bk_process_id"))
                            && t["property"]["bk_process_name"] == p["bk_process_name"]
                    })
                });
            match on_target {
                Some(t) => {
                    let tid = as_i64(&t["property"], "bk_process_id");
                    claimed.insert(tid);
                    let m = Mapped {
                        local: pid,
                        target: tid,
                        parent: si.id,
                        digest: d,
                    };
                    let differs = body
                        .as_object()
                        .into_iter()
                        .flatten()
                        .any(|(k, v)| t["property"].get(k).unwrap_or(&Value::Null) != v);
                    if differs {
                        self.sum.processes.updated += 1;
                        let mut u = body;
                        u["bk_process_id"] = json!(tid);
                        updates.push((u, m));
                    } else {
                        self.sum.processes.unchanged += 1;
                        adopted.push(m);
                    }
                }
                None if pt != 0 => {
                    self.problem(format!(
                        "process {:?} of the template instance {:?} is not on the target \
                         (sync the target's instances with their template)",
                        p["bk_process_name"].as_str().unwrap_or(""),
                        si.name
                    ));
                    self.sum.processes.skipped += 1;
                }
                None => {
                    self.sum.processes.created += 1;
                    creates.push((pid, body, d));
                }
            }
        }
        for m in &adopted {
            map.insert(m.local, *m);
        }
        self.map(PROCESS, adopted)?;
        if self.dry {
            return Ok(());
        }
        for chunk in updates.chunks(PUSH_BATCH) {
            let bodies: Vec<Value> = chunk.iter().map(|(b, _)| b.clone()).collect();
            self.t.call(
                "update_process_instance",
                &json!({"bk_biz_id": tbiz, "processes": bodies}),
            )?;
            let made: Vec<Mapped> = chunk.iter().map(|(_, m)| *m).collect();
            for m in &made {
                map.insert(m.local, *m);
            }
            self.map(PROCESS, made)?;
        }
        for chunk in creates.chunks(PUSH_BATCH) {
            let infos: Vec<Value> = chunk
                .iter()
                .map(|(_, b, _)| json!({"process_info": b}))
                .collect();
            let ids = self.t.call(
                "create_process_instance",
                &json!({"bk_biz_id": tbiz, "service_instance_id": tsi, "processes": infos}),
            )?;
            let made: Vec<Mapped> = chunk
                .iter()
                .zip(ids.as_array().cloned().unwrap_or_default())
                .map(|((pid, _, d), id)| Mapped {
                    local: *pid,
                    target: id.as_i64().unwrap_or(0),
                    parent: si.id,
                    digest: *d,
                })
                .collect();
            for m in &made {
                map.insert(m.local, *m);
            }
            self.map(PROCESS, made)?;
        }
        Ok(())
    }

    /// Process template id → the fields its processes take from it (locked: not pushed).
    fn locked_fields(&self) -> HashMap<i64, Vec<String>> {
        self.src
            .proc_templates
            .iter()
            .map(|pt| {
                let locked = pt
                    .property
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(_, v)| v["as_default_value"] == json!(true))
                    .map(|(k, _)| k.clone())
                    .chain(["bind_info".to_string()])
                    .collect();
                (pt.id, locked)
            })
            .collect()
    }

    // -----------------------------------------------------------------------------------------
    // Deletes: what the map holds and the store no longer does

    fn deletes(&mut self) -> Result<(), Stop> {
        let instances = self.mapped(INSTANCE)?;
        let key = self.key.clone();
        let (gone_si, gone_p) = self.store.read::<_, CcError>(|tx| {
            let mut si = Vec::new();
            for m in instances.values() {
                if !tx.has::<ServiceInstance>(m.local)? {
                    si.push(*m);
                }
            }
            let mut p = Vec::new();
            tx.push_map_each::<CcError>(&key, PROCESS, |m| {
                if !tx.has_process(m.local)? {
                    p.push(m);
                }
                Ok(true)
            })?;
            Ok((si, p))
        })?;
        // Instances first: their processes go with them on the target.
        let gone_si_locals: HashSet<i64> = gone_si.iter().map(|m| m.local).collect();
        let mut by_biz: BTreeMap<i64, Vec<Mapped>> = BTreeMap::new();
        for m in &gone_si {
            by_biz.entry(m.parent).or_default().push(*m);
        }
        for (tbiz, ms) in by_biz {
            for chunk in ms.chunks(PUSH_BATCH) {
                self.sum.instances.deleted += chunk.len() as u64;
                if self.dry {
                    continue;
                }
                let ids: Vec<i64> = chunk.iter().map(|m| m.target).collect();
                self.t.call(
                    "delete_service_instance",
                    &json!({"bk_biz_id": tbiz, "service_instance_ids": ids}),
                )?;
                self.unmap(INSTANCE, chunk.iter().map(|m| m.local).collect())?;
            }
        }
        // Processes of a deleted instance went with it; the others are deleted one batch per
        // instance (a template process is not deleted alone: it goes with its template).
        let mut with_instance = Vec::new();
        let mut by_si: BTreeMap<i64, Vec<Mapped>> = BTreeMap::new();
        for m in gone_p {
            if gone_si_locals.contains(&m.parent) || !instances.contains_key(&m.parent) {
                with_instance.push(m.local);
                self.sum.processes.deleted += 1;
            } else {
                by_si.entry(m.parent).or_default().push(m);
            }
        }
        self.unmap(PROCESS, with_instance)?;
        for (si, ms) in by_si {
            let tbiz = instances[&si].parent;
            for chunk in ms.chunks(PUSH_BATCH) {
                self.sum.processes.deleted += chunk.len() as u64;
                if self.dry {
                    continue;
                }
                let ids: Vec<i64> = chunk.iter().map(|m| m.target).collect();
                match self.t.call(
                    "delete_process_instance",
                    &json!({"bk_biz_id": tbiz, "process_instance_ids": ids}),
                ) {
                    Ok(_) => {}
                    // Created by a template: it goes when its template row does.
                    Err(CallError::Refused { code: 1113022, .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                self.unmap(PROCESS, chunk.iter().map(|m| m.local).collect())?;
            }
        }
        self.delete_simple(
            PROC_TEMPLATE,
            |s, m| Ok(s.has::<ProcessTemplate>(m.local)?),
            |p, m| {
                let tbiz = p
                    .mem
                    .get(&TEMPLATE)
                    .and_then(|t| t.get(&m.parent))
                    .map_or(0, |t| t.parent);
                Ok((
                    "delete_proc_template",
                    json!({"bk_biz_id": tbiz, "process_templates": [m.target]}),
                ))
            },
        )?;
        self.delete_simple(
            TEMPLATE,
            |s, m| Ok(s.has::<ServiceTemplate>(m.local)?),
            |_, m| {
                Ok((
                    "delete_service_template",
                    json!({"bk_biz_id": m.parent, "service_template_id": m.target}),
                ))
            },
        )?;
        self.delete_simple(
            CATEGORY,
            |s, m| Ok(s.has::<ServiceCategory>(m.local)?),
            |_, m| {
                Ok((
                    "delete_service_category",
                    json!({"bk_biz_id": m.parent, "id": m.target}),
                ))
            },
        )?;
        Ok(())
    }

    /// Deletes, one call each, the mapped records of `kind` the store no longer has.
    fn delete_simple(
        &mut self,
        kind: u8,
        exists: impl Fn(&crate::store::read::ReadTx, &Mapped) -> Result<bool, CcError>,
        call: impl Fn(&Self, &Mapped) -> Result<(&'static str, Value), Stop>,
    ) -> Result<(), Stop> {
        let mapped = self.mapped(kind)?;
        let mut gone = Vec::new();
        for m in mapped.values() {
            let here = self.store.read(|tx| exists(tx, m))?;
            if !here {
                gone.push(*m);
            }
        }
        for m in gone {
            let tally = match kind {
                PROC_TEMPLATE => &mut self.sum.process_templates,
                TEMPLATE => &mut self.sum.templates,
                _ => &mut self.sum.categories,
            };
            tally.deleted += 1;
            if self.dry {
                continue;
            }
            if m.target != 0 && !(kind == CATEGORY && m.parent == 0) {
                let (api, body) = call(self, &m)?;
                self.t.call(api, &body)?;
            }
            self.unmap(kind, vec![m.local])?;
        }
        Ok(())
    }
}

/// A stored process as a create or update sends it: without the fields the target sets, and
/// for a template process without its locked fields.
fn pushable(p: &Map<String, Value>, locked: Option<&Vec<String>>) -> Value {
    let mut out = Map::new();
    for (k, v) in p {
        // What the target sets itself (and the dataset's relation): never pushed, never
        // compared.
        if k == "relation" || process_fields::is_server_set(k) {
            continue;
        }
        if locked.is_some_and(|l| l.iter().any(|x| x == k)) {
            continue;
        }
        let v = if k == "bind_info" {
            strip_row_ids(v)
        } else {
            v.clone()
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

fn strip_row_ids(v: &Value) -> Value {
    match v {
        Value::Array(rows) => Value::Array(
            rows.iter()
                .map(|r| {
                    let mut r = r.clone();
                    if let Some(o) = r.as_object_mut() {
                        o.remove("template_row_id");
                    }
                    r
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A process template's property as `batch_create_proc_template` and `update_proc_template`
/// take it: bind_info rows without their `row_id` (the target numbers them).
fn spec_of(property: &Value) -> Value {
    let mut p = property.clone();
    if let Some(rows) = p["bind_info"]["value"].as_array_mut() {
        for r in rows {
            if let Some(o) = r.as_object_mut() {
                o.remove("row_id");
            }
        }
    }
    p
}

/// True if the target's property equals ours but for bind_info row numbers.
fn same_spec(target: &Value, ours: &Value) -> bool {
    spec_of(target) == spec_of(ours)
}

/// Progress on stderr, at most once a second.
struct Progress {
    on: bool,
    total: u64,
    done: u64,
    started: Instant,
    last: Instant,
    printed: bool,
}

impl Progress {
    fn new(on: bool) -> Progress {
        let now = Instant::now();
        Progress {
            on,
            total: 0,
            done: 0,
            started: now,
            last: now,
            printed: false,
        }
    }

    fn step(&mut self) {
        self.add(1);
    }

    fn undo_step(&mut self) {
        self.done = self.done.saturating_sub(1);
    }

    fn add(&mut self, n: u64) {
        self.done += n;
        if self.on && self.last.elapsed() >= Duration::from_secs(1) {
            self.last = Instant::now();
            self.print();
        }
    }

    fn print(&mut self) {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.done as f64 / secs;
        let left = self.total.saturating_sub(self.done) as f64;
        let eta = if rate > 0.0 { left / rate } else { 0.0 };
        let _ = writeln!(
            std::io::stderr(),
            "push: {}/{} records ({rate:.0}/s, ETA {eta:.0} s)",
            self.done,
            self.total
        );
        self.printed = true;
    }

    fn finish(&mut self) {
        if self.on {
            self.print();
        }
    }
}
