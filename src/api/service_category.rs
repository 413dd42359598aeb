//! Service categories (events-sync spec 3; bk-cmdb proc_server `servicecategory.go`,
//! coreservice `process/service_category.go`): `list_service_category`, the categories of a
//! business and the built-in ones (`bk_biz_id` 0) sorted by name, and
//! `create_service_category`, `update_service_category`, `delete_service_category`, each one
//! transaction.

use super::{Ctx, Data, Input, Listing};
use crate::domain::decode;
use crate::domain::page::{self, SortValue};
use crate::domain::service_category::{Cat, create_clash, update_clash, valid_name};
use crate::error::{CcError, code};
use crate::store::records::{Kind, Module, ServiceCategory, ServiceTemplate};
use crate::store::{Store, WriteTx};
use serde::Serialize;

/// bk-cmdb's `ServiceCategory` as it answers it.
#[derive(Serialize)]
struct CategoryOut {
    bk_biz_id: i64,
    id: i64,
    name: String,
    bk_root_id: i64,
    bk_parent_id: i64,
    bk_supplier_account: String,
    /// Only bk-cmdb's migrations create categories of business 0, and all of them built in.
    is_built_in: bool,
}

impl CategoryOut {
    fn of(c: ServiceCategory, supplier: &str) -> CategoryOut {
        CategoryOut {
            bk_biz_id: c.bk_biz_id,
            id: c.id,
            is_built_in: c.bk_biz_id == 0,
            name: c.name,
            bk_root_id: c.bk_root_id,
            bk_parent_id: c.bk_parent_id,
            bk_supplier_account: supplier.to_string(),
        }
    }
}

fn cat(c: &ServiceCategory) -> Cat<'_> {
    Cat {
        id: c.id,
        name: &c.name,
        bk_parent_id: c.bk_parent_id,
        bk_biz_id: c.bk_biz_id,
    }
}

fn all_categories(tx: &WriteTx) -> Result<Vec<ServiceCategory>, CcError> {
    Ok(tx.select::<ServiceCategory>(|_| true)?)
}

/// `create_service_category`: `{bk_biz_id, name, bk_parent_id}`; the new record.
pub fn create(ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let name = decode::string(obj, "name")?;
    let parent = decode::int(obj, "bk_parent_id")?;
    let c = store.write(move |tx| {
        if !valid_name(&name) {
            return Err(CcError::invalid("name"));
        }
        if biz == 0 || tx.business(biz)?.is_none() {
            return Err(CcError::invalid("bk_biz_id"));
        }
        let mut root = 0;
        if parent > 0 {
            // bk-cmdb names the wrong field here; the parent's business and depth are not
            // looked at.
            let p = tx
                .service_category(parent)?
                .ok_or_else(|| CcError::invalid("bk_biz_id"))?;
            root = p.bk_root_id;
        }
        let all = all_categories(tx)?;
        if create_clash(all.iter().map(cat), biz, parent, &name) {
            return Err(CcError::with(code::CATEGORY_NAME_DUPLICATED, name.clone()));
        }
        let id = tx.next_id(Kind::ServiceCategory)?;
        let c = ServiceCategory {
            id,
            name: name.clone(),
            bk_parent_id: parent,
            // A root, a negative parent or a parent without a root: its own root.
            bk_root_id: if root == 0 { id } else { root },
            bk_biz_id: biz,
        };
        tx.put_service_category(&c)?;
        Ok(c)
    })?;
    Ok(Data::of(&CategoryOut::of(c, &ctx.supplier)))
}

/// `update_service_category`: `{id, name}`, found by id in any business; only the name
/// changes. The full record.
pub fn update(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let id = decode::int(obj, "id")?;
    let name = decode::string(obj, "name")?;
    let (c, supplier) = store.write(move |tx| {
        let mut c = tx
            .service_category(id)?
            .ok_or_else(|| CcError::plain(code::NOT_FOUND))?;
        if !valid_name(&name) {
            return Err(CcError::invalid("name"));
        }
        if c.bk_biz_id == 0 {
            return Err(CcError::plain(code::BUILT_IN_FORBIDDEN));
        }
        let all = all_categories(tx)?;
        if update_clash(all.iter().map(cat), cat(&c), &name) {
            return Err(CcError::with(code::CATEGORY_NAME_DUPLICATED, name.clone()));
        }
        c.name = name.clone();
        tx.put_service_category(&c)?;
        let supplier = tx
            .setting("supplier_account")?
            .unwrap_or_else(|| "0".into());
        Ok((c, supplier))
    })?;
    Ok(Data::of(&CategoryOut::of(c, &supplier)))
}

/// `delete_service_category`: `{id}`. Refused while it has children or a service template
/// or module (of any business) uses it; built-in categories go too when unused, as in
/// bk-cmdb.
pub fn delete(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let id = decode::int(obj, "id")?;
    store.write(move |tx| {
        if tx.service_category(id)?.is_none() {
            return Err(CcError::plain(code::NOT_FOUND));
        }
        if tx.any::<ServiceCategory>(|c| c.bk_parent_id == id)? {
            return Err(CcError::plain(code::HAS_CHILD_NODE));
        }
        if tx.any::<ServiceTemplate>(|st| st.service_category_id == id)?
            || tx.any::<Module>(|m| m.service_category_id == id)?
        {
            return Err(CcError::plain(code::REFERENCED_RECORD));
        }
        Ok(tx.delete_service_category(id)?)
    })?;
    Ok(Data::null())
}

/// `list_service_category`: `{count, info}`; `bk_biz_id` is not checked (0 lists only the
/// built-in categories).
pub fn list(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let (found, supplier) = store.read::<_, CcError>(|tx| {
        let found = tx.select::<ServiceCategory>(|c| c.bk_biz_id == biz || c.bk_biz_id == 0)?;
        let supplier = tx
            .setting("supplier_account")?
            .unwrap_or_else(|| "0".into());
        Ok((found, supplier))
    })?;
    let keys = page::parse_sort("name")?;
    let sorted = page::sort(found, &keys, |c, _| SortValue::Str(c.name.clone()));
    let info: Vec<CategoryOut> = sorted
        .into_iter()
        .map(|c| CategoryOut::of(c, &supplier))
        .collect();
    // Go's nil slice: `info` is null when there is no category at all.
    Ok(Data::of(&Listing {
        count: info.len(),
        info: (!info.is_empty()).then_some(info),
    }))
}
