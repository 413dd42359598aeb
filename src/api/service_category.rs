//! `list_service_category` (bk-cmdb proc_server `servicecategory.go`, coreservice
//! `process/service_category.go`): the categories of a business and the built-in ones
//! (`bk_biz_id` 0), sorted by name.

use super::{Ctx, Data, Input};
use crate::domain::decode;
use crate::domain::page::{self, SortValue};
use crate::error::CcError;
use crate::store::Store;
use crate::store::records::ServiceCategory;
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

#[derive(Serialize)]
struct Listing {
    count: usize,
    /// Go's nil slice: null when there is no category at all.
    info: Option<Vec<CategoryOut>>,
}

/// `list_service_category`: `{count, info}`; `bk_biz_id` is not checked (0 lists only the
/// built-in categories).
pub fn list(_ctx: &Ctx, store: &Store, input: &Input) -> Result<Data, CcError> {
    let obj = decode::body_object(&input.body)?;
    let biz = decode::int(obj, "bk_biz_id")?;
    let (found, supplier) = store.read(|tx| {
        let mut found: Vec<ServiceCategory> = Vec::new();
        tx.scan::<ServiceCategory>(|_, c| {
            if c.bk_biz_id == biz || c.bk_biz_id == 0 {
                found.push(c);
            }
            Ok(true)
        })?;
        let supplier = tx
            .setting("supplier_account")?
            .unwrap_or_else(|| "0".into());
        Ok((found, supplier))
    })?;
    let keys = page::parse_sort("name")?;
    let sorted = page::sort(found, &keys, |c, _| SortValue::Str(c.name.clone()));
    let info: Vec<CategoryOut> = sorted
        .into_iter()
        .map(|c| CategoryOut {
            bk_biz_id: c.bk_biz_id,
            id: c.id,
            name: c.name,
            bk_root_id: c.bk_root_id,
            bk_parent_id: c.bk_parent_id,
            bk_supplier_account: supplier.clone(),
            is_built_in: c.bk_biz_id == 0,
        })
        .collect();
    Ok(Data::of(&Listing {
        count: info.len(),
        info: (!info.is_empty()).then_some(info),
    }))
}
