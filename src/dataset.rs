//! The dataset file (product.md section 5): `import` (seed), `export`, and their checks.
//! Import runs in one write transaction: the first bad record aborts it, naming the record,
//! and the store is left as it was.

use crate::error::{CcError, Lang, code};
use crate::limits::IMPORT_PROGRESS_EVERY;
use crate::store::records::*;
use crate::store::{ProcKey, ReadTx, Store, WriteTx};
use serde::de::{
    DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

pub mod topology;

pub const FORMAT: &str = "cmdb-lite/1";

fn default_supplier() -> String {
    "0".into()
}

/// The whole file. `P` is how `processes` is held: every map (`Dataset`), or only checked and
/// counted ([`Skipped`]) while [`import_file`] streams them in a second pass.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset<P = Vec<Map<String, Value>>> {
    pub format: String,
    #[serde(default = "default_supplier")]
    pub supplier_account: String,
    /// Topology records as bk-cmdb stores them (any attribute kept); `None` when the file has
    /// no such key (an older file: cloud areas and sets are then derived, see [`topology`]).
    #[serde(default)]
    pub cloud_areas: Option<Vec<Map<String, Value>>>,
    #[serde(default)]
    pub businesses: Vec<Map<String, Value>>,
    #[serde(default)]
    pub sets: Option<Vec<Map<String, Value>>>,
    #[serde(default)]
    pub hosts: Vec<Map<String, Value>>,
    #[serde(default)]
    pub modules: Vec<Map<String, Value>>,
    #[serde(default)]
    pub service_categories: Vec<ServiceCategory>,
    #[serde(default)]
    pub service_templates: Vec<ServiceTemplate>,
    #[serde(default)]
    pub process_templates: Vec<ProcessTemplate>,
    #[serde(default)]
    pub service_instances: Vec<ServiceInstance>,
    /// Stored process maps, each with its `relation` object.
    #[serde(default)]
    pub processes: P,
    #[serde(default)]
    pub sequences: BTreeMap<String, i64>,
}

/// The built-in demo dataset, compiled in.
pub const DEMO: &str = include_str!("../data/demo.json");

fn bad(msg: String) -> CcError {
    CcError::raw(code::PARAMS_INVALID, msg)
}

/// Parses a dataset file's text.
pub fn parse(text: &str) -> Result<Dataset, String> {
    let ds: Dataset = serde_json::from_str(text).map_err(|e| format!("not a dataset file: {e}"))?;
    if ds.format != FORMAT {
        return Err(format!("format is {:?}, expected {FORMAT:?}", ds.format));
    }
    Ok(ds)
}

fn unique<T>(items: &[T], what: &str, id: impl Fn(&T) -> i64) -> Result<(), CcError> {
    let mut seen = BTreeSet::new();
    for item in items {
        let i = id(item);
        if !seen.insert(i) {
            return Err(bad(format!("{what} {i}: duplicate id")));
        }
        if i <= 0 {
            return Err(bad(format!("{what} {i}: ids start at 1")));
        }
    }
    Ok(())
}

/// Loads `ds` into `store` in one transaction; returns the number of records written.
pub fn import(store: &Store, ds: &Dataset) -> Result<usize, String> {
    store
        .write_alone::<_, CcError>(|tx| {
            // A dataset is the store's starting point, not a change: no events.
            tx.without_events();
            let mut loader = Loader::head(tx, ds, topology::Source::copy(ds))?;
            for entry in &ds.processes {
                loader.process(tx, entry.clone())?;
            }
            loader.finish(tx, &ds.sequences)
        })
        .map_err(|e| e.render(Lang::En))
}

/// Loads `ds` into an open transaction (see [`import`]).
pub fn import_in(tx: &mut WriteTx, ds: &Dataset) -> Result<usize, CcError> {
    let mut loader = Loader::head(tx, ds, topology::Source::copy(ds))?;
    for entry in &ds.processes {
        loader.process(tx, entry.clone())?;
    }
    loader.finish(tx, &ds.sequences)
}

/// Loads the dataset text `raw` into an open transaction without building its processes all
/// at once: the head is read first, then the processes are streamed, as [`import_file`] does.
pub fn import_bytes_in(tx: &mut WriteTx, raw: &[u8]) -> Result<usize, CcError> {
    let not_dataset = |e: serde_json::Error| bad(format!("not a dataset: {e}"));
    let mut de = serde_json::Deserializer::from_slice(raw);
    let mut head: Dataset<Skipped> = Dataset::deserialize(&mut de).map_err(not_dataset)?;
    de.end().map_err(not_dataset)?;
    if head.format != FORMAT {
        return Err(bad(format!(
            "format is {:?}, expected {FORMAT:?}",
            head.format
        )));
    }
    let topo = topology::Source::take(&mut head);
    let mut loader = Loader::head(tx, &head, topo)?;
    let mut failed = None;
    let stream = ProcessStream {
        each: |map: Map<String, Value>| loader.process(tx, map),
        failed: &mut failed,
    };
    let read = serde_json::Deserializer::from_slice(raw).deserialize_map(stream);
    if let Some(e) = failed {
        return Err(e);
    }
    read.map_err(not_dataset)?;
    loader.finish(tx, &head.sequences)
}

/// Reads the head of the dataset file at `path` (everything but its processes), checking its
/// format: the first pass of [`import_file`].
pub fn read_head(path: &Path) -> Result<Dataset<Skipped>, FileError> {
    let head: Dataset<Skipped> =
        read_json(path, |d| Dataset::deserialize(d)).map_err(FileError::Read)?;
    if head.format != FORMAT {
        return Err(FileError::Read(format!(
            "format is {:?}, expected {FORMAT:?}",
            head.format
        )));
    }
    Ok(head)
}

/// The second pass of [`import_file`], on an open transaction: the head's records, then the
/// processes streamed from the file.
pub fn import_head_in(
    tx: &mut WriteTx,
    path: &Path,
    head: &mut Dataset<Skipped>,
    mut progress: impl FnMut(usize),
) -> Result<usize, CcError> {
    let topo = topology::Source::take(head);
    let mut loader = Loader::head(tx, head, topo)?;
    let mut failed = None;
    let stream = ProcessStream {
        each: |map: Map<String, Value>| {
            loader.process(tx, map)?;
            if loader.processes % IMPORT_PROGRESS_EVERY == 0 {
                progress(loader.processes);
            }
            Ok(())
        },
        failed: &mut failed,
    };
    let read = read_json(path, |d| d.deserialize_map(stream));
    if let Some(e) = failed {
        return Err(e);
    }
    read.map_err(bad)?;
    loader.finish(tx, &head.sequences)
}

/// Creates the built-in records every store holds (`serve --seed none`).
pub fn seed_builtins(store: &Store) -> Result<usize, String> {
    store
        .write_alone::<_, CcError>(|tx| topology::ensure_builtins(tx, &topology::import_stamp()))
        .map_err(|e| e.render(Lang::En))
}

/// Why a dataset file was not imported. Either way the store is left as it was.
#[derive(Debug)]
pub enum FileError {
    /// The file cannot be read, or is not a dataset file.
    Read(String),
    /// A record was refused (the first bad one is named).
    Refused(String),
}

/// Imports the dataset file at `path` in one transaction, without holding its processes in
/// memory: a first pass reads everything but the processes (which it only checks to be objects),
/// a second pass streams the processes into the transaction. `progress` is called with the
/// number of processes loaded so far after every [`IMPORT_PROGRESS_EVERY`] of them.
pub fn import_file(
    store: &Store,
    path: &Path,
    progress: impl FnMut(usize),
) -> Result<usize, FileError> {
    let mut head: Dataset<Skipped> =
        read_json(path, |d| Dataset::deserialize(d)).map_err(FileError::Read)?;
    if head.format != FORMAT {
        return Err(FileError::Read(format!(
            "format is {:?}, expected {FORMAT:?}",
            head.format
        )));
    }
    store
        .write_alone(|tx| {
            tx.without_events();
            import_head_in(tx, path, &mut head, progress)
        })
        .map_err(|e| FileError::Refused(e.render(Lang::En)))
}

/// Deserialises the whole file with `f`, reading it through a buffer; the error is one line.
fn read_json<T>(
    path: &Path,
    f: impl FnOnce(
        &mut serde_json::Deserializer<serde_json::de::IoRead<BufReader<File>>>,
    ) -> Result<T, serde_json::Error>,
) -> Result<T, String> {
    let file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 20, file));
    let value = f(&mut de).map_err(|e| format!("not a dataset file: {e}"))?;
    de.end().map_err(|e| format!("not a dataset file: {e}"))?;
    Ok(value)
}

/// The processes of a dataset file in the first pass of [`import_file`]: each checked to be an
/// object, counted, not kept.
#[derive(Default)]
pub struct Skipped(pub usize);

impl<'de> Deserialize<'de> for Skipped {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Objects;
        impl<'de> Visitor<'de> for Objects {
            type Value = Skipped;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skipped, A::Error> {
                let mut n = 0;
                while seq.next_element::<SkipObject>()?.is_some() {
                    n += 1;
                }
                Ok(Skipped(n))
            }
        }
        d.deserialize_seq(Objects)
    }
}

/// A JSON object, read and dropped.
struct SkipObject;

impl<'de> Deserialize<'de> for SkipObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = SkipObject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SkipObject, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(SkipObject)
            }
        }
        d.deserialize_map(Object)
    }
}

/// The second pass of [`import_file`]: hands each process map to `each`, skips every other key
/// (the first pass read them). The first refusal is kept in `failed` and stops the reading.
struct ProcessStream<'a, F> {
    each: F,
    failed: &'a mut Option<CcError>,
}

impl<'de, F: FnMut(Map<String, Value>) -> Result<(), CcError>> Visitor<'de>
    for ProcessStream<'_, F>
{
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a dataset object")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "processes" {
                map.next_value_seed(EachProcess {
                    each: &mut self.each,
                    failed: self.failed,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct EachProcess<'a, F> {
    each: &'a mut F,
    failed: &'a mut Option<CcError>,
}

impl<'de, F: FnMut(Map<String, Value>) -> Result<(), CcError>> DeserializeSeed<'de>
    for EachProcess<'_, F>
{
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Map<String, Value>) -> Result<(), CcError>> Visitor<'de> for EachProcess<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(map) = seq.next_element::<Map<String, Value>>()? {
            if let Err(e) = (self.each)(map) {
                *self.failed = Some(e);
                return Err(A::Error::custom("import stopped"));
            }
        }
        Ok(())
    }
}

/// Loads a dataset into one write transaction: every record but the processes
/// ([`Loader::head`]), then the processes one at a time, then the sequences.
struct Loader {
    /// The largest imported id per kind.
    max: BTreeMap<&'static str, i64>,
    /// Records of the head.
    head: usize,
    /// Processes loaded so far.
    processes: usize,
    /// The service instance of the previous process (a file lists processes by instance).
    last_si: Option<ServiceInstance>,
}

impl Loader {
    fn head<P>(
        tx: &mut WriteTx,
        ds: &Dataset<P>,
        topo: topology::Source,
    ) -> Result<Loader, CcError> {
        let mut topo = topology::Records::from_source(topo)?;
        unique(&ds.service_categories, "service category", |c| c.id)?;
        unique(&ds.service_templates, "service template", |s| s.id)?;
        unique(&ds.process_templates, "process template", |p| p.id)?;
        unique(&ds.service_instances, "service instance", |s| s.id)?;
        let mut max: BTreeMap<&str, i64> = BTreeMap::new();
        let mut bump = |k: Kind, id: i64| {
            let e = max.entry(k.name()).or_insert(0);
            *e = (*e).max(id);
        };
        tx.set_setting("supplier_account", &ds.supplier_account)?;
        topology::load_head(tx, &mut topo, &mut bump)?;
        // Categories may name a parent that comes later in the file: insert all, then check.
        for c in &ds.service_categories {
            if tx.service_category(c.id)?.is_some() {
                return Err(bad(format!(
                    "service category {}: already in the store",
                    c.id
                )));
            }
            if c.bk_biz_id != 0 && tx.business(c.bk_biz_id)?.is_none() {
                return Err(bad(format!(
                    "service category {}: business {} does not exist",
                    c.id, c.bk_biz_id
                )));
            }
            tx.put_service_category(c)?;
            bump(Kind::ServiceCategory, c.id);
        }
        for c in &ds.service_categories {
            if c.bk_parent_id > 0 && tx.service_category(c.bk_parent_id)?.is_none() {
                return Err(bad(format!(
                    "service category {}: parent {} does not exist",
                    c.id, c.bk_parent_id
                )));
            }
        }
        for st in &ds.service_templates {
            if tx.service_template(st.id)?.is_some() {
                return Err(bad(format!(
                    "service template {}: already in the store",
                    st.id
                )));
            }
            if tx.business(st.bk_biz_id)?.is_none() {
                return Err(bad(format!(
                    "service template {}: business {} does not exist",
                    st.id, st.bk_biz_id
                )));
            }
            if tx.service_category(st.service_category_id)?.is_none() {
                return Err(bad(format!(
                    "service template {}: service category {} does not exist",
                    st.id, st.service_category_id
                )));
            }
            if tx.service_template_named(st.bk_biz_id, &st.name)?.is_some() {
                return Err(bad(format!(
                    "service template {}: name {:?} is not unique in its business",
                    st.id, st.name
                )));
            }
            tx.put_service_template(st)?;
            bump(Kind::ServiceTemplate, st.id);
        }
        topology::load_modules(tx, &topo, &mut bump)?;
        for pt in &ds.process_templates {
            if tx.process_template(pt.id)?.is_some() {
                return Err(bad(format!(
                    "process template {}: already in the store",
                    pt.id
                )));
            }
            match tx.service_template(pt.service_template_id)? {
                None => {
                    return Err(bad(format!(
                        "process template {}: service template {} does not exist",
                        pt.id, pt.service_template_id
                    )));
                }
                Some(st) if st.bk_biz_id != pt.bk_biz_id => {
                    return Err(bad(format!(
                        "process template {}: business differs from its service template",
                        pt.id
                    )));
                }
                Some(_) => {}
            }
            tx.put_process_template(pt)?;
            bump(Kind::ProcessTemplate, pt.id);
        }
        for si in &ds.service_instances {
            if tx.service_instance(si.id)?.is_some() {
                return Err(bad(format!(
                    "service instance {}: already in the store",
                    si.id
                )));
            }
            let Some(module) = tx.module(si.bk_module_id)? else {
                return Err(bad(format!(
                    "service instance {}: module {} does not exist",
                    si.id, si.bk_module_id
                )));
            };
            if module.bk_biz_id != si.bk_biz_id {
                return Err(bad(format!(
                    "service instance {}: business differs from its module's",
                    si.id
                )));
            }
            if tx.host(si.bk_host_id)?.is_none() {
                return Err(bad(format!(
                    "service instance {}: host {} does not exist",
                    si.id, si.bk_host_id
                )));
            }
            if si.service_template_id != 0 {
                if tx.service_template(si.service_template_id)?.is_none() {
                    return Err(bad(format!(
                        "service instance {}: service template {} does not exist",
                        si.id, si.service_template_id
                    )));
                }
                if tx
                    .template_instance(si.bk_module_id, si.bk_host_id, si.service_template_id)?
                    .is_some()
                {
                    return Err(bad(format!(
                        "service instance {}: another instance of template {} exists on host {} in module {}",
                        si.id, si.service_template_id, si.bk_host_id, si.bk_module_id
                    )));
                }
            }
            tx.put_service_instance(si)?;
            bump(Kind::ServiceInstance, si.id);
        }
        Ok(Loader {
            max,
            head: topo.count()
                + ds.service_categories.len()
                + ds.service_templates.len()
                + ds.process_templates.len()
                + ds.service_instances.len(),
            processes: 0,
            last_si: None,
        })
    }

    fn process(&mut self, tx: &mut WriteTx, mut map: Map<String, Value>) -> Result<(), CcError> {
        let i = self.processes;
        let pid = map
            .get("bk_process_id")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let what = || {
            if pid > 0 {
                format!("process {pid}")
            } else {
                format!("processes[{i}]")
            }
        };
        if pid <= 0 {
            return Err(bad(format!(
                "{}: bk_process_id must be a positive integer",
                what()
            )));
        }
        // Earlier processes of the file are in the transaction already.
        if tx.has_process(pid)? {
            return Err(bad(format!("{}: duplicate id", what())));
        }
        let rel_value = map
            .remove("relation")
            .ok_or_else(|| bad(format!("{}: has no relation", what())))?;
        let rel: Relation = serde_json::from_value(rel_value)
            .map_err(|e| bad(format!("{}: relation: {e}", what())))?;
        if rel.bk_process_id != pid {
            return Err(bad(format!(
                "{}: relation names process {}",
                what(),
                rel.bk_process_id
            )));
        }
        if self
            .last_si
            .as_ref()
            .is_none_or(|si| si.id != rel.service_instance_id)
        {
            self.last_si = tx.service_instance(rel.service_instance_id)?;
        }
        let Some(si) = &self.last_si else {
            return Err(bad(format!(
                "{}: relation to unknown service instance {}",
                what(),
                rel.service_instance_id
            )));
        };
        if map.get("service_instance_id").and_then(Value::as_i64) != Some(si.id) {
            return Err(bad(format!(
                "{}: service_instance_id differs from its relation",
                what()
            )));
        }
        if si.bk_host_id != rel.bk_host_id || si.bk_biz_id != rel.bk_biz_id {
            return Err(bad(format!(
                "{}: relation host or business differs from service instance {}",
                what(),
                si.id
            )));
        }
        if let Some(key) = tx.process_key_conflict(&map, pid)? {
            let field = match key {
                ProcKey::Name { .. } => "bk_process_name",
                ProcKey::Func { .. } => "bk_func_name + bk_start_param_regex",
            };
            return Err(bad(format!(
                "{}: {field} is not unique in service instance {}",
                what(),
                si.id
            )));
        }
        tx.put_process(pid, &map, &rel)?;
        let top = self.max.entry(Kind::Process.name()).or_insert(0);
        *top = (*top).max(pid);
        self.processes += 1;
        Ok(())
    }

    /// Raises the sequences; returns the number of records loaded.
    fn finish(self, tx: &mut WriteTx, sequences: &BTreeMap<String, i64>) -> Result<usize, CcError> {
        let max = self.max;
        for (name, value) in sequences {
            let Some(kind) = Kind::from_name(name) else {
                return Err(bad(format!("sequences: unknown kind {name:?}")));
            };
            let top = max.get(kind.name()).copied().unwrap_or(0);
            if *value < top {
                return Err(bad(format!(
                    "sequences: {name} is {value}, below its imported id {top}"
                )));
            }
            tx.raise_sequence(kind, *value)?;
        }
        for (name, top) in &max {
            if let Some(kind) = Kind::from_name(name) {
                tx.raise_sequence(kind, *top)?;
            }
        }
        let built = topology::ensure_builtins(tx, &topology::import_stamp())?;
        Ok(self.head + self.processes + built)
    }
}

/// The whole store as a dataset.
pub fn export(store: &Store) -> Result<Dataset, CcError> {
    store.read::<_, CcError>(|tx| {
        let mut ds = Dataset {
            format: FORMAT.into(),
            supplier_account: tx
                .setting("supplier_account")?
                .unwrap_or_else(default_supplier),
            cloud_areas: Some(Vec::new()),
            businesses: Vec::new(),
            sets: Some(Vec::new()),
            hosts: Vec::new(),
            modules: Vec::new(),
            service_categories: Vec::new(),
            service_templates: Vec::new(),
            process_templates: Vec::new(),
            service_instances: Vec::new(),
            processes: Vec::new(),
            sequences: BTreeMap::new(),
        };
        topology::export(tx, &mut ds)?;
        ds.service_categories = tx.select(|_| true)?;
        ds.service_templates = tx.select(|_| true)?;
        ds.process_templates = tx.select(|_| true)?;
        ds.service_instances = tx.select(|_| true)?;
        tx.scan::<_, CcError>(|pid, mut map: Map<String, Value>| {
            let rel = tx.relation(pid)?.ok_or_else(|| {
                CcError::raw(code::DB_SELECT, format!("process {pid} has no relation"))
            })?;
            map.insert(
                "relation".into(),
                serde_json::to_value(&rel).unwrap_or(Value::Null),
            );
            ds.processes.push(map);
            Ok(true)
        })?;
        for kind in Kind::ALL {
            ds.sequences.insert(kind.name().into(), tx.sequence(kind)?);
        }
        Ok(ds)
    })
}

/// Why a streamed export stopped.
#[derive(Debug)]
pub enum WriteError {
    /// Reading the store failed.
    Store(CcError),
    /// Writing the output failed (a full disk, a client gone, a closed pipe).
    Out(std::io::Error),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Store(e) => write!(f, "{}", e.render(Lang::En)),
            WriteError::Out(e) => write!(f, "{e}"),
        }
    }
}

/// Writes the snapshot `tx` as a dataset file to `out`, one record per line, as it reads it:
/// nothing is collected, so memory does not grow with the store (the offline `export` and the
/// online `GET /_cmdb/export`). The result reads back with [`import_file`]. Returns the number
/// of processes written.
pub fn write(tx: &ReadTx, out: &mut dyn std::io::Write) -> Result<usize, WriteError> {
    let mut failed: Option<std::io::Error> = None;
    let mut line = Vec::with_capacity(4096);
    let out = std::cell::RefCell::new(out);
    // Writes `bytes`, keeping the first output failure; an `Err` stops the scan it is in.
    let put = |bytes: &[u8], failed: &mut Option<std::io::Error>| -> Result<(), CcError> {
        match out.borrow_mut().write_all(bytes) {
            Ok(()) => Ok(()),
            Err(e) => {
                *failed = Some(e);
                Err(CcError::raw(code::DB_SELECT, "output failed".to_string()))
            }
        }
    };
    let result = (|| -> Result<usize, CcError> {
        let supplier = tx
            .setting("supplier_account")?
            .unwrap_or_else(default_supplier);
        line.clear();
        line.extend_from_slice(b"{\"format\":");
        line.extend_from_slice(Value::from(FORMAT).to_string().as_bytes());
        line.extend_from_slice(b",\"supplier_account\":");
        line.extend_from_slice(Value::from(supplier).to_string().as_bytes());
        line.extend_from_slice(b",\n");
        put(&line, &mut failed)?;
        macro_rules! section {
            ($name:literal, $kind:ty) => {{
                put(concat!("\"", $name, "\":[").as_bytes(), &mut failed)?;
                let mut first = true;
                tx.scan::<$kind, CcError>(|_, r| {
                    line.clear();
                    line.extend_from_slice(if first { b"\n" } else { b",\n" });
                    first = false;
                    serde_json::to_writer(&mut line, &r)
                        .map_err(|e| CcError::raw(code::DB_SELECT, e.to_string()))?;
                    put(&line, &mut failed)?;
                    Ok(true)
                })?;
                put(b"],\n", &mut failed)?;
            }};
        }
        // The topology records as `topology::export` gives them: maps with every attribute.
        macro_rules! maps {
            ($name:literal, $each:ident, $to_map:expr) => {{
                put(concat!("\"", $name, "\":[").as_bytes(), &mut failed)?;
                let mut first = true;
                tx.$each::<CcError>(|_, r| {
                    line.clear();
                    line.extend_from_slice(if first { b"\n" } else { b",\n" });
                    first = false;
                    serde_json::to_writer(&mut line, &($to_map)(&r))
                        .map_err(|e| CcError::raw(code::DB_SELECT, e.to_string()))?;
                    put(&line, &mut failed)?;
                    Ok(true)
                })?;
                put(b"],\n", &mut failed)?;
            }};
        }
        maps!("cloud_areas", each_cloud_area, |c: &CloudArea| c.to_map());
        maps!("businesses", each_business, |b: &Business| b.to_map());
        maps!("sets", each_set, |s: &Set| s.to_map());
        maps!("hosts", each_host, |h: &Host| h.to_map());
        maps!("modules", each_module, |m: &Module| {
            let mut map = m.to_map();
            map.insert("hosts".into(), serde_json::json!(m.hosts));
            map
        });
        section!("service_categories", ServiceCategory);
        section!("service_templates", ServiceTemplate);
        section!("process_templates", ProcessTemplate);
        section!("service_instances", ServiceInstance);
        put(b"\"processes\":[", &mut failed)?;
        let mut n = 0usize;
        tx.scan::<_, CcError>(|pid, mut map: Map<String, Value>| {
            let rel = tx.relation(pid)?.ok_or_else(|| {
                CcError::raw(code::DB_SELECT, format!("process {pid} has no relation"))
            })?;
            map.insert(
                "relation".into(),
                serde_json::to_value(&rel).unwrap_or(Value::Null),
            );
            line.clear();
            line.extend_from_slice(if n == 0 { b"\n" } else { b",\n" });
            serde_json::to_writer(&mut line, &map)
                .map_err(|e| CcError::raw(code::DB_SELECT, e.to_string()))?;
            put(&line, &mut failed)?;
            n += 1;
            Ok(true)
        })?;
        put(b"],\n\"sequences\":{", &mut failed)?;
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let entry = format!("{sep}\"{}\":{}", kind.name(), tx.sequence(kind)?);
            put(entry.as_bytes(), &mut failed)?;
        }
        put(b"}}\n", &mut failed)?;
        out.borrow_mut().flush().map_err(|e| {
            failed = Some(e);
            CcError::raw(code::DB_SELECT, "output failed".to_string())
        })?;
        Ok(n)
    })();
    match (result, failed) {
        (Ok(n), _) => Ok(n),
        (Err(_), Some(io)) => Err(WriteError::Out(io)),
        (Err(e), None) => Err(WriteError::Store(e)),
    }
}
