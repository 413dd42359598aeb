//! The rest of a process instance's life: `update_process_instance`, `delete_process_instance`
//! and `list_process_detail_by_ids` (spec 4.4); `update_in_tx` and `delete_in_tx` also serve
//! the service-instance APIs.

use super::process_instance::Item;
use super::{Ctx, Data, Input};
use crate::clock;
use crate::domain::bound_process::{self, HostIps};
use crate::domain::decode;
use crate::domain::process_update::{self, UpdateItem};
use crate::domain::projection::read_shape;
use crate::error::{Arg, CcError, code};
use crate::limits::{MAX_IDS_PER_DELETE, MAX_IDS_PER_DETAIL_LIST, MAX_PROCESSES_PER_REQUEST};
use crate::store::records::{Host, Relation};
use crate::store::{Store, WriteTx};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The items of an update's `processes` (`[]map[string]interface{}`): `None` is a null item.
fn decode_update_items(obj: &Map<String, Value>) -> Result<Vec<Item>, CcError> {
    decode::array(obj, "processes")?
        .iter()
        .map(|v| match v {
            Value::Null => Ok(None),
            Value::Object(m) => Ok(Some(m.clone())),
            _ => Err(CcError::json()),
        })
        .collect()
}

/// The relation of process `pid` if it belongs to business `biz`.
fn relation_in(tx: &WriteTx, biz: i64, pid: i64) -> Result<Option<Relation>, CcError> {
    Ok(tx.relation(pid)?.filter(|r| r.bk_biz_id == biz))
}

/// `update_process_instance`: spec 4.4. Up to 100 items, all applied in one transaction;
/// `data` is the updated ids, each once, in input order.
pub fn update(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let items = decode_update_items(obj)?;
    if items.is_empty() {
        return Ok(Data::of(&Vec::<i64>::new()));
    }
    if items.len() > MAX_PROCESSES_PER_REQUEST {
        return Err(CcError::exceed_limit(
            "update process instances",
            MAX_PROCESSES_PER_REQUEST as i64,
        ));
    }
    let ctx = ctx.clone();
    let ids = store.write(move |tx| {
        // proc_server prepares its audit record first: every item needs a numeric
        // `bk_process_id`, and the service instances of those in this business are loaded,
        // which fails when there is none.
        let mut in_biz = false;
        for item in &items {
            let pid = item
                .as_ref()
                .and_then(|m| m.get("bk_process_id"))
                .and_then(Value::as_i64)
                .ok_or_else(|| CcError::invalid("bk_process_id"))?;
            in_biz = in_biz || relation_in(tx, biz, pid)?.is_some();
        }
        if !in_biz {
            return Err(CcError::with(code::PARAMS_NEED_SET, "service_instance_ids"));
        }
        update_in_tx(tx, &ctx, biz, &items)
    })?;
    Ok(Data::of(&ids))
}

/// bk-cmdb's `updateProcessInstances` inside a running transaction: the update of processes of
/// business `biz` by `items` (elements of `update_process_instance`'s `processes`; `None` is a
/// null element), reusable wherever bk-cmdb reuses it (`create_service_instance` on a template
/// module updates its template-created processes this way). Returns the ids, each once, in
/// input order.
///
/// Order of checks, as bk-cmdb: every item is decoded (1199000) and needs a non-zero id
/// (1199006); ids without a relation in `biz` → 1199011 naming them; every update is computed
/// (raw processes: the whole item; template-bound: see `domain::bound_process`); then each
/// process, in id order of first appearance with its last item, is validated (1199011),
/// stamped, checked against the uniqueness keys as they stand after the updates before it
/// (1199014) and written.
pub fn update_in_tx(
    tx: &mut WriteTx,
    ctx: &Ctx,
    biz: i64,
    items: &[Item],
) -> Result<Vec<i64>, CcError> {
    let empty = Map::new();
    let mut decoded: Vec<UpdateItem> = Vec::with_capacity(items.len());
    for item in items {
        let item = process_update::decode_item(item.as_ref().unwrap_or(&empty))?;
        if item.id == 0 {
            return Err(CcError::invalid("bk_process_id"));
        }
        decoded.push(item);
    }
    let mut ids: Vec<i64> = Vec::with_capacity(decoded.len());
    for item in &decoded {
        if !ids.contains(&item.id) {
            ids.push(item.id);
        }
    }
    let mut relations: BTreeMap<i64, Relation> = BTreeMap::new();
    let mut missing = Vec::new();
    for &pid in &ids {
        match relation_in(tx, biz, pid)? {
            Some(rel) => {
                relations.insert(pid, rel);
            }
            None => missing.push(pid.to_string()),
        }
    }
    if !missing.is_empty() {
        return Err(CcError::with(
            code::PARAMS_IS_INVALID,
            format!("[bk_process_id: {}]", missing.join(",")),
        ));
    }
    // The templates and hosts of template-bound processes, loaded in relation order.
    let mut templates: BTreeMap<i64, Value> = BTreeMap::new();
    let mut hosts: BTreeMap<i64, Host> = BTreeMap::new();
    for rel in relations.values() {
        if rel.process_template_id == 0 {
            continue;
        }
        if let std::collections::btree_map::Entry::Vacant(slot) =
            templates.entry(rel.process_template_id)
        {
            let pt = tx
                .process_template(rel.process_template_id)?
                .ok_or_else(|| CcError::plain(code::NOT_FOUND))?;
            slot.insert(pt.property);
        }
        if let Some(h) = tx.host(rel.bk_host_id)? {
            hosts.insert(h.bk_host_id, h);
        }
    }
    // Every update is computed before any is applied; a later item of the same id wins.
    let mut updates: BTreeMap<i64, Map<String, Value>> = BTreeMap::new();
    for item in &decoded {
        let rel = &relations[&item.id];
        let data = if rel.process_template_id == 0 {
            process_update::raw_update_data(item, biz)
        } else {
            let host = hosts.get(&rel.bk_host_id).map(|h| HostIps {
                inner: &h.bk_host_innerip,
                outer: &h.bk_host_outerip,
                inner_v6: &h.bk_host_innerip_v6,
                outer_v6: &h.bk_host_outerip_v6,
            });
            let property = &templates[&rel.process_template_id];
            bound_process::update_data(property, item, host.as_ref())?
        };
        updates.insert(item.id, data);
    }
    let now = clock::format_ms(ctx.now_ms);
    for &pid in &ids {
        let current = tx
            .process(pid)?
            .ok_or_else(|| CcError::plain(code::NOT_FOUND))?;
        let mut data = updates.remove(&pid).unwrap_or_default();
        process_update::validate_update(&mut data)?;
        let mut map = process_update::merge(&current, &data);
        process_update::stamp_update_fields(&mut map, &ctx.user, &now);
        if let Some(key) = tx.process_key_conflict(&map, pid)? {
            return Err(super::duplicate(&key));
        }
        tx.put_process(pid, &map, &relations[&pid])?;
    }
    Ok(ids)
}

/// `delete_process_instance`: spec 4.4. `data` is null.
pub fn delete(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let ids = decode::int_array(obj, "process_instance_ids")?;
    super::one_to_max(
        ids.len(),
        "bk_process_id",
        "delete process instance",
        MAX_IDS_PER_DELETE,
    )?;
    store.write(move |tx| delete_in_tx(tx, biz, &ids))?;
    Ok(Data::null())
}

/// Deletes the processes `ids` of business `biz` with their relations and index entries, then
/// every service instance this leaves without a process (bk-cmdb's cascade). Processes created
/// from a template are refused: 1113022 naming them, comma-joined, in id order. Ids that are not
/// processes of `biz` are skipped (bk-cmdb would delete another business's process record by id
/// and leave its relation behind; that would break the store's invariants).
pub fn delete_in_tx(tx: &mut WriteTx, biz: i64, ids: &[i64]) -> Result<(), CcError> {
    let unique: BTreeSet<i64> = ids.iter().copied().collect();
    let mut relations = Vec::new();
    for pid in unique {
        if let Some(rel) = relation_in(tx, biz, pid)? {
            relations.push(rel);
        }
    }
    let from_template: Vec<String> = relations
        .iter()
        .filter(|r| r.process_template_id != 0)
        .map(|r| r.bk_process_id.to_string())
        .collect();
    if !from_template.is_empty() {
        return Err(CcError::with(
            code::REMOVE_TEMPLATE_PROCESS,
            from_template.join(","),
        ));
    }
    for rel in &relations {
        tx.delete_process(rel.bk_process_id)?;
    }
    let touched: BTreeSet<i64> = relations.iter().map(|r| r.service_instance_id).collect();
    for si in touched {
        if tx.process_ids_of(si)?.is_empty() {
            tx.delete_service_instance(si)?;
        }
    }
    Ok(())
}

/// The business of `list_process_detail_by_ids`: the `{bk_biz_id}` path segment on the native
/// and gateway routes, the body's `bk_biz_id` on the ESB route (the ESB fills the path from
/// it). Not an integer → 1199011 'bk_biz_id' (Go's `strconv.ParseInt` on the segment).
pub(super) fn detail_biz(input: &Input) -> Result<i64, CcError> {
    let bad = || CcError::with(code::PARAMS_IS_INVALID, "bk_biz_id");
    match &input.path_id {
        Some(segment) => segment.parse::<i64>().map_err(|_| bad()),
        None => match input.body.get("bk_biz_id") {
            Some(Value::Number(n)) => n.as_i64().ok_or_else(bad),
            Some(Value::String(s)) => s.parse::<i64>().map_err(|_| bad()),
            _ => Err(bad()),
        },
    }
}

/// `list_process_detail_by_ids`: the stored processes of one business among `bk_process_ids`
/// (1 to 500 ids), in id order, each reduced to `fields` when given (spec 4.4; bk-cmdb
/// `ListProcessInstancesDetails`).
pub fn detail_by_ids(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let biz = detail_biz(input)?;
    let obj = decode::body_object(&input.body)?;
    let ids = decode::int_array(obj, "bk_process_ids")?;
    let fields = decode::string_array(obj, "fields")?;
    if ids.is_empty() || ids.len() > MAX_IDS_PER_DETAIL_LIST {
        return Err(CcError::new(
            code::ARRAY_LENGTH_WRONG,
            vec![
                Arg::Str("bk_process_ids".into()),
                Arg::Int(MAX_IDS_PER_DETAIL_LIST as i64),
            ],
        ));
    }
    let unique: BTreeSet<i64> = ids.into_iter().collect();
    let list = store.read::<_, CcError>(|tx| {
        let mut out = Vec::new();
        for &pid in &unique {
            let Some(map) = tx.process(pid)? else {
                continue;
            };
            if map.get("bk_biz_id").and_then(Value::as_i64) == Some(biz) {
                out.push(read_shape(map, &fields));
            }
        }
        Ok(out)
    })?;
    Ok(Data::of(&list))
}
