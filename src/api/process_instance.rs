//! Process instances: `create_process_instance` (spec 2) and `list_process_instance` (spec 4.4).

use super::{Ctx, Data, Input};
use crate::clock;
use crate::domain::decode;
use crate::domain::process::{self, ServerFields};
use crate::error::{CcError, code};
use crate::limits::MAX_PROCESSES_PER_REQUEST;
use crate::store::records::Relation;
use crate::store::{NewProcess, ReadTx, Store, WriteTx};
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
            Some(process::check_create(&mut map).map(|()| {
                process::stamp_insert_fields(&mut map, 0, &fields);
                let filled = process::Filled(&map);
                NewProcess::of_entries(|k| filled.get(k), filled.iter())
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
    if !tx.has::<crate::store::records::Business>(biz)? {
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
                repeated.get_or_insert(super::duplicate(&key));
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
    super::streamed::call_whole(super::Op::ListProcessInstance, store, input)
}

/// `list_process_instance`'s request, decoded and checked; run on a snapshot, it lists the
/// instance's processes of the business, one piece each (`streamed.rs`).
pub(super) fn list_query(input: &Input) -> Result<super::streamed::Query, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let si = decode::int(obj, "service_instance_id")?;
    if si == 0 {
        return Err(CcError::invalid("service_instance_id"));
    }
    Ok(Box::new(move |tx: &ReadTx| {
        Ok(super::streamed::Listed {
            head: b"[".to_vec(),
            pieces: Box::new(Listing {
                biz,
                pids: tx.process_ids_of(si)?.into_iter(),
                first: true,
            }),
            tail: "]",
            ended: false,
        })
    }))
}

/// The pieces of `list_process_instance`: one `{"property":…,"relation":…}` each.
struct Listing {
    biz: i64,
    pids: std::vec::IntoIter<i64>,
    first: bool,
}

impl super::streamed::Pieces for Listing {
    fn next(&mut self, tx: &ReadTx, out: &mut Vec<u8>) -> Result<bool, CcError> {
        for pid in self.pids.by_ref() {
            let Some(relation) = tx.relation(pid)? else {
                continue;
            };
            if relation.bk_biz_id != self.biz {
                continue;
            }
            if !std::mem::take(&mut self.first) {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"property\":");
            if !tx.write_process_json(pid, out)? {
                out.extend_from_slice(b"null");
            }
            out.extend_from_slice(b",\"relation\":");
            out.extend_from_slice(Data::of(&relation).0.as_bytes());
            out.push(b'}');
            return Ok(true);
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::process::{self, Filled, ServerFields};
    use crate::error::Lang;
    use crate::store::NewProcess;
    use serde_json::{Map, Value, json};

    /// The bulk path (checked, read filled) gives what the filling path gives: the same answer
    /// for a bad item, the same map, and the same new process (keys and bytes), for items with
    /// unknown, ignored, padded, null and absent keys.
    #[test]
    fn a_sparse_process_is_the_filled_one() {
        let fields = ServerFields {
            biz_id: 2,
            service_instance_id: 3,
            supplier: "0",
            user: "admin",
            now: "2026-01-02T03:04:05.678Z",
        };
        let items = [
            json!({"bk_process_name": "a", "bk_func_name": "a"}),
            json!({"bk_process_name": " a ", "bk_func_name": "f", "bk_start_param_regex": null,
                   "zz": 1, "AA": 2, "default": 5, "bk_obj_id": "process", "priority": 3,
                   "auto_start": true, "user": " root ", "description": "d",
                   "bind_info": [{"ip": "127.0.0.1", "port": "80", "protocol": "1", "enable": true}]}),
            json!({"bk_process_name": "a", "bk_func_name": "a", "bk_start_param_regex": "x",
                   "bk_updated_by": "u", "work_path": "", "timeout": null}),
            json!({"bk_process_name": "a"}),
            json!({"bk_process_name": "a", "bk_func_name": "a", "proc_num": "x"}),
            json!({"bk_process_name": "a", "bk_func_name": "a", "auto_start": "yes"}),
        ];
        for item in items {
            let mut full: Map<String, Value> = item.as_object().unwrap().clone();
            process::stamp_request_fields(&mut full, &fields);
            let mut sparse = full.clone();
            let (a, b) = (
                process::validate_create(&mut full),
                process::check_create(&mut sparse),
            );
            match (a, b) {
                (Ok(()), Ok(())) => {}
                (Err(a), Err(b)) => {
                    assert_eq!(a.render(Lang::En), b.render(Lang::En), "{item}");
                    continue;
                }
                (a, b) => panic!("{item}: {a:?} against {b:?}"),
            }
            process::stamp_insert_fields(&mut full, 0, &fields);
            process::stamp_insert_fields(&mut sparse, 0, &fields);
            let filled = Filled(&sparse);
            let read: Map<String, Value> = filled
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            assert_eq!(read, full, "{item}");
            for k in full.keys().map(String::as_str).chain(["nope", "bk_zz"]) {
                assert_eq!(filled.get(k), full.get(k), "{item}: {k}");
            }
            assert_eq!(
                NewProcess::of_entries(|k| filled.get(k), filled.iter()),
                NewProcess::new(full),
                "{item}"
            );
        }
    }
}
