//! Process instances: `create_process_instance` (spec 2) and `list_process_instance` (spec 4.4).

use super::{Ctx, Data, Input};
use crate::clock;
use crate::domain::decode;
use crate::domain::process::{self, ServerFields};
use crate::error::{Arg, CcError, code};
use crate::limits::MAX_PROCESSES_PER_REQUEST;
use crate::store::records::Relation;
use crate::store::{NewProcess, Store, WriteTx};
use serde_json::{Map, Value};

/// One decoded item of `processes`; `None` is a null or missing `process_info`.
pub(crate) type Item = Option<Map<String, Value>>;

/// The `processes` array of a request: `process_template_id` type-checked, `process_info`
/// taken out of the body (moved, not copied: the body is the request's own).
pub(crate) fn decode_items(obj: &mut Map<String, Value>) -> Result<Vec<Item>, CcError> {
    let mut items = Vec::new();
    decode::array(obj, "processes")?;
    let Some(Value::Array(list)) = decode::take(obj, "processes") else {
        return Ok(items);
    };
    for v in list {
        match v {
            Value::Null => items.push(None),
            Value::Object(mut item) => {
                decode::int(&item, "process_template_id")?;
                decode::object(&item, "process_info")?;
                items.push(match decode::take(&mut item, "process_info") {
                    Some(Value::Object(info)) => Some(info),
                    _ => None,
                });
            }
            _ => return Err(CcError::json()),
        }
    }
    Ok(items)
}

/// `create_process_instance`: spec 2.2, steps 2 to 14.
pub fn create(ctx: &Ctx, store: &Store, mut input: Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let si_id = decode::int(obj, "service_instance_Id")?;
    let items = match &mut input.body {
        Value::Object(obj) => decode_items(obj)?,
        _ => Vec::new(),
    };
    if items.is_empty() {
        return Err(CcError::raw(code::PARAMS_IS_INVALID, "not set processes"));
    }
    if items.len() > MAX_PROCESSES_PER_REQUEST {
        return Err(CcError::exceed_limit(
            "create process instances",
            MAX_PROCESSES_PER_REQUEST as i64,
        ));
    }
    let now = clock::format_ms(ctx.now_ms);
    // Everything that needs no stored data runs here, before the request queues for the
    // writer: the writer only checks, takes ids and inserts.
    let prepared = prepare(ctx, &now, biz, si_id, items);
    let supplier = ctx.supplier.clone();
    let ids = store.write(move |tx| create_prepared(tx, &supplier, biz, si_id, prepared))?;
    Ok(Data::of(&ids))
}

/// The items of a create, prepared without the store (spec 2.2 step 9 and coreservice's
/// validation): each stamped with the request's fields, validated, filled, stamped with what
/// the insert sets but the id, and encoded. `None` is a null `process_info`.
pub(crate) type Prepared = Vec<Option<Result<NewProcess, CcError>>>;

/// Prepares `items` for [`create_prepared`]: pure, so it runs on the request's own thread.
pub(crate) fn prepare(ctx: &Ctx, now: &str, biz: i64, si_id: i64, items: Vec<Item>) -> Prepared {
    let fields = ServerFields {
        biz_id: biz,
        service_instance_id: si_id,
        supplier: &ctx.supplier,
        user: &ctx.user,
        now,
    };
    items
        .into_iter()
        .map(|item| {
            let mut map = item?;
            process::stamp_request_fields(&mut map, &fields);
            Some(process::validate_create(&mut map).map(|()| {
                process::stamp_insert_fields(&mut map, 0, &fields);
                NewProcess::new(map)
            }))
        })
        .collect()
}

/// The transactional core of `create_process_instance` (spec 2.2 steps 6 to 12) on an open
/// transaction: load and check the service instance, stamp, validate and insert every item
/// (bk-cmdb's collection of failures, a duplicate winning over a validation failure), and write
/// the relations. `create_service_instance` runs it for the processes of a raw instance.
/// `now` is the RFC 3339 text of the request's time. Returns the new ids in input order.
pub(crate) fn create_in_tx(
    tx: &mut WriteTx,
    ctx: &Ctx,
    now: &str,
    biz: i64,
    si_id: i64,
    items: &[Item],
) -> Result<Vec<i64>, CcError> {
    let prepared = prepare(ctx, now, biz, si_id, items.to_vec());
    create_prepared(tx, &ctx.supplier, biz, si_id, prepared)
}

/// [`create_in_tx`] on items [`prepare`]d beforehand: the same checks in the same order (the
/// service instance, a null item, the business, then item by item), so the same answer.
pub(crate) fn create_prepared(
    tx: &mut WriteTx,
    supplier: &str,
    biz: i64,
    si_id: i64,
    prepared: Prepared,
) -> Result<Vec<i64>, CcError> {
    let si = tx
        .service_instance(si_id)?
        .ok_or_else(|| CcError::plain(code::NOT_FOUND))?;
    if si.bk_biz_id != biz {
        return Err(CcError::invalid("bk_biz_id"));
    }
    if si.service_template_id != 0 {
        return Err(CcError::plain(code::PROC_EDIT_BY_TEMPLATE_FORBIDDEN));
    }
    // Step 9: bk-cmdb writes into each process_info; a null one panics there.
    if prepared.iter().any(Option::is_none) {
        return Err(CcError::with(code::INTERNAL, "proc"));
    }
    // The generic instance path refuses a process of a business that does not exist.
    if tx.business(biz)?.is_none() {
        return Err(CcError::raw(code::HTTP_DO_REQUEST, "http request failed"));
    }
    // Step 10: item by item; failures are collected and processing goes on (spec 2.2). An
    // item that failed validation takes no id; the others take theirs in order, and one whose
    // uniqueness key is held is not inserted.
    let mut exception: Option<CcError> = None;
    let total = prepared.len();
    let mut maps = Vec::with_capacity(total);
    for item in prepared.into_iter().flatten() {
        match item {
            Ok(map) => maps.push(map),
            Err(e) => {
                exception.get_or_insert(e);
            }
        }
    }
    let rel = Relation {
        bk_biz_id: biz,
        bk_process_id: 0,
        service_instance_id: si_id,
        process_template_id: 0,
        bk_host_id: si.bk_host_id,
        bk_supplier_account: supplier.to_string(),
    };
    let mut repeated: Option<CcError> = None;
    let mut created = Vec::with_capacity(maps.len());
    for result in tx.insert_processes(maps, &rel)? {
        match result {
            Ok(pid) => created.push(pid),
            Err(key) => {
                repeated.get_or_insert(CcError::with(code::DUPLICATE_ITEM, key.dup_text()));
            }
        }
    }
    // Step 11: a duplicate wins over a validation failure.
    if let Some(e) = repeated {
        return Err(e);
    }
    if let Some(e) = exception {
        return Err(process::proc_server_error(e));
    }
    if created.len() != total {
        return Err(CcError::plain(code::PROC_CREATE_PROCESS));
    }
    Ok(created)
}

/// `list_process_instance`: every process of one service instance, in relation order, as
/// `{"property": …, "relation": …}`. The answer is written straight from the stored bytes (no
/// process map is built), so the work and memory are those of the answer alone.
pub fn list(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let si = decode::int(obj, "service_instance_id")?;
    if si == 0 {
        return Err(CcError::invalid("service_instance_id"));
    }
    let json = store.read(|tx| {
        let mut out = b"[".to_vec();
        for pid in tx.process_ids_of(si)? {
            let Some(relation) = tx.relation(pid)? else {
                continue;
            };
            if relation.bk_biz_id != biz {
                continue;
            }
            if out.len() > 1 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"property\":");
            if !tx.write_process_json(pid, &mut out)? {
                out.extend_from_slice(b"null");
            }
            out.extend_from_slice(b",\"relation\":");
            out.extend_from_slice(Data::of(&relation).0.as_bytes());
            out.push(b'}');
        }
        out.push(b']');
        Ok(out)
    })?;
    // Only serde_json wrote into `out`, and it writes UTF-8.
    String::from_utf8(json)
        .map(Data)
        .map_err(|_| CcError::raw(code::DB_SELECT, "stored text is not UTF-8"))
}

// ---------------------------------------------------------------------------------------------
// update_process_instance, delete_process_instance, list_process_detail_by_ids (spec 4.4)

use crate::domain::process_update::{self, UpdateItem};
use crate::domain::template_process::{self, HostIps};
use crate::limits::{MAX_IDS_PER_DELETE, MAX_IDS_PER_DETAIL_LIST};
use crate::store::records::Host;
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
/// (raw processes: the whole item; template-bound: see `domain::template_process`); then each
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
            template_process::update_data(property, item, host.as_ref())?
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
            return Err(CcError::with(code::DUPLICATE_ITEM, key.dup_text()));
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
    if ids.is_empty() {
        return Err(CcError::with(code::PARAMS_NEED_SET, "bk_process_id"));
    }
    if ids.len() > MAX_IDS_PER_DELETE {
        return Err(CcError::exceed_limit(
            "delete process instance",
            MAX_IDS_PER_DELETE as i64,
        ));
    }
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
    let list = store.read(|tx| {
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

/// A process as bk-cmdb's instance read returns it (coreservice `FindInst` over a MongoDB
/// projection): only `fields` when any are given (dotted paths reach into objects and arrays
/// of objects); a null or absent `bk_created_at`/`bk_updated_at` that is returned takes the
/// value of `create_time`/`last_time`, which are themselves dropped unless asked for.
fn read_shape(doc: Map<String, Value>, fields: &[String]) -> Map<String, Value> {
    let wants = |f: &str| fields.is_empty() || fields.iter().any(|x| x == f);
    let (created_at, create_time) = (wants("bk_created_at"), wants("create_time"));
    let (updated_at, last_time) = (wants("bk_updated_at"), wants("last_time"));
    let mut paths: Vec<&str> = fields.iter().map(String::as_str).collect();
    if created_at && !create_time {
        paths.push("create_time");
    }
    if updated_at && !last_time {
        paths.push("last_time");
    }
    let paths: Vec<&str> = paths.into_iter().filter(|p| !p.is_empty()).collect();
    let mut out = if paths.is_empty() {
        doc
    } else {
        project(&doc, &paths)
    };
    for (wanted, key, from) in [
        (created_at, "bk_created_at", "create_time"),
        (updated_at, "bk_updated_at", "last_time"),
    ] {
        if wanted && out.get(key).is_none_or(Value::is_null) {
            let v = out.get(from).cloned().unwrap_or(Value::Null);
            out.insert(key.into(), v);
        }
    }
    if !create_time {
        out.remove("create_time");
    }
    if !last_time {
        out.remove("last_time");
    }
    out
}

/// A MongoDB inclusion projection of `doc` on `paths` (`a` or `a.b.c`); a path that also has a
/// shorter prefix in the list is covered by the prefix.
fn project(doc: &Map<String, Value>, paths: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    let mut nested: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut whole: BTreeSet<&str> = BTreeSet::new();
    for p in paths {
        match p.split_once('.') {
            None => {
                whole.insert(p);
            }
            Some((head, rest)) => nested.entry(head).or_default().push(rest),
        }
    }
    for key in &whole {
        if let Some(v) = doc.get(*key) {
            out.insert(key.to_string(), v.clone());
        }
    }
    for (key, rest) in nested {
        if whole.contains(key) {
            continue;
        }
        if let Some(v) = doc.get(key).and_then(|v| project_value(v, &rest)) {
            out.insert(key.to_string(), v);
        }
    }
    out
}

fn project_value(v: &Value, paths: &[&str]) -> Option<Value> {
    match v {
        Value::Object(m) => Some(Value::Object(project(m, paths))),
        Value::Array(items) => Some(Value::Array(
            items
                .iter()
                .filter_map(|i| project_value(i, paths))
                .collect(),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod read_shape_tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Map<String, Value> {
        json!({"bk_process_id": 1, "bk_process_name": "a", "create_time": "t1", "last_time": "t2",
               "bk_created_at": null, "bind_info": [{"port": "80", "ip": "1.1.1.1"}, 5]})
        .as_object()
        .unwrap()
        .clone()
    }

    fn shape(fields: &[&str]) -> Value {
        let f: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
        Value::Object(read_shape(doc(), &f))
    }

    #[test]
    fn whole_document_fills_the_recorded_times() {
        let v = shape(&[]);
        assert_eq!(v["bk_created_at"], "t1");
        assert_eq!(v["bk_updated_at"], "t2");
        assert_eq!(v["create_time"], "t1");
    }

    #[test]
    fn fields_select_and_times_follow_bk_cmdb() {
        assert_eq!(
            shape(&["bk_process_name", "nope"]),
            json!({"bk_process_name": "a"})
        );
        assert_eq!(shape(&["bk_created_at"]), json!({"bk_created_at": "t1"}));
        assert_eq!(
            shape(&["bk_updated_at", "last_time"]),
            json!({"bk_updated_at": "t2", "last_time": "t2"})
        );
        assert_eq!(
            shape(&["bind_info.port"]),
            json!({"bind_info": [{"port": "80"}]})
        );
        assert_eq!(
            shape(&["bind_info", "bind_info.port"]),
            json!({"bind_info": [{"port": "80", "ip": "1.1.1.1"}, 5]})
        );
        // Only empty names: no projection, but the times are dropped as not asked for.
        let v = shape(&[""]);
        assert_eq!(v["bk_process_name"], "a");
        assert!(v.get("create_time").is_none());
    }
}
