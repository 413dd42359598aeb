//! One file per resource: decode the request, call the domain, run the store transaction,
//! shape `data`. Nothing here knows HTTP; [`Op`] names an operation and [`call`] runs it.

pub mod host;
pub mod host_write;
pub mod object_attribute;
pub mod process_instance;
pub mod process_lifecycle;
pub mod process_related;
pub mod process_template;
pub mod service_category;
pub mod service_instance;
pub mod service_template;
pub mod streamed;
pub mod template_sync;
pub mod topology;
pub mod topology_write;
pub mod watch;

use crate::domain::decode;
use crate::error::code;
use crate::error::{CcError, Lang};
use crate::store::{ProcKey, Store, StoreError};
use serde::Serialize;
use serde_json::Value;

/// A store failure as bk-cmdb answers it: a failed read is 1199017, a failed write 1199018
/// (`Failed to query data`, `New data failed`), an exhausted sequence 1199058. The two bugs of
/// a caller the store refuses (a unique key already held, a new id in use) keep 1199018 with a
/// text of their own, as no bk-cmdb error fits them.
impl From<StoreError> for CcError {
    fn from(e: StoreError) -> CcError {
        match e {
            StoreError::Read => CcError::plain(code::DB_SELECT),
            StoreError::Write => CcError::plain(code::DB_INSERT),
            StoreError::IdsExhausted => CcError::plain(code::GENERATE_RECORD_ID),
            StoreError::KeyHeld => CcError::raw(code::DB_INSERT, "uniqueness key already held"),
            StoreError::IdInUse => CcError::raw(code::DB_INSERT, "a new process id is in use"),
        }
    }
}

/// bk-cmdb's 1199014 for a process uniqueness key already held: its `%s` is MongoDB's `dup key`
/// rendering of the key.
pub(crate) fn duplicate(key: &ProcKey) -> CcError {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let text = match key {
        ProcKey::Name { si, name } => {
            format!(" service_instance_id: {si}, bk_process_name: {} ", q(name))
        }
        ProcKey::Func { si, func, regex } => format!(
            " service_instance_id: {si}, bk_func_name: {}, bk_start_param_regex: {} ",
            q(func),
            q(regex)
        ),
    };
    CcError::with(code::DUPLICATE_ITEM, text)
}

/// Who asks, in which language, under which request id, and when.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub user: String,
    pub supplier: String,
    pub lang: Lang,
    pub rid: String,
    /// The request's time, milliseconds since the epoch.
    pub now_ms: i64,
}

/// A decoded request: its JSON body (`Null` when empty) and the id from the path, if any.
pub struct Input {
    pub body: Value,
    pub path_id: Option<String>,
    /// Every path parameter of a native or gateway route: (name, value), in path order.
    pub params: Vec<(&'static str, String)>,
    /// The raw query string (without `?`).
    pub query: String,
}

impl Input {
    /// A body alone (no path parameters, no query).
    pub fn body(body: Value) -> Input {
        Input {
            body,
            path_id: None,
            params: Vec::new(),
            query: String::new(),
        }
    }
}

/// The id a route names: from the native path, or from `key` in the ESB body or query.
pub(crate) fn path_id(input: &Input, key: &str) -> Result<String, CcError> {
    if let Some(id) = &input.path_id {
        return Ok(id.clone());
    }
    let obj = decode::body_object(&input.body)?;
    Ok(match decode::get(obj, key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    })
}

/// The size of a request's list as bk-cmdb checks it: none is 1199010 naming `field`, more
/// than `max` is 1199035 naming `what`.
pub(crate) fn one_to_max(n: usize, field: &str, what: &str, max: usize) -> Result<(), CcError> {
    if n == 0 {
        return Err(CcError::with(crate::error::code::PARAMS_NEED_SET, field));
    }
    if n > max {
        return Err(CcError::exceed_limit(what, max as i64));
    }
    Ok(())
}

/// `{count, info}`, the `data` of the list APIs (`info` is a list, or `None` where bk-cmdb
/// answers a nil slice as null).
#[derive(Serialize)]
pub(crate) struct Listing<I> {
    pub count: usize,
    pub info: I,
}

/// The `data` of a success answer, already serialised (struct fields keep their order).
pub struct Data(pub String);

impl Data {
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Data {
        Data(serde_json::to_string(value).unwrap_or_else(|_| "null".into()))
    }
    pub fn null() -> Data {
        Data("null".into())
    }
}

/// Every operation cmdb-lite serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    CreateProcessInstance,
    ListProcessInstance,
    CreateServiceTemplate,
    UpdateServiceTemplate,
    GetServiceTemplate,
    ListServiceTemplate,
    DeleteServiceTemplate,
    CreateProcTemplates,
    ListProcTemplate,
    GetProcTemplate,
    UpdateProcTemplate,
    DeleteProcTemplates,
    UpdateProcessInstance,
    DeleteProcessInstance,
    ListProcessDetailByIds,
    CreateServiceInstance,
    ListServiceInstance,
    ListServiceInstanceDetail,
    ListServiceInstanceByHost,
    DeleteServiceInstance,
    AddLabelForServiceInstance,
    RemoveLabelFromServiceInstance,
    ListServiceCategory,
    ResourceWatch,
    SearchBusiness,
    SearchSet,
    SearchModule,
    SearchBizInstTopo,
    GetBizInternalModule,
    SearchCloudArea,
    GetMainlineObjectTopo,
    FindSetBatch,
    FindModuleBatch,
    FindModuleWithRelation,
    FindTopoNodePaths,
    ListBizHosts,
    ListHostsWithoutBiz,
    ListBizHostsTopo,
    FindHostTopoRelation,
    FindHostBizRelations,
    FindHostByServiceTemplate,
    GetHostBaseInfo,
    ListProcessRelatedInfo,
    SearchObjectAttribute,
    CreateSet,
    UpdateSet,
    DeleteSet,
    BatchDeleteSet,
    CreateModule,
    UpdateModule,
    DeleteModule,
    AddHostToBusinessIdle,
    TransferHostModule,
    TransferHostToIdlemodule,
    CreateServiceCategory,
    UpdateServiceCategory,
    DeleteServiceCategory,
    ListServiceTemplateDifference,
    SyncServiceTemplate,
    ListServiceTemplateSyncStatus,
}

/// Runs `op`.
pub fn call(op: Op, ctx: &Ctx, store: &Store, input: Input) -> Result<Data, CcError> {
    match op {
        Op::CreateProcessInstance => process_instance::create(ctx, store, input),
        Op::ListProcessInstance => process_instance::list(ctx, store, &input),
        Op::CreateServiceTemplate => service_template::create(ctx, store, &input),
        Op::UpdateServiceTemplate => service_template::update(ctx, store, &input),
        Op::GetServiceTemplate => service_template::get(ctx, store, &input),
        Op::ListServiceTemplate => service_template::list(ctx, store, &input),
        Op::DeleteServiceTemplate => service_template::delete(ctx, store, &input),
        Op::CreateProcTemplates => process_template::create(ctx, store, &input),
        Op::ListProcTemplate => process_template::list(ctx, store, &input),
        Op::GetProcTemplate => process_template::get(ctx, store, &input),
        Op::UpdateProcTemplate => process_template::update(ctx, store, &input),
        Op::DeleteProcTemplates => process_template::delete(ctx, store, &input),
        Op::UpdateProcessInstance => process_lifecycle::update(ctx, store, &input),
        Op::DeleteProcessInstance => process_lifecycle::delete(ctx, store, &input),
        Op::ListProcessDetailByIds => process_lifecycle::detail_by_ids(ctx, store, &input),
        Op::CreateServiceInstance => service_instance::create(ctx, store, &input),
        Op::ListServiceInstance => service_instance::list(ctx, store, &input),
        Op::ListServiceInstanceDetail => service_instance::list_detail(ctx, store, &input),
        Op::ListServiceInstanceByHost => service_instance::list_by_host(ctx, store, &input),
        Op::DeleteServiceInstance => service_instance::delete(ctx, store, &input),
        Op::AddLabelForServiceInstance => service_instance::add_labels(ctx, store, &input),
        Op::RemoveLabelFromServiceInstance => service_instance::remove_labels(ctx, store, &input),
        Op::ListServiceCategory => service_category::list(ctx, store, &input),
        // The HTTP edge serves watches itself (`watch::serve`, permits released while waiting);
        // called here, a watch waits the default time under the caller's permit.
        Op::ResourceWatch => watch::serve(
            ctx,
            store,
            &input,
            std::time::Duration::from_secs(crate::limits::WATCH_TIMEOUT_SECS),
            &|f| f(),
        ),
        Op::SearchBusiness => topology::search_business(ctx, store, &input),
        Op::SearchSet => topology::search_set(ctx, store, &input),
        Op::SearchModule => topology::search_module(ctx, store, &input),
        Op::SearchBizInstTopo => topology::search_biz_inst_topo(ctx, store, &input),
        Op::GetBizInternalModule => topology::get_biz_internal_module(ctx, store, &input),
        Op::SearchCloudArea => topology::search_cloud_area(ctx, store, &input),
        Op::GetMainlineObjectTopo => topology::get_mainline_object_topo(ctx, store, &input),
        Op::FindSetBatch => topology::find_set_batch(ctx, store, &input),
        Op::FindModuleBatch => topology::find_module_batch(ctx, store, &input),
        Op::FindModuleWithRelation => topology::find_module_with_relation(ctx, store, &input),
        Op::FindTopoNodePaths => topology::find_topo_node_paths(ctx, store, &input),
        Op::ListBizHosts => host::list_biz_hosts(ctx, store, &input),
        Op::ListHostsWithoutBiz => host::list_hosts_without_biz(ctx, store, &input),
        Op::ListBizHostsTopo => host::list_biz_hosts_topo(ctx, store, &input),
        Op::FindHostTopoRelation => host::find_host_topo_relation(ctx, store, &input),
        Op::FindHostBizRelations => host::find_host_biz_relations(ctx, store, &input),
        Op::FindHostByServiceTemplate => host::find_host_by_service_template(ctx, store, &input),
        Op::GetHostBaseInfo => host::get_host_base_info(ctx, store, &input),
        Op::ListProcessRelatedInfo => process_related::list(ctx, store, &input),
        Op::SearchObjectAttribute => object_attribute::search(ctx, store, &input),
        Op::CreateSet => topology_write::create_set(ctx, store, &input),
        Op::UpdateSet => topology_write::update_set(ctx, store, &input),
        Op::DeleteSet => topology_write::delete_sets(ctx, store, &input, false),
        Op::BatchDeleteSet => topology_write::delete_sets(ctx, store, &input, true),
        Op::CreateModule => topology_write::create_module(ctx, store, &input),
        Op::UpdateModule => topology_write::update_module(ctx, store, &input),
        Op::DeleteModule => topology_write::delete_module(ctx, store, &input),
        Op::AddHostToBusinessIdle => host_write::add_host_to_business_idle(ctx, store, &input),
        Op::TransferHostModule => host_write::transfer_host_module(ctx, store, &input),
        Op::TransferHostToIdlemodule => host_write::transfer_host_to_idlemodule(ctx, store, &input),
        Op::CreateServiceCategory => service_category::create(ctx, store, &input),
        Op::UpdateServiceCategory => service_category::update(ctx, store, &input),
        Op::DeleteServiceCategory => service_category::delete(ctx, store, &input),
        Op::ListServiceTemplateDifference => template_sync::difference(ctx, store, &input),
        Op::SyncServiceTemplate => template_sync::sync(ctx, store, &input),
        Op::ListServiceTemplateSyncStatus => template_sync::sync_status(ctx, store, &input),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each store failure answers with bk-cmdb's code and text, in both languages.
    #[test]
    fn a_store_error_answers_as_bk_cmdb() {
        let cases = [
            (
                StoreError::Read,
                1199017,
                "Failed to query data",
                "查询数据失败",
            ),
            (
                StoreError::Write,
                1199018,
                "New data failed",
                "新加数据失败",
            ),
            (
                StoreError::IdsExhausted,
                1199058,
                "generate record id failed",
                "生成记录ID失败",
            ),
            (
                StoreError::KeyHeld,
                1199018,
                "uniqueness key already held",
                "uniqueness key already held",
            ),
            (
                StoreError::IdInUse,
                1199018,
                "a new process id is in use",
                "a new process id is in use",
            ),
        ];
        for (e, code, en, zh) in cases {
            let cc = CcError::from(e);
            assert_eq!(cc.code, code, "{e:?}");
            assert_eq!(cc.render(Lang::En), en, "{e:?}");
            assert_eq!(cc.render(Lang::Zh), zh, "{e:?}");
        }
    }

    /// A duplicate process key renders as MongoDB's `dup key`, JSON-quoted.
    #[test]
    fn a_duplicate_key_names_its_fields() {
        let name = ProcKey::Name {
            si: 7,
            name: "a\"b".into(),
        };
        assert_eq!(
            duplicate(&name).render(Lang::En),
            "duplicated instances exist, fields [ service_instance_id: 7, bk_process_name: \"a\\\"b\" ] duplicated"
        );
        let func = ProcKey::Func {
            si: 7,
            func: "f".into(),
            regex: "".into(),
        };
        let zh = duplicate(&func).render(Lang::Zh);
        assert_eq!(
            zh,
            "数据唯一性校验失败，  service_instance_id: 7, bk_func_name: \"f\", bk_start_param_regex: \"\"  重复"
        );
    }
}
