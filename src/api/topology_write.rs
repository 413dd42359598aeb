//! Topology writes (bk-cmdb topo_server `inst_set.go`, `inst_module.go`, `logics/inst/`;
//! coreservice `core/instances`; spec topology 8): create_set, update_set, delete_set,
//! batch_delete_set, create_module, update_module, delete_module. Each request is one store
//! transaction; ids come from the store's sequences.

use super::topology::arg;
use super::{Ctx, Data, Input};
use crate::clock;
use crate::domain::decode;
use crate::domain::service_template::parse_int;
use crate::domain::topology::{self as rules, Obj, Stamp};
use crate::domain::topology_write::{distinct, topo_name};
use crate::error::{CcError, Lang, code};
use crate::limits::MAX_SETS_PER_DELETE;
use crate::store::records::{Kind, Module, Set};
use crate::store::{Store, WriteTx};
use serde_json::{Map, Value, json};

/// A path id of a native route, else the ESB body key: not an integer is 1199009 naming `what`.
fn path_int(input: &Input, key: &str, what: &str) -> Result<i64, CcError> {
    arg(input, key)
        .parse::<i64>()
        .map_err(|_| CcError::with(code::PARAMS_NEED_INT, what))
}

/// The record fields of a create or update body: the body itself, or on the ESB its `data`
/// object (`{"bk_biz_id": …, "data": {…}}`).
fn fields(input: &Input) -> Result<Map<String, Value>, CcError> {
    let obj = decode::body_object(&input.body)?.clone();
    if input.params.is_empty()
        && let Some(Value::Object(data)) = obj.get("data")
    {
        return Ok(data.clone());
    }
    Ok(obj)
}

/// Keeps the built-in attributes of `obj` (editable ones only for an update), trimming
/// strings; coreservice drops every other key.
fn known(obj: Obj, map: Map<String, Value>, editable_only: bool) -> Map<String, Value> {
    let defs = rules::attributes(obj);
    map.into_iter()
        .filter(|(k, _)| {
            defs.iter()
                .any(|d| d.id == k && (!editable_only || d.editable))
        })
        .map(|(k, v)| match v {
            Value::String(s) => (k, Value::String(s.trim().to_string())),
            v => (k, v),
        })
        .collect()
}

/// An error of coreservice's validation as topo_server answers it: wrapped once in 1199011.
fn wrapped(e: CcError) -> CcError {
    CcError::wrap(code::PARAMS_IS_INVALID, e)
}

/// MongoDB's duplicate-key text of a module name (1199014).
fn module_dup(biz: i64, set: i64, name: &str) -> CcError {
    let q = serde_json::to_string(name).unwrap_or_default();
    CcError::with(
        code::DUPLICATE_ITEM,
        format!(" bk_biz_id: {biz}, bk_set_id: {set}, bk_module_name: {q} "),
    )
}

/// A new record's attributes completed with bk-cmdb's defaults, stamped with the request's
/// time, user and supplier.
fn fill_new(ctx: &Ctx, obj: Obj, attrs: &mut Map<String, Value>) {
    let now = clock::format_ms(ctx.now_ms);
    let stamp = Stamp {
        now: &now,
        user: &ctx.user,
        supplier: &ctx.supplier,
    };
    rules::fill(obj, attrs, &stamp);
}

fn stamp_update(map: &mut Map<String, Value>, ctx: &Ctx, now: &str) {
    map.insert("last_time".into(), json!(now));
    map.insert("bk_updated_at".into(), json!(now));
    map.insert("bk_updated_by".into(), json!(ctx.user));
}

/// A set of `biz` (other than `except`) already named `name` under `parent`.
fn set_name_taken(
    tx: &WriteTx,
    biz: i64,
    parent: i64,
    name: &str,
    except: i64,
) -> Result<bool, CcError> {
    for id in tx.set_ids_of_biz(biz)? {
        if id != except
            && let Some(s) = tx.set(id)?
            && s.bk_parent_id == parent
            && s.bk_set_name == name
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A module of `set` (other than `except`) already named `name`.
fn module_name_taken(tx: &WriteTx, set: i64, name: &str, except: i64) -> Result<bool, CcError> {
    for id in tx.module_ids_of_set(set)? {
        if id != except
            && let Some(m) = tx.module(id)?
            && m.bk_module_name == name
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `create_set`: spec topology 8.1. `data` is the stored set.
pub fn create_set(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let biz = path_int(input, "bk_biz_id", "business id")?;
    let body = fields(input)?;
    let default = match body.get("default") {
        None => 0,
        // Go's `util.GetInt64ByInterface` on the decoded value, its error sent as is.
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| CcError::raw(code::UNKNOWN, parse_int(&n.to_string()).unwrap_err()))?,
        Some(_) => return Err(CcError::raw(code::UNKNOWN, "not numeric")),
    };
    match body.get("set_template_id") {
        None | Some(Value::Null) => {}
        Some(v) => match v.as_i64() {
            Some(0) => {}
            Some(_) => return Err(CcError::plain(code::NOT_FOUND)),
            None => {
                let what = if ctx.lang == Lang::En {
                    "Set template ID"
                } else {
                    "集群模板ID"
                };
                return Err(CcError::invalid(what));
            }
        },
    }
    let name = body.get("bk_set_name").cloned();
    let parent = body.get("bk_parent_id").cloned();
    let mut attrs = known(Obj::Set, body, false);
    for k in Set::TYPED {
        attrs.remove(k);
    }
    attrs.insert("set_template_id".into(), json!(0));
    let ctx = ctx.clone();
    let set = store.write(move |tx| {
        if biz == 0 || tx.business(biz)?.is_none() {
            return Err(CcError::invalid_param("bk_biz_id"));
        }
        let Some(name) = name else {
            return Err(CcError::with(code::PARAMS_NEED_SET, "bk_set_name"));
        };
        let Some(parent) = parent else {
            return Err(CcError::with(code::PARAMS_NEED_SET, "bk_parent_id"));
        };
        let name = match &name {
            Value::String(s) => topo_name(s, "bk_set_name").map_err(wrapped)?,
            _ => return Err(wrapped(CcError::invalid("bk_set_name"))),
        };
        let parent = match parent.as_i64() {
            Some(p) if p > 0 => p,
            _ => return Err(wrapped(CcError::invalid("bk_parent_id"))),
        };
        if set_name_taken(tx, biz, parent, &name, 0)? {
            return Err(CcError::plain(code::TOPO_SET_NAME_EXISTS));
        }
        fill_new(&ctx, Obj::Set, &mut attrs);
        let set = Set {
            bk_set_id: tx.next_id(Kind::Set)?,
            bk_biz_id: biz,
            bk_set_name: name,
            bk_parent_id: parent,
            default,
            attrs: Value::Object(attrs),
        };
        tx.put_set(&set)?;
        Ok(set)
    })?;
    Ok(Data::of(&set.to_map()))
}

/// `update_set`: spec topology 8.2. `data` is null.
pub fn update_set(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let biz = path_int(input, "bk_biz_id", "business id")?;
    let set_id = path_int(input, "bk_set_id", "set id")?;
    let body = fields(input)?;
    let name = body.get("bk_set_name").cloned();
    let mut changes = known(Obj::Set, body, true);
    for k in ["bk_biz_id", "bk_set_id", "set_template_id", "bk_parent_id"] {
        changes.remove(k);
    }
    changes.remove("bk_set_name");
    let ctx = ctx.clone();
    store.write(move |tx| {
        let set = tx.set(set_id)?;
        if set.as_ref().is_some_and(|s| s.default != 0) {
            return Err(CcError::plain(code::TOPO_BUILT_IN_READ_ONLY));
        }
        let mut set = match set {
            Some(s) if s.bk_biz_id == biz => s,
            _ => return Err(CcError::plain(code::NOT_FOUND)),
        };
        if let Some(name) = name {
            let name = match &name {
                Value::String(s) => topo_name(s, "bk_set_name").map_err(wrapped)?,
                _ => return Err(wrapped(CcError::invalid("bk_set_name"))),
            };
            if set_name_taken(tx, biz, set.bk_parent_id, &name, set_id)? {
                return Err(CcError::plain(code::TOPO_SET_NAME_EXISTS));
            }
            set.bk_set_name = name;
        }
        let attrs = set.attrs.as_object_mut().ok_or_else(CcError::json)?;
        for (k, v) in changes {
            attrs.insert(k, v);
        }
        stamp_update(attrs, &ctx, &clock::format_ms(ctx.now_ms));
        Ok(tx.put_set(&set)?)
    })?;
    Ok(Data::null())
}

/// Refuses to delete a module that holds hosts or service instances (1101030).
fn check_empty(tx: &WriteTx, m: &Module) -> Result<(), CcError> {
    if !m.hosts.is_empty()
        || !tx
            .service_instance_ids_of_module(m.bk_module_id)?
            .is_empty()
    {
        return Err(CcError::plain(code::TOPO_HAS_HOST));
    }
    Ok(())
}

/// `delete_set` (`batch` false: the path's set) and `batch_delete_set` (`{"delete":
/// {"inst_ids": […]}}`): spec topology 8.3. `data` is null.
pub fn delete_sets(_ctx: &Ctx, store: &Store, input: &Input, batch: bool) -> Result<Data, CcError> {
    let biz = path_int(input, "bk_biz_id", "business id")?;
    let ids = if batch {
        let obj = decode::body_object(&input.body)?;
        let del = decode::object(obj, "delete")?;
        match del.and_then(|d| decode::get(d, "inst_ids")) {
            None | Some(Value::Null) => return Err(CcError::plain(code::DB_SELECT)),
            Some(Value::Array(a)) => {
                let mut ids = Vec::with_capacity(a.len());
                for v in a {
                    ids.push(decode::as_int(v)?);
                }
                ids
            }
            Some(_) => return Err(CcError::json()),
        }
    } else {
        vec![path_int(input, "bk_set_id", "set id")?]
    };
    if ids.len() > MAX_SETS_PER_DELETE {
        return Err(CcError::exceed_limit(
            "inst_ids",
            MAX_SETS_PER_DELETE as i64,
        ));
    }
    let ids = distinct(&ids);
    store.write(move |tx| {
        let mut sets = Vec::new();
        for &id in &ids {
            if let Some(s) = tx.set(id)? {
                if s.default != 0 {
                    return Err(CcError::plain(code::TOPO_BUILT_IN_READ_ONLY));
                }
                if s.bk_biz_id == biz {
                    sets.push(s);
                }
            }
        }
        let mut modules = Vec::new();
        for s in &sets {
            for mid in tx.module_ids_of_set(s.bk_set_id)? {
                if let Some(m) = tx.module(mid)? {
                    check_empty(tx, &m)?;
                    modules.push(mid);
                }
            }
        }
        for mid in modules {
            tx.delete::<Module>(mid)?;
        }
        for s in sets {
            tx.delete::<Set>(s.bk_set_id)?;
        }
        Ok(())
    })?;
    Ok(Data::null())
}

/// `create_module`: spec topology 8.4. `data` is the stored module.
pub fn create_module(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let biz = path_int(input, "bk_biz_id", "bk_biz_id")?;
    let set_id = path_int(input, "bk_set_id", "bk_set_id")?;
    let body = fields(input)?;
    let int_of = |key: &str| -> Result<Option<i64>, CcError> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| CcError::invalid(key)),
        }
    };
    let st_id = int_of("service_template_id")?.unwrap_or(0);
    let cat_given = int_of("service_category_id")?.filter(|c| *c != 0);
    let has_default = body.contains_key("default");
    let parent = body.get("bk_parent_id").cloned();
    let name = body.get("bk_module_name").cloned();
    let mut attrs = known(Obj::Module, body, false);
    for k in Module::TYPED {
        attrs.remove(k);
    }
    attrs.remove("bk_parent_id");
    attrs.insert("set_template_id".into(), json!(0));
    attrs.insert("host_apply_enabled".into(), json!(false));
    let ctx = ctx.clone();
    let module = store.write(move |tx| {
        let set = tx
            .set(set_id)?
            .ok_or_else(|| CcError::invalid_param("bk_set_id"))?;
        if set.get("set_template_id").as_i64().unwrap_or(0) != 0 {
            return Err(CcError::plain(code::TOPO_SET_TEMPLATE_MODULES));
        }
        if set.bk_biz_id != biz {
            return Err(CcError::invalid_param("bk_biz_id/bk_set_id"));
        }
        let mut template_name = None;
        let category = if st_id != 0 {
            let st = tx
                .service_template(st_id)?
                .filter(|t| t.bk_biz_id == biz)
                .ok_or_else(|| CcError::invalid("service_template_id"))?;
            if cat_given.is_some_and(|c| c != st.service_category_id) {
                return Err(CcError::plain(code::CATEGORY_TEMPLATE_MISMATCH));
            }
            template_name = Some(st.name);
            st.service_category_id
        } else if let Some(c) = cat_given {
            match tx.service_category(c)? {
                Some(cat) if cat.bk_biz_id == 0 || cat.bk_biz_id == biz => c,
                _ => return Err(CcError::invalid("service_category_id")),
            }
        } else {
            rules::DEFAULT_SERVICE_CATEGORY
        };
        if let Some(p) = &parent
            && p.as_i64() != Some(set_id)
        {
            return Err(CcError::invalid("bk_parent_id"));
        }
        if has_default {
            // bk-cmdb asserts an `int` on the decoded number and panics.
            return Err(CcError::with(code::INTERNAL, "topo"));
        }
        if parent.is_none() {
            return Err(CcError::invalid_param("bk_parent_id"));
        }
        if biz == 0 || tx.business(biz)?.is_none() {
            return Err(CcError::invalid_param("bk_biz_id"));
        }
        let name = match (template_name, name) {
            (Some(t), _) => t,
            (None, None) => return Err(CcError::with(code::PARAMS_NEED_SET, "bk_module_name")),
            (None, Some(Value::String(s))) => topo_name(&s, "bk_module_name").map_err(wrapped)?,
            (None, Some(_)) => return Err(wrapped(CcError::invalid("bk_module_name"))),
        };
        if module_name_taken(tx, set_id, &name, 0)? {
            return Err(module_dup(biz, set_id, &name));
        }
        fill_new(&ctx, Obj::Module, &mut attrs);
        let m = Module {
            bk_module_id: tx.next_id(Kind::Module)?,
            bk_biz_id: biz,
            bk_set_id: set_id,
            bk_module_name: name,
            service_template_id: st_id,
            service_category_id: category,
            default: 0,
            hosts: Vec::new(),
            attrs: Value::Object(attrs),
        };
        tx.put_module(&m)?;
        Ok(m)
    })?;
    Ok(Data::of(&module.to_map()))
}

/// The module of a path, refusing built-in ones (1101098) and absent ones (1199019).
fn path_module(tx: &WriteTx, biz: i64, set: i64, id: i64) -> Result<Option<Module>, CcError> {
    let m = tx.module(id)?;
    if m.as_ref().is_some_and(|m| m.default != 0 && m.default != 4) {
        return Err(CcError::plain(code::TOPO_BUILT_IN_READ_ONLY));
    }
    Ok(m.filter(|m| m.bk_biz_id == biz && m.bk_set_id == set))
}

/// `update_module`: spec topology 8.5. `data` is null.
pub fn update_module(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let biz = path_int(input, "bk_biz_id", "bk_biz_id")?;
    let set_id = path_int(input, "bk_set_id", "bk_set_id")?;
    let id = path_int(input, "bk_module_id", "bk_module_id")?;
    let body = fields(input)?;
    let ctx = ctx.clone();
    store.write(move |tx| {
        let mut m =
            path_module(tx, biz, set_id, id)?.ok_or_else(|| CcError::plain(code::NOT_FOUND))?;
        for (key, now) in [
            (
                "set_template_id",
                m.get("set_template_id").as_i64().unwrap_or(0),
            ),
            ("service_template_id", m.service_template_id),
        ] {
            if let Some(v) = body.get(key)
                && !v.is_null()
                && v.as_i64() != Some(now)
            {
                return Err(CcError::with(code::MODIFY_FIELD_FORBIDDEN, key));
            }
        }
        let cat = match body.get("service_category_id") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .ok_or_else(|| wrapped(CcError::invalid("service_category_id")))?,
            ),
        };
        let name = match body.get("bk_module_name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() && m.service_template_id != 0 => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(wrapped(CcError::invalid("bk_module_name"))),
        };
        if m.service_template_id != 0 {
            if cat.is_some_and(|c| c != m.service_category_id) {
                return Err(CcError::plain(code::TOPO_UPDATE_TEMPLATE_CATEGORY));
            }
            if name.as_ref().is_some_and(|n| *n != m.bk_module_name) {
                return Err(CcError::plain(code::TOPO_UPDATE_TEMPLATE_NAME));
            }
        } else if let Some(c) = cat
            && c != m.service_category_id
        {
            match tx.service_category(c)? {
                Some(x) if x.bk_biz_id == 0 || x.bk_biz_id == biz => m.service_category_id = c,
                _ => return Err(wrapped(CcError::invalid("service_category_id"))),
            }
        }
        if let Some(name) = name {
            let name = topo_name(&name, "bk_module_name").map_err(wrapped)?;
            if name != m.bk_module_name && module_name_taken(tx, set_id, &name, id)? {
                return Err(module_dup(biz, set_id, &name));
            }
            m.bk_module_name = name;
        }
        let mut changes = known(Obj::Module, body.clone(), true);
        for k in Module::TYPED {
            changes.remove(k);
        }
        for k in ["bk_parent_id", "set_template_id", "host_apply_enabled"] {
            changes.remove(k);
        }
        let attrs = m.attrs.as_object_mut().ok_or_else(CcError::json)?;
        for (k, v) in changes {
            attrs.insert(k, v);
        }
        stamp_update(attrs, &ctx, &clock::format_ms(ctx.now_ms));
        Ok(tx.put_module(&m)?)
    })?;
    Ok(Data::null())
}

/// `delete_module`: spec topology 8.5. A missing module is a success; `data` is null.
pub fn delete_module(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let biz = path_int(input, "bk_biz_id", "bk_biz_id")?;
    let set_id = path_int(input, "bk_set_id", "bk_set_id")?;
    let id = path_int(input, "bk_module_id", "bk_module_id")?;
    store.write(move |tx| {
        if let Some(set) = tx.set(set_id)?
            && set.get("set_template_id").as_i64().unwrap_or(0) != 0
        {
            return Err(CcError::plain(code::TOPO_SET_TEMPLATE_MODULES));
        }
        let Some(m) = path_module(tx, biz, set_id, id)? else {
            return Ok(());
        };
        check_empty(tx, &m)?;
        Ok(tx.delete::<Module>(id)?)
    })?;
    Ok(Data::null())
}
