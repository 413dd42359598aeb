//! Process instances: `create_process_instance` (spec 2) and `list_process_instance` (spec 4.4).

use super::{Ctx, Data, Input};
use crate::clock;
use crate::domain::decode;
use crate::domain::process::{self, ServerFields};
use crate::error::{Arg, CcError, code};
use crate::limits::MAX_PROCESSES_PER_REQUEST;
use crate::store::records::{Kind, Relation};
use crate::store::{Store, WriteTx};
use serde::Serialize;
use serde_json::{Map, Value};

/// One decoded item of `processes`; `None` is a null or missing `process_info`.
pub(crate) type Item = Option<Map<String, Value>>;

/// The `processes` array of a request: `process_template_id` type-checked, `process_info` kept.
pub(crate) fn decode_items(obj: &Map<String, Value>) -> Result<Vec<Item>, CcError> {
    let mut items = Vec::new();
    for v in decode::array(obj, "processes")? {
        match v {
            Value::Null => items.push(None),
            Value::Object(item) => {
                decode::int(item, "process_template_id")?;
                items.push(decode::object(item, "process_info")?.cloned());
            }
            _ => return Err(CcError::json()),
        }
    }
    Ok(items)
}

/// `create_process_instance`: spec 2.2, steps 2 to 14.
pub fn create(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let si_id = decode::int(obj, "service_instance_Id")?;
    let items = decode_items(obj)?;
    if items.is_empty() {
        return Err(CcError::raw(code::PARAMS_IS_INVALID, "not set processes"));
    }
    if items.len() > MAX_PROCESSES_PER_REQUEST {
        return Err(CcError::new(
            code::EXCEED_LIMIT,
            vec![
                Arg::Str("create process instances".into()),
                Arg::Int(MAX_PROCESSES_PER_REQUEST as i64),
            ],
        ));
    }
    let now = clock::format_ms(ctx.now_ms);
    let ids = store.write(|tx| create_in_tx(tx, ctx, &now, biz, si_id, &items))?;
    Ok(Data::of(&ids))
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
    let si = tx
        .service_instance(si_id)?
        .ok_or_else(|| CcError::plain(code::NOT_FOUND))?;
    if si.bk_biz_id != biz {
        return Err(CcError::invalid("bk_biz_id"));
    }
    if si.service_template_id != 0 {
        return Err(CcError::plain(code::PROC_EDIT_BY_TEMPLATE_FORBIDDEN));
    }
    let fields = ServerFields {
        biz_id: biz,
        service_instance_id: si_id,
        supplier: &ctx.supplier,
        user: &ctx.user,
        now,
    };
    // Step 9: bk-cmdb writes into each process_info; a null one panics there.
    let mut maps = Vec::with_capacity(items.len());
    for item in items {
        let Some(map) = item else {
            return Err(CcError::with(code::INTERNAL, "proc"));
        };
        let mut map = map.clone();
        process::stamp_request_fields(&mut map, &fields);
        maps.push(map);
    }
    // The generic instance path refuses a process of a business that does not exist.
    if tx.business(biz)?.is_none() {
        return Err(CcError::raw(code::HTTP_DO_REQUEST, "http request failed"));
    }
    // Step 10: item by item; failures are collected and processing goes on (spec 2.2).
    let mut repeated: Option<CcError> = None;
    let mut exception: Option<CcError> = None;
    let mut created = Vec::with_capacity(maps.len());
    for mut map in maps {
        if let Err(e) = process::validate_create(&mut map) {
            exception.get_or_insert(e);
            continue;
        }
        let pid = tx.next_id(Kind::Process)?;
        process::stamp_insert_fields(&mut map, pid, &fields);
        if let Some(key) = tx.process_key_conflict(&map, pid)? {
            repeated.get_or_insert(CcError::with(code::DUPLICATE_ITEM, key.dup_text()));
            continue;
        }
        let rel = Relation {
            bk_biz_id: biz,
            bk_process_id: pid,
            service_instance_id: si_id,
            process_template_id: 0,
            bk_host_id: si.bk_host_id,
            bk_supplier_account: ctx.supplier.clone(),
        };
        tx.put_process(pid, &map, &rel)?;
        created.push(pid);
    }
    // Step 11: a duplicate wins over a validation failure.
    if let Some(e) = repeated {
        return Err(e);
    }
    if let Some(e) = exception {
        return Err(process::proc_server_error(e));
    }
    if created.len() != items.len() {
        return Err(CcError::plain(code::PROC_CREATE_PROCESS));
    }
    Ok(created)
}

#[derive(Serialize)]
struct ProcessInstance {
    property: Option<Map<String, Value>>,
    relation: Relation,
}

/// `list_process_instance`: every process of one service instance, in relation order.
pub fn list(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let si = decode::int(obj, "service_instance_id")?;
    if si == 0 {
        return Err(CcError::invalid("service_instance_id"));
    }
    let list = store.read(|tx| {
        let mut out = Vec::new();
        for pid in tx.process_ids_of(si)? {
            let Some(relation) = tx.relation(pid)? else {
                continue;
            };
            if relation.bk_biz_id != biz {
                continue;
            }
            out.push(ProcessInstance {
                property: tx.process(pid)?,
                relation,
            });
        }
        Ok(out)
    })?;
    Ok(Data::of(&list))
}
