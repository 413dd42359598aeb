//! Process templates: `batch_create_proc_template`, `list_proc_template`, `get_proc_template`,
//! `update_proc_template` and `delete_proc_template` (spec 4.1, 4.2, 4.4; bk-cmdb proc_server
//! `processtemplate.go` and coreservice `process/process_template.go`).

use super::{Ctx, Data, Input, Listing, path_id};
use crate::clock;
use crate::domain::decode;
use crate::domain::page::{self, Page, SortValue};
use crate::domain::service_template::parse_int;
use crate::domain::template_property::ProcessProperty;
use crate::error::{Arg, CcError, code};
use crate::limits::{
    MAX_PROC_TEMPLATE_IDS_PER_LIST, MAX_PROC_TEMPLATES_PER_CREATE, MAX_PROC_TEMPLATES_PER_DELETE,
};
use crate::store::records::{Kind, Module, ProcessTemplate};
use crate::store::{Store, WriteTx};
use serde::Serialize;
use serde_json::Value;

/// A process template as bk-cmdb answers it (struct field order, `property` typed).
#[derive(Serialize)]
struct View<'a> {
    id: i64,
    bk_process_name: &'a str,
    bk_biz_id: i64,
    service_template_id: i64,
    property: ProcessProperty,
    creator: &'a str,
    modifier: &'a str,
    create_time: String,
    last_time: String,
    bk_supplier_account: &'a str,
}

fn view(pt: &ProcessTemplate) -> View<'_> {
    View {
        id: pt.id,
        bk_process_name: &pt.bk_process_name,
        bk_biz_id: pt.bk_biz_id,
        service_template_id: pt.service_template_id,
        property: ProcessProperty::from_stored(&pt.property),
        creator: &pt.creator,
        modifier: &pt.modifier,
        create_time: clock::format_ms(pt.create_time),
        last_time: clock::format_ms(pt.last_time),
        bk_supplier_account: &pt.bk_supplier_account,
    }
}

/// bk-cmdb's uniqueness inside a service template: the process name (1113019), then the
/// (function name, start-parameter regex) pair (1113020); `except` is the template updated.
///
/// bk-cmdb (coreservice `process_template.go` `processNameUniqueValidate`) looks for another
/// template whose stored `bk_start_param_regex.value` *equals* the new regex, a missing one
/// counting as `""`. MongoDB's `{field: ""}` does not match a stored `null`, so a template
/// without a regex never blocks another: only an equal string does.
fn check_unique(tx: &WriteTx, st: i64, prop: &ProcessProperty, except: i64) -> Result<(), CcError> {
    let others: Vec<ProcessProperty> = tx
        .process_template_ids_of(st)?
        .into_iter()
        .filter(|id| *id != except)
        .filter_map(|id| tx.process_template(id).transpose())
        .map(|pt| pt.map(|pt| ProcessProperty::from_stored(&pt.property)))
        .collect::<Result<_, _>>()?;
    if others
        .iter()
        .any(|o| o.process_name() == prop.process_name())
    {
        return Err(CcError::with(
            code::PROCESS_NAME_DUPLICATED,
            prop.process_name(),
        ));
    }
    let regex = prop.start_param_regex();
    if others.iter().any(|o| {
        o.func_name() == prop.func_name()
            && o.field("bk_start_param_regex").and_then(|p| p.str()) == Some(regex)
    }) {
        return Err(CcError::new(
            code::FUNC_NAME_DUPLICATED,
            vec![
                Arg::Str(prop.func_name().into()),
                Arg::Str(prop.start_param_regex().into()),
            ],
        ));
    }
    Ok(())
}

/// `batch_create_proc_template`: `{bk_biz_id, service_template_id, processes:[{spec}]}`.
pub fn create(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let st_id = decode::int(obj, "service_template_id")?;
    let mut specs = Vec::new();
    for item in decode::array(obj, "processes")? {
        let spec = match item {
            Value::Null => None,
            Value::Object(o) => decode::object(o, "spec")?
                .map(ProcessProperty::decode)
                .transpose()?,
            _ => return Err(CcError::json()),
        };
        specs.push(spec);
    }
    if specs.is_empty() {
        return Ok(Data::of(&[0i64; 0]));
    }
    for spec in specs.iter().flatten() {
        spec.check_spaces()?;
    }
    if specs.len() > MAX_PROC_TEMPLATES_PER_CREATE {
        return Err(CcError::exceed_limit(
            "create process template",
            MAX_PROC_TEMPLATES_PER_CREATE as i64,
        ));
    }
    let ctx = ctx.clone();
    let ids = store.write(move |tx| {
        let mut ids = Vec::with_capacity(specs.len());
        for spec in specs {
            let mut prop = spec.ok_or_else(|| CcError::invalid("property"))?;
            prop.validate().map_err(CcError::invalid)?;
            prop.lock_names();
            if biz == 0 || tx.business(biz)?.is_none() {
                return Err(CcError::invalid("bk_biz_id"));
            }
            let st = tx
                .service_template(st_id)?
                .ok_or_else(|| CcError::invalid("service_template_id"))?;
            if st.bk_biz_id != biz {
                return Err(CcError::invalid("bk_biz_id"));
            }
            check_unique(tx, st_id, &prop, 0)?;
            let pt = ProcessTemplate {
                id: tx.next_id(Kind::ProcessTemplate)?,
                bk_process_name: prop.process_name().to_string(),
                bk_biz_id: biz,
                service_template_id: st_id,
                property: prop.to_stored(),
                creator: ctx.user.clone(),
                modifier: ctx.user.clone(),
                create_time: ctx.now_ms,
                last_time: ctx.now_ms,
                bk_supplier_account: ctx.supplier.clone(),
            };
            tx.put_process_template(&pt)?;
            ids.push(pt.id);
        }
        Ok(ids)
    })?;
    Ok(Data::of(&ids))
}

fn sort_value(pt: &ProcessTemplate, field: &str) -> SortValue {
    match field {
        "create_time" => SortValue::Date(pt.create_time),
        "last_time" => SortValue::Date(pt.last_time),
        _ => SortValue::at(
            &serde_json::to_value(view(pt)).unwrap_or(Value::Null),
            field,
        ),
    }
}

/// `list_proc_template`: `{bk_biz_id, service_template_id, process_template_ids, page}`.
pub fn list(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let ids = decode::int_array(obj, "process_template_ids")?;
    let st = decode::int(obj, "service_template_id")?;
    let page = Page::decode(obj, "page")?;
    if biz <= 0 {
        return Err(CcError::invalid("bk_biz_id"));
    }
    if ids.len() > MAX_PROC_TEMPLATE_IDS_PER_LIST {
        return Err(CcError::new(
            code::ARRAY_LENGTH_WRONG,
            vec![
                Arg::Str("bk_process_ids".into()),
                Arg::Int(MAX_PROC_TEMPLATE_IDS_PER_LIST as i64),
            ],
        ));
    }
    if st == 0 && ids.is_empty() {
        return Err(CcError::invalid(
            "service_template_id and process_template_ids can't be empty at the same time",
        ));
    }
    let keys = page::parse_sort(page.sort_or("-id"))?;
    if page.start < 0 {
        // MongoDB refuses a negative skip.
        return Err(CcError::plain(code::DB_SELECT));
    }
    let found = store.read(|tx| {
        tx.select::<ProcessTemplate>(|pt| {
            pt.bk_biz_id == biz
                && (st <= 0 || pt.service_template_id == st)
                && (ids.is_empty() || ids.contains(&pt.id))
        })
    })?;
    let (count, items) = page.count_and_window(found, &keys, sort_value);
    let info: Vec<View> = items.iter().map(view).collect();
    Ok(Data::of(&Listing { count, info }))
}

/// `get_proc_template`: `POST …/find/proc/proc_template/id/{process_template_id}`.
pub fn get(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    decode::int(obj, "bk_biz_id")?;
    let id = parse_int(&path_id(input, "process_template_id")?)
        .map_err(|_| CcError::plain(code::HTTP_INPUT_INVALID))?;
    let pt = store
        .read(|tx| tx.process_template(id))?
        .ok_or_else(|| CcError::plain(code::NOT_FOUND))?;
    Ok(Data::of(&view(&pt)))
}

/// bk-cmdb's update and delete handlers first list the named templates (for authorization)
/// through coreservice's `ListProcessTemplates`, which refuses business 0 with 1199006
/// 'bk_biz_id' (coreservice `service/process_template.go`). Any other business passes: the
/// change itself is not scoped by business.
fn listable_business(biz: i64) -> Result<(), CcError> {
    if biz == 0 {
        return Err(CcError::invalid("bk_biz_id"));
    }
    Ok(())
}

/// `update_proc_template`: `{bk_biz_id, process_template_id, process_property}`. Keys present
/// replace whole wrappers; `bk_func_name` never changes (bk-cmdb); `bk_biz_id` must not be 0
/// but is otherwise not looked at.
pub fn update(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let id = decode::int(obj, "process_template_id")?;
    let Some(raw) = decode::object(obj, "process_property")? else {
        return Err(CcError::plain(code::HTTP_INPUT_INVALID));
    };
    if id <= 0 {
        return Err(CcError::plain(code::HTTP_INPUT_INVALID));
    }
    listable_business(biz)?;
    let ctx = ctx.clone();
    let raw = raw.clone();
    let pt = store.write::<_, CcError>(move |tx| {
        let mut pt = tx
            .process_template(id)?
            .ok_or_else(|| CcError::plain(code::NOT_FOUND))?;
        let input = ProcessProperty::decode(&raw)?;
        let mut prop = ProcessProperty::from_stored(&pt.property);
        prop.update(&input, &raw);
        prop.validate().map_err(CcError::invalid)?;
        prop.lock_names();
        pt.modifier = ctx.user.clone();
        pt.last_time = ctx.now_ms;
        check_unique(tx, pt.service_template_id, &prop, pt.id)?;
        if let Some(name) = prop.field("bk_process_name").and_then(|p| p.str()) {
            pt.bk_process_name = name.to_string();
        }
        pt.property = prop.to_stored();
        tx.put_process_template(&pt)?;
        Ok(pt)
    })?;
    Ok(Data::of(&view(&pt)))
}

/// `delete_proc_template`: `{bk_biz_id, process_templates:[id]}`. Every id must exist (else
/// 1108014, nothing deleted); processes created from a deleted template keep living, their
/// relation's `process_template_id` reset to 0, as bk-cmdb does. Not scoped by business, but
/// business 0 is refused (see [`listable_business`]).
pub fn delete(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let ids = decode::int_array(obj, "process_templates")?;
    super::one_to_max(
        ids.len(),
        "process_templates",
        "delete process template",
        MAX_PROC_TEMPLATES_PER_DELETE,
    )?;
    listable_business(biz)?;
    store.write::<_, CcError>(move |tx| {
        for id in ids {
            let pt = tx
                .process_template(id)?
                .ok_or_else(|| CcError::plain(code::PROC_DELETE_TEMPLATE))?;
            let mut modules = Vec::new();
            tx.scan::<Module, CcError>(|mid, m| {
                if m.service_template_id == pt.service_template_id {
                    modules.push(mid);
                }
                Ok(true)
            })?;
            for module in modules {
                for si in tx.service_instance_ids_of_module(module)? {
                    for pid in tx.process_ids_of(si)? {
                        let Some(mut rel) = tx.relation(pid)? else {
                            continue;
                        };
                        if rel.process_template_id != id {
                            continue;
                        }
                        rel.process_template_id = 0;
                        let map = tx.process(pid)?.unwrap_or_default();
                        tx.put_process(pid, &map, &rel)?;
                    }
                }
            }
            tx.delete_process_template(id)?;
        }
        Ok(())
    })?;
    Ok(Data::null())
}
