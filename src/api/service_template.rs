//! Service templates: `create_service_template`, `update_service_template`,
//! `get_service_template`, `list_service_template` and `delete_service_template` (spec 4.1, 4.4;
//! bk-cmdb proc_server `servicetemplate.go` and coreservice `process/service_template.go`).

use super::{Ctx, Data, Input, Listing, path_id};
use crate::domain::decode;
use crate::domain::page::{self, Page, SortValue};
use crate::domain::service_template::{parse_int, valid_name};
use crate::error::{CcError, code};
use crate::store::records::{Kind, Module, ServiceCategory, ServiceInstance, ServiceTemplate};
use crate::store::{Store, WriteTx};
use regex::RegexBuilder;
use serde_json::Value;
use std::collections::BTreeSet;

/// The category `id`, checked as a template's category must be: known (else `'field'`), and a
/// leaf (else 1113032).
fn leaf_category(tx: &WriteTx, id: i64, field: &str) -> Result<ServiceCategory, CcError> {
    let cat = tx
        .service_category(id)?
        .ok_or_else(|| CcError::invalid(field))?;
    if tx.any::<ServiceCategory>(|c| c.bk_parent_id == id)? {
        return Err(CcError::plain(code::ONLY_LEAF_CATEGORY));
    }
    Ok(cat)
}

/// `create_service_template`.
pub fn create(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let name = decode::string(obj, "name")?;
    let category = decode::int(obj, "service_category_id")?;
    let host_apply_enabled = decode::boolean(obj, "host_apply_enabled")?;
    let ctx = ctx.clone();
    let st = store.write(move |tx| {
        let name = valid_name(&name).ok_or_else(|| CcError::invalid("name"))?;
        if biz == 0 || tx.business(biz)?.is_none() {
            return Err(CcError::invalid("bk_biz_id"));
        }
        let cat = tx
            .service_category(category)?
            .ok_or_else(|| CcError::invalid("service_category_id"))?;
        leaf_category(tx, cat.id, "service_category_id")?;
        if cat.bk_biz_id != biz && cat.bk_biz_id != 0 {
            return Err(CcError::invalid("bk_biz_id"));
        }
        if tx.service_template_named(biz, name)?.is_some() {
            return Err(CcError::with(code::DUPLICATE_ITEM, "name"));
        }
        let st = ServiceTemplate {
            bk_biz_id: biz,
            id: tx.next_id(Kind::ServiceTemplate)?,
            name: name.to_string(),
            service_category_id: category,
            creator: ctx.user.clone(),
            modifier: ctx.user.clone(),
            create_time: ctx.now_ms,
            last_time: ctx.now_ms,
            bk_supplier_account: ctx.supplier.clone(),
            host_apply_enabled,
        };
        tx.put_service_template(&st)?;
        Ok(st)
    })?;
    Ok(Data::of(&st))
}

/// `update_service_template`: name and category only. As in bk-cmdb, `bk_biz_id` is not
/// looked at, `modifier` and `last_time` are left as they were, and the modules built from the
/// template follow its new name and category.
pub fn update(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    decode::int(obj, "bk_biz_id")?;
    let id = decode::int(obj, "id")?;
    let name = decode::string(obj, "name")?;
    let category = decode::int(obj, "service_category_id")?;
    let st = store.write(move |tx| {
        let mut st = tx
            .service_template(id)?
            .ok_or_else(|| CcError::plain(code::NOT_FOUND))?;
        if category > 0 {
            st.service_category_id = category;
            let cat = tx
                .service_category(category)?
                .ok_or_else(|| CcError::invalid("service_category_id"))?;
            if cat.bk_biz_id != 0 && cat.bk_biz_id != st.bk_biz_id {
                return Err(CcError::invalid("service_category_id"));
            }
            leaf_category(tx, category, "service_category_id")?;
        }
        let mut modules = Vec::new();
        tx.scan::<Module, CcError>(|_, m| {
            if m.service_template_id == id {
                modules.push(m);
            }
            Ok(true)
        })?;
        let mut rename_modules = false;
        if !name.is_empty() && st.name != name {
            let taken = |tx: &WriteTx, name: &str| -> Result<bool, CcError> {
                Ok(tx
                    .service_template_named(st.bk_biz_id, name)?
                    .is_some_and(|other| other != id))
            };
            if taken(tx, &name)? {
                return Err(CcError::with(code::DUPLICATE_ITEM, "name"));
            }
            // bk-cmdb checks the untrimmed name; the trimmed one then hits MongoDB's unique
            // index on (bk_biz_id, name) at write time: 1199020.
            if taken(tx, name.trim_matches(' '))? {
                return Err(CcError::plain(code::DB_UPDATE));
            }
            if !modules.is_empty() {
                let sets: BTreeSet<i64> = modules.iter().map(|m| m.bk_set_id).collect();
                let clash = tx.any::<Module>(|m| {
                    m.bk_biz_id == st.bk_biz_id
                        && m.bk_module_name == name
                        && sets.contains(&m.bk_set_id)
                        && m.service_template_id != id
                })?;
                if clash {
                    return Err(CcError::with(code::DUPLICATE_ITEM, "name"));
                }
                rename_modules = true;
            }
            st.name = name.clone();
        }
        st.name = valid_name(&st.name)
            .ok_or_else(|| CcError::invalid("name"))?
            .to_string();
        tx.put_service_template(&st)?;
        let recategorise =
            category != 0 && modules.iter().any(|m| m.service_category_id != category);
        if rename_modules || recategorise {
            for mut m in modules {
                if rename_modules {
                    m.bk_module_name = st.name.clone();
                }
                if recategorise {
                    m.service_category_id = st.service_category_id;
                }
                tx.put_module(&m)?;
            }
        }
        Ok(st)
    })?;
    Ok(Data::of(&st))
}

/// `get_service_template`: `GET …/find/proc/service_template/{service_template_id}`.
pub fn get(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let raw = path_id(input, "service_template_id")?;
    // bk-cmdb passes its argument list as one value: the text shows it in brackets.
    let id = parse_int(&raw)
        .map_err(|e| CcError::with(code::PARAMS_INVALID, format!("[service_template_id {e}]")))?;
    let st = store.read(|tx| tx.service_template(id))?;
    let st = st.ok_or_else(|| CcError::plain(code::NOT_FOUND))?;
    Ok(Data::of(&st))
}

/// A service template's value for a sort field (times compare as dates).
fn sort_value(st: &ServiceTemplate, field: &str) -> SortValue {
    match field {
        "create_time" => SortValue::Date(st.create_time),
        "last_time" => SortValue::Date(st.last_time),
        _ => SortValue::at(&serde_json::to_value(st).unwrap_or(Value::Null), field),
    }
}

/// bk-cmdb's `SpecialCharChange`: escapes `.()\|[]*{}^$?` (not `+`), each distinct character
/// replaced everywhere in order of first appearance.
fn special_char_change(s: &str) -> String {
    let mut out = s.to_string();
    let mut done = Vec::new();
    for c in s.chars().filter(|c| ".()\\|[]*{}^$?".contains(*c)) {
        if !done.contains(&c) {
            done.push(c);
            out = out.replace(c, &format!("\\{c}"));
        }
    }
    out
}

/// `list_service_template`.
pub fn list(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let category = decode::int(obj, "service_category_id")?;
    let page = Page::decode(obj, "page")?;
    let search = decode::string(obj, "search")?;
    let is_exact = decode::boolean(obj, "is_exact")?;
    let ids = decode::int_array(obj, "service_template_ids")?;
    if page.is_illegal() {
        return Err(CcError::plain(code::PAGE_LIMIT_EXCEEDED));
    }
    let keys = page::parse_sort(page.sort_or("-id"))?;
    let pattern = if search.is_empty() || is_exact {
        None
    } else {
        // MongoDB refuses a pattern it cannot compile; bk-cmdb answers 1199017.
        Some(
            RegexBuilder::new(&special_char_change(&search))
                .case_insensitive(true)
                .build()
                .map_err(|_| CcError::plain(code::DB_SELECT))?,
        )
    };
    let found = store.read::<_, CcError>(|tx| {
        let mut categories = None;
        if category > 0 {
            let all = tx.select::<ServiceCategory>(|c| c.bk_biz_id == biz || c.bk_biz_id == 0)?;
            let mut set = vec![category];
            loop {
                let before = set.len();
                for c in &all {
                    if c.bk_parent_id != 0 && set.contains(&c.bk_parent_id) && !set.contains(&c.id)
                    {
                        set.push(c.id);
                    }
                }
                if set.len() == before {
                    break;
                }
            }
            categories = Some(set);
        }
        let mut found = Vec::new();
        tx.scan::<ServiceTemplate, CcError>(|_, st| {
            let keep = (biz == 0 || st.bk_biz_id == biz)
                && categories
                    .as_ref()
                    .is_none_or(|set| set.contains(&st.service_category_id))
                && (ids.is_empty() || ids.contains(&st.id))
                && (search.is_empty()
                    || if is_exact {
                        st.name == search
                    } else {
                        pattern.as_ref().is_some_and(|p| p.is_match(&st.name))
                    });
            if keep {
                found.push(st);
            }
            Ok(true)
        })?;
        Ok(found)
    })?;
    let (count, info) = page.count_and_window(found, &keys, sort_value);
    Ok(Data::of(&Listing { count, info }))
}

/// `delete_service_template`: refused with 1108030 while the template is missing or still used
/// by a module or a service instance (bk-cmdb). Its process templates are deleted with it:
/// bk-cmdb answers the same success but leaves them behind, pointing at a template that is gone.
pub fn delete(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    decode::int(obj, "bk_biz_id")?;
    let id = decode::int(obj, "service_template_id")?;
    store.write(move |tx| {
        let refused = || CcError::plain(code::PROC_DELETE_SERVICE_TEMPLATE);
        if tx.service_template(id)?.is_none() {
            return Err(refused());
        }
        if tx.any::<ServiceInstance>(|si| si.service_template_id == id)?
            || tx.any::<Module>(|m| m.service_template_id == id)?
        {
            return Err(refused());
        }
        for pt in tx.process_template_ids_of(id)? {
            tx.delete_process_template(pt)?;
        }
        Ok(tx.delete_service_template(id)?)
    })?;
    Ok(Data::null())
}

#[cfg(test)]
mod tests {
    use super::special_char_change;

    #[test]
    fn special_chars_are_escaped_like_bk_cmdb() {
        assert_eq!(special_char_change("a.b+c"), r"a\.b+c");
        assert_eq!(special_char_change("(x)"), r"\(x\)");
        assert_eq!(special_char_change("a.\\"), r"a\\.\\");
    }
}
