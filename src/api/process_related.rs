//! `list_process_related_info` (bk-cmdb proc_server `processinstance.go`
//! `ListProcessRelatedInfo`, spec topology 7.1): processes of a business narrowed by sets,
//! modules, service instances and a `process_property_filter`, each joined with its set,
//! module, host, service instance and process template. bk-cmdb has no `*` wildcard: callers
//! that speak GSEKit's five-segment expressions leave a segment out for `*`.
//!
//! The processes come from the indexes (modules of a set or business → service instances of a
//! module → processes of an instance), so the cost follows the answer.

use super::topology::{arg, body, module_name, set_name};
use super::{Ctx, Data, Input, Listing};
use crate::domain::decode;
use crate::domain::page::{self, Page};
use crate::domain::query_filter::{self, Filter, Options};
use crate::domain::service_template::parse_int;
use crate::error::{CcError, code};
use crate::store::Store;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Serialize, Default, Clone)]
struct SetPart {
    bk_set_id: i64,
    bk_set_name: String,
    bk_set_env: String,
}

#[derive(Serialize, Default, Clone)]
struct ModulePart {
    bk_module_id: i64,
    bk_module_name: String,
}

#[derive(Serialize, Default, Clone)]
struct HostPart {
    bk_host_id: i64,
    bk_cloud_id: i64,
    bk_host_innerip: String,
    bk_host_innerip_v6: String,
    bk_addressing: String,
    bk_agent_id: String,
}

#[derive(Serialize, Default, Clone)]
struct InstancePart {
    id: i64,
    name: String,
}

#[derive(Serialize, Default, Clone)]
struct TemplatePart {
    id: i64,
}

#[derive(Serialize)]
struct Item {
    set: SetPart,
    module: ModulePart,
    host: HostPart,
    service_instance: InstancePart,
    process_template: TemplatePart,
    process: Map<String, Value>,
}

/// An optional `{key: [ids]}` object of the body (`set.bk_set_ids`, …).
fn ids_in(obj: &Map<String, Value>, outer: &str, inner: &str) -> Result<Vec<i64>, CcError> {
    match decode::get(obj, outer) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(o)) => decode::int_array(o, inner),
        Some(_) => Err(CcError::json()),
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

pub fn list(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let biz = parse_int(&arg(input, "bk_biz_id"))
        .map_err(|_| CcError::with(code::PARAMS_IS_INVALID, "bk_biz_id"))?;
    let obj = body(input)?;
    let set_ids = ids_in(&obj, "set", "bk_set_ids")?;
    let module_ids = ids_in(&obj, "module", "bk_module_ids")?;
    let si_ids = ids_in(&obj, "service_instance", "ids")?;
    let filter = Filter::parse(decode::get(&obj, "process_property_filter"))?;
    let mut fields = decode::string_array(&obj, "fields")?;
    let page = Page::decode(&obj, "page")?;
    let opt = Options {
        same_type: true,
        ..Options::default()
    };
    if let Err((key, msg)) = filter.validate_why(&opt) {
        return Err(CcError::invalid(format!(
            "{msg}, host_property_filter.{key}"
        )));
    }
    if filter.depth() > query_filter::MAX_DEPTH {
        return Err(CcError::invalid(format!(
            "exceed max query condition deepth: {}, host_property_filter.rules",
            query_filter::MAX_DEPTH
        )));
    }
    if page.is_illegal() {
        return Err(CcError::invalid("page.limit"));
    }
    if !fields.is_empty() {
        for f in ["bk_process_id", "bk_process_name", "bk_func_id"] {
            if !fields.iter().any(|x| x == f) {
                fields.push(f.into());
            }
        }
    }
    let empty = || Data::of(&json!({"count": 0, "info": []}));
    let lang = ctx.lang;
    store.read(|tx| {
        // Modules: of the sets (∩ the given modules), or the given ones.
        let modules: Option<BTreeSet<i64>> = if !set_ids.is_empty() {
            let mut found = BTreeSet::new();
            for &s in &set_ids {
                for mid in tx.module_ids_of_set(s)? {
                    if module_ids.is_empty() || module_ids.contains(&mid) {
                        found.insert(mid);
                    }
                }
            }
            let mut in_biz = BTreeSet::new();
            for mid in found {
                if tx.module(mid)?.is_some_and(|m| m.bk_biz_id == biz) {
                    in_biz.insert(mid);
                }
            }
            if in_biz.is_empty() {
                return Ok(empty());
            }
            Some(in_biz)
        } else if !module_ids.is_empty() {
            Some(module_ids.iter().copied().collect())
        } else {
            None
        };
        // Service instances of the business in those modules and/or with those ids.
        let mut sis = BTreeSet::new();
        if !si_ids.is_empty() {
            for &id in &si_ids {
                if let Some(si) = tx.service_instance(id)?
                    && si.bk_biz_id == biz
                    && modules
                        .as_ref()
                        .is_none_or(|m| m.contains(&si.bk_module_id))
                {
                    sis.insert(id);
                }
            }
        } else {
            let mods: Vec<i64> = match &modules {
                Some(m) => m.iter().copied().collect(),
                None => tx.module_ids_of_biz(biz)?,
            };
            for mid in mods {
                sis.extend(tx.service_instance_ids_of_module(mid)?);
            }
        }
        if sis.is_empty() {
            return Ok(empty());
        }
        let mut pids = Vec::new();
        for &si in &sis {
            pids.extend(tx.process_ids_of(si)?);
        }
        if pids.is_empty() {
            return Ok(empty());
        }
        pids.sort_unstable();
        let mut procs = Vec::new();
        for pid in pids {
            if let Some(p) = tx.process(pid)? {
                if p.get("bk_biz_id").and_then(Value::as_i64) != Some(biz) {
                    continue;
                }
                let hit = filter.matches(&|f: &str| p.get(f).cloned());
                if hit {
                    procs.push(p);
                }
            }
        }
        let count = procs.len();
        let sorted = page::sort_maps(procs, page.sort_or("bk_process_id"))?;
        let window = page::window(sorted, page.start, page.mongo_limit());
        let mut hosts: BTreeMap<i64, HostPart> = BTreeMap::new();
        let mut mods: BTreeMap<i64, (ModulePart, SetPart)> = BTreeMap::new();
        let mut instances: BTreeMap<i64, Option<crate::store::records::ServiceInstance>> =
            BTreeMap::new();
        let mut info = Vec::with_capacity(window.len());
        for p in window {
            let pid = p.get("bk_process_id").and_then(Value::as_i64).unwrap_or(0);
            let Some(rel) = tx.relation(pid)? else {
                continue;
            };
            let si = match instances.get(&rel.service_instance_id) {
                Some(si) => si.clone(),
                None => {
                    let si = tx.service_instance(rel.service_instance_id)?;
                    instances.insert(rel.service_instance_id, si.clone());
                    si
                }
            };
            let (module, set) = match &si {
                Some(si) => {
                    if let std::collections::btree_map::Entry::Vacant(e) =
                        mods.entry(si.bk_module_id)
                    {
                        let mut parts = (ModulePart::default(), SetPart::default());
                        if let Some(m) = tx.module(si.bk_module_id)? {
                            parts.0 = ModulePart {
                                bk_module_id: m.bk_module_id,
                                bk_module_name: module_name(&m, lang),
                            };
                            if let Some(s) = tx.set(m.bk_set_id)? {
                                parts.1 = SetPart {
                                    bk_set_id: s.bk_set_id,
                                    bk_set_name: set_name(&s, lang),
                                    bk_set_env: text(&s.get("bk_set_env")),
                                };
                            }
                        }
                        e.insert(parts);
                    }
                    mods[&si.bk_module_id].clone()
                }
                None => Default::default(),
            };
            if let std::collections::btree_map::Entry::Vacant(e) = hosts.entry(rel.bk_host_id) {
                let part = match tx.host(rel.bk_host_id)? {
                    Some(h) => HostPart {
                        bk_host_id: h.bk_host_id,
                        bk_cloud_id: h.bk_cloud_id,
                        bk_addressing: text(&h.get("bk_addressing")),
                        bk_agent_id: text(&h.get("bk_agent_id")),
                        bk_host_innerip: h.bk_host_innerip,
                        bk_host_innerip_v6: h.bk_host_innerip_v6,
                    },
                    None => HostPart::default(),
                };
                e.insert(part);
            }
            let process = if fields.is_empty() {
                p
            } else {
                let mut out = Map::new();
                for f in &fields {
                    if let Some(v) = p.get(f) {
                        out.insert(f.clone(), v.clone());
                    }
                }
                out
            };
            info.push(Item {
                set,
                module,
                host: hosts[&rel.bk_host_id].clone(),
                service_instance: si
                    .map(|si| InstancePart {
                        id: si.id,
                        name: si.name,
                    })
                    .unwrap_or_default(),
                process_template: TemplatePart {
                    id: rel.process_template_id,
                },
                process,
            });
        }
        Ok(Data::of(&Listing { count, info }))
    })
}
