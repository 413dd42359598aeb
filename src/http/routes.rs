//! The routing table: one row per operation with its native method and path and its ESB name,
//! and the matching of the three route families (product.md section 3).

use crate::api::Op;

/// Which door a request came through; it decides the envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// bk-cmdb apiserver: `/api/v3/...`.
    Native,
    /// BlueKing API gateway: `/api/bk-cmdb/{stage}/api/v3/...`.
    Gateway,
    /// ESB component: `/api/c/compapi[/v2]/cc/{name}/`.
    Esb,
}

/// One operation's addresses.
pub struct Route {
    pub op: Op,
    pub method: &'static str,
    /// Native path; a `{…}` segment is a path parameter.
    pub path: &'static str,
    pub esb_name: &'static str,
    /// The HTTP method the ESB is called with ("GET" for the GET operations).
    pub esb_method: &'static str,
}

pub const ROUTES: &[Route] = &[
    Route {
        op: Op::CreateProcessInstance,
        method: "POST",
        path: "/api/v3/create/proc/process_instance",
        esb_name: "create_process_instance",
        esb_method: "POST",
    },
    Route {
        op: Op::ListProcessInstance,
        method: "POST",
        path: "/api/v3/findmany/proc/process_instance",
        esb_name: "list_process_instance",
        esb_method: "POST",
    },
    Route {
        op: Op::CreateServiceTemplate,
        method: "POST",
        path: "/api/v3/create/proc/service_template",
        esb_name: "create_service_template",
        esb_method: "POST",
    },
    Route {
        op: Op::UpdateServiceTemplate,
        method: "PUT",
        path: "/api/v3/update/proc/service_template",
        esb_name: "update_service_template",
        esb_method: "POST",
    },
    Route {
        op: Op::GetServiceTemplate,
        method: "GET",
        path: "/api/v3/find/proc/service_template/{service_template_id}",
        esb_name: "get_service_template",
        esb_method: "GET",
    },
    Route {
        op: Op::ListServiceTemplate,
        method: "POST",
        path: "/api/v3/findmany/proc/service_template",
        esb_name: "list_service_template",
        esb_method: "POST",
    },
    Route {
        op: Op::DeleteServiceTemplate,
        method: "DELETE",
        path: "/api/v3/delete/proc/service_template",
        esb_name: "delete_service_template",
        esb_method: "POST",
    },
    Route {
        op: Op::CreateProcTemplates,
        method: "POST",
        path: "/api/v3/createmany/proc/proc_template",
        esb_name: "batch_create_proc_template",
        esb_method: "POST",
    },
    Route {
        op: Op::ListProcTemplate,
        method: "POST",
        path: "/api/v3/findmany/proc/proc_template",
        esb_name: "list_proc_template",
        esb_method: "POST",
    },
    Route {
        op: Op::GetProcTemplate,
        method: "POST",
        path: "/api/v3/find/proc/proc_template/id/{process_template_id}",
        esb_name: "get_proc_template",
        esb_method: "POST",
    },
    Route {
        op: Op::UpdateProcTemplate,
        method: "PUT",
        path: "/api/v3/update/proc/proc_template",
        esb_name: "update_proc_template",
        esb_method: "POST",
    },
    Route {
        op: Op::DeleteProcTemplates,
        method: "DELETE",
        path: "/api/v3/deletemany/proc/proc_template",
        esb_name: "delete_proc_template",
        esb_method: "POST",
    },
    Route {
        op: Op::UpdateProcessInstance,
        method: "PUT",
        path: "/api/v3/update/proc/process_instance",
        esb_name: "update_process_instance",
        esb_method: "POST",
    },
    Route {
        op: Op::DeleteProcessInstance,
        method: "DELETE",
        path: "/api/v3/delete/proc/process_instance",
        esb_name: "delete_process_instance",
        esb_method: "POST",
    },
    Route {
        op: Op::ListProcessDetailByIds,
        method: "POST",
        path: "/api/v3/findmany/proc/process_instance/detail/biz/{bk_biz_id}",
        esb_name: "list_process_detail_by_ids",
        esb_method: "POST",
    },
    Route {
        op: Op::CreateServiceInstance,
        method: "POST",
        path: "/api/v3/create/proc/service_instance",
        esb_name: "create_service_instance",
        esb_method: "POST",
    },
    Route {
        op: Op::ListServiceInstance,
        method: "POST",
        path: "/api/v3/findmany/proc/service_instance",
        esb_name: "list_service_instance",
        esb_method: "POST",
    },
    Route {
        op: Op::ListServiceInstanceDetail,
        method: "POST",
        path: "/api/v3/findmany/proc/service_instance/details",
        esb_name: "list_service_instance_detail",
        esb_method: "POST",
    },
    Route {
        op: Op::ListServiceInstanceByHost,
        method: "POST",
        path: "/api/v3/findmany/proc/service_instance/with_host",
        esb_name: "list_service_instance_by_host",
        esb_method: "POST",
    },
    Route {
        op: Op::DeleteServiceInstance,
        method: "DELETE",
        path: "/api/v3/deletemany/proc/service_instance",
        esb_name: "delete_service_instance",
        esb_method: "POST",
    },
    Route {
        op: Op::AddLabelForServiceInstance,
        method: "POST",
        path: "/api/v3/createmany/proc/service_instance/labels",
        esb_name: "add_label_for_service_instance",
        esb_method: "POST",
    },
    Route {
        op: Op::RemoveLabelFromServiceInstance,
        method: "DELETE",
        path: "/api/v3/deletemany/proc/service_instance/labels",
        esb_name: "remove_label_from_service_instance",
        esb_method: "POST",
    },
    Route {
        op: Op::ListServiceCategory,
        method: "POST",
        path: "/api/v3/findmany/proc/service_category",
        esb_name: "list_service_category",
        esb_method: "POST",
    },
    Route {
        op: Op::SearchBusiness,
        method: "POST",
        path: "/api/v3/biz/search/{bk_supplier_account}",
        esb_name: "search_business",
        esb_method: "POST",
    },
    Route {
        op: Op::SearchSet,
        method: "POST",
        path: "/api/v3/set/search/{bk_supplier_account}/{bk_biz_id}",
        esb_name: "search_set",
        esb_method: "POST",
    },
    Route {
        op: Op::SearchModule,
        method: "POST",
        path: "/api/v3/module/search/{bk_supplier_account}/{bk_biz_id}/{bk_set_id}",
        esb_name: "search_module",
        esb_method: "POST",
    },
    Route {
        op: Op::SearchBizInstTopo,
        method: "POST",
        path: "/api/v3/find/topoinst/biz/{bk_biz_id}",
        esb_name: "search_biz_inst_topo",
        esb_method: "GET",
    },
    Route {
        op: Op::GetBizInternalModule,
        method: "GET",
        path: "/api/v3/topo/internal/{bk_supplier_account}/{bk_biz_id}",
        esb_name: "get_biz_internal_module",
        esb_method: "GET",
    },
    Route {
        op: Op::SearchCloudArea,
        method: "POST",
        path: "/api/v3/findmany/cloudarea",
        esb_name: "search_cloud_area",
        esb_method: "POST",
    },
    Route {
        op: Op::GetMainlineObjectTopo,
        method: "POST",
        path: "/api/v3/find/topomodelmainline",
        esb_name: "get_mainline_object_topo",
        esb_method: "POST",
    },
    Route {
        op: Op::FindSetBatch,
        method: "POST",
        path: "/api/v3/findmany/set/bk_biz_id/{bk_biz_id}",
        esb_name: "find_set_batch",
        esb_method: "POST",
    },
    Route {
        op: Op::FindModuleBatch,
        method: "POST",
        path: "/api/v3/findmany/module/bk_biz_id/{bk_biz_id}",
        esb_name: "find_module_batch",
        esb_method: "POST",
    },
    Route {
        op: Op::FindModuleWithRelation,
        method: "POST",
        path: "/api/v3/findmany/module/with_relation/biz/{bk_biz_id}",
        esb_name: "find_module_with_relation",
        esb_method: "POST",
    },
    Route {
        op: Op::FindTopoNodePaths,
        method: "POST",
        path: "/api/v3/cache/find/cache/topo/node_path/biz/{bk_biz_id}",
        esb_name: "find_topo_node_paths",
        esb_method: "POST",
    },
    Route {
        op: Op::ListBizHosts,
        method: "POST",
        path: "/api/v3/hosts/app/{bk_biz_id}/list_hosts",
        esb_name: "list_biz_hosts",
        esb_method: "POST",
    },
    Route {
        op: Op::ListBizHostsTopo,
        method: "POST",
        path: "/api/v3/hosts/app/{bk_biz_id}/list_hosts_topo",
        esb_name: "list_biz_hosts_topo",
        esb_method: "POST",
    },
    Route {
        op: Op::ListHostsWithoutBiz,
        method: "POST",
        path: "/api/v3/hosts/list_hosts_without_app",
        esb_name: "list_hosts_without_biz",
        esb_method: "POST",
    },
    Route {
        op: Op::FindHostTopoRelation,
        method: "POST",
        path: "/api/v3/host/topo/relation/read",
        esb_name: "find_host_topo_relation",
        esb_method: "POST",
    },
    Route {
        op: Op::FindHostBizRelations,
        method: "POST",
        path: "/api/v3/hosts/modules/read",
        esb_name: "find_host_biz_relations",
        esb_method: "POST",
    },
    Route {
        op: Op::FindHostByServiceTemplate,
        method: "POST",
        path: "/api/v3/findmany/hosts/by_service_templates/biz/{bk_biz_id}",
        esb_name: "find_host_by_service_template",
        esb_method: "POST",
    },
    Route {
        op: Op::GetHostBaseInfo,
        method: "GET",
        path: "/api/v3/hosts/{bk_supplier_account}/{bk_host_id}",
        esb_name: "get_host_base_info",
        esb_method: "GET",
    },
    Route {
        op: Op::ListProcessRelatedInfo,
        method: "POST",
        path: "/api/v3/findmany/proc/process_related_info/biz/{bk_biz_id}",
        esb_name: "list_process_related_info",
        esb_method: "POST",
    },
    Route {
        op: Op::SearchObjectAttribute,
        method: "POST",
        path: "/api/v3/find/objectattr",
        esb_name: "search_object_attribute",
        esb_method: "POST",
    },
    // Topology and host writes; batch_delete_set's path before delete_set's, which it matches.
    Route {
        op: Op::CreateSet,
        method: "POST",
        path: "/api/v3/set/{bk_biz_id}",
        esb_name: "create_set",
        esb_method: "POST",
    },
    Route {
        op: Op::UpdateSet,
        method: "PUT",
        path: "/api/v3/set/{bk_biz_id}/{bk_set_id}",
        esb_name: "update_set",
        esb_method: "POST",
    },
    Route {
        op: Op::BatchDeleteSet,
        method: "DELETE",
        path: "/api/v3/set/{bk_biz_id}/batch",
        esb_name: "batch_delete_set",
        esb_method: "POST",
    },
    Route {
        op: Op::DeleteSet,
        method: "DELETE",
        path: "/api/v3/set/{bk_biz_id}/{bk_set_id}",
        esb_name: "delete_set",
        esb_method: "POST",
    },
    Route {
        op: Op::CreateModule,
        method: "POST",
        path: "/api/v3/module/{bk_biz_id}/{bk_set_id}",
        esb_name: "create_module",
        esb_method: "POST",
    },
    Route {
        op: Op::UpdateModule,
        method: "PUT",
        path: "/api/v3/module/{bk_biz_id}/{bk_set_id}/{bk_module_id}",
        esb_name: "update_module",
        esb_method: "POST",
    },
    Route {
        op: Op::DeleteModule,
        method: "DELETE",
        path: "/api/v3/module/{bk_biz_id}/{bk_set_id}/{bk_module_id}",
        esb_name: "delete_module",
        esb_method: "POST",
    },
    Route {
        op: Op::AddHostToBusinessIdle,
        method: "POST",
        path: "/api/v3/hosts/add/business_idle",
        esb_name: "add_host_to_business_idle",
        esb_method: "POST",
    },
    Route {
        op: Op::TransferHostModule,
        method: "POST",
        path: "/api/v3/hosts/modules",
        esb_name: "transfer_host_module",
        esb_method: "POST",
    },
    Route {
        op: Op::TransferHostToIdlemodule,
        method: "POST",
        path: "/api/v3/hosts/modules/idle",
        esb_name: "transfer_host_to_idlemodule",
        esb_method: "POST",
    },
    Route {
        op: Op::CreateServiceCategory,
        method: "POST",
        path: "/api/v3/create/proc/service_category",
        esb_name: "create_service_category",
        esb_method: "POST",
    },
    Route {
        op: Op::UpdateServiceCategory,
        method: "PUT",
        path: "/api/v3/update/proc/service_category",
        esb_name: "update_service_category",
        esb_method: "POST",
    },
    Route {
        op: Op::DeleteServiceCategory,
        method: "DELETE",
        path: "/api/v3/delete/proc/service_category",
        esb_name: "delete_service_category",
        esb_method: "POST",
    },
    Route {
        op: Op::ListServiceTemplateDifference,
        method: "POST",
        path: "/api/v3/findmany/proc/service_template/sync_status/biz/{bk_biz_id}",
        esb_name: "list_service_template_difference",
        esb_method: "POST",
    },
    Route {
        op: Op::SyncServiceTemplate,
        method: "PUT",
        path: "/api/v3/update/proc/service_instance/sync",
        esb_name: "sync_service_template_to_service_instance",
        esb_method: "POST",
    },
    Route {
        op: Op::ListServiceTemplateSyncStatus,
        method: "POST",
        path: "/api/v3/findmany/proc/service_template_sync_status/bk_biz_id/{bk_biz_id}",
        esb_name: "list_service_template_sync_status",
        esb_method: "POST",
    },
    Route {
        op: Op::ResourceWatch,
        method: "POST",
        path: "/api/v3/event/watch/resource/{bk_resource}",
        esb_name: "resource_watch",
        esb_method: "POST",
    },
];

/// What a path and method resolve to.
pub enum Resolved {
    Found {
        route: &'static Route,
        family: Family,
        /// The last path parameter's value (routes with one parameter).
        path_id: Option<String>,
        /// Every path parameter: (name, value), in path order.
        params: Vec<(&'static str, String)>,
    },
    /// The path exists, not with this method.
    WrongMethod(Family),
    NotFound(Family),
}

/// The family a path belongs to, judged by its prefix alone (for error envelopes).
pub fn family_of(path: &str) -> Family {
    if path.starts_with("/api/c/compapi/") {
        Family::Esb
    } else if path.starts_with("/api/bk-cmdb/") {
        Family::Gateway
    } else {
        Family::Native
    }
}

fn match_template(template: &'static str, path: &str) -> Option<Vec<(&'static str, String)>> {
    let mut t = template.split('/');
    let mut p = path.split('/');
    let mut params = Vec::new();
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some(params),
            (Some(ts), Some(ps)) => {
                if ts.starts_with('{') {
                    if ps.is_empty() {
                        return None;
                    }
                    params.push((ts.trim_matches(|c| c == '{' || c == '}'), ps.to_string()));
                } else if ts != ps {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// Resolves `method` and `path` (without query string) to a route.
pub fn resolve(method: &str, path: &str) -> Resolved {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let family = family_of(trimmed);
    let native = match family {
        Family::Native => Some(trimmed),
        Family::Gateway => {
            // /api/bk-cmdb/{stage}/api/v3/...
            let rest = &trimmed["/api/bk-cmdb/".len()..];
            rest.find('/')
                .map(|i| &rest[i..])
                .filter(|r| r.starts_with("/api/v3/"))
        }
        Family::Esb => None,
    };
    let mut path_exists = false;
    if let Some(native) = native {
        for r in ROUTES {
            if let Some(params) = match_template(r.path, native) {
                if r.method == method {
                    return Resolved::Found {
                        route: r,
                        family,
                        path_id: params.last().map(|(_, v)| v.clone()),
                        params,
                    };
                }
                path_exists = true;
            }
        }
    } else {
        let name = trimmed
            .strip_prefix("/api/c/compapi/v2/cc/")
            .or_else(|| trimmed.strip_prefix("/api/c/compapi/cc/"));
        if let Some(name) = name
            && let Some(r) = ROUTES.iter().find(|r| r.esb_name == name)
        {
            if method == r.esb_method || method == "POST" {
                return Resolved::Found {
                    route: r,
                    family,
                    path_id: None,
                    params: Vec::new(),
                };
            }
            path_exists = true;
        }
    }
    if path_exists {
        Resolved::WrongMethod(family)
    } else {
        Resolved::NotFound(family)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: &str, path: &str) -> Option<(Op, Family)> {
        match resolve(method, path) {
            Resolved::Found { route, family, .. } => Some((route.op, family)),
            _ => None,
        }
    }

    #[test]
    fn families() {
        let c = Op::CreateProcessInstance;
        assert_eq!(
            op("POST", "/api/v3/create/proc/process_instance"),
            Some((c, Family::Native))
        );
        assert_eq!(
            op("POST", "/api/v3/create/proc/process_instance/"),
            Some((c, Family::Native))
        );
        assert_eq!(
            op(
                "POST",
                "/api/bk-cmdb/prod/api/v3/create/proc/process_instance"
            ),
            Some((c, Family::Gateway))
        );
        assert_eq!(
            op("POST", "/api/c/compapi/v2/cc/create_process_instance/"),
            Some((c, Family::Esb))
        );
        assert_eq!(
            op("POST", "/api/c/compapi/cc/create_process_instance"),
            Some((c, Family::Esb))
        );
        assert!(matches!(
            resolve("GET", "/api/v3/create/proc/process_instance"),
            Resolved::WrongMethod(_)
        ));
        assert!(matches!(
            resolve("POST", "/api/v3/nope"),
            Resolved::NotFound(_)
        ));
        assert!(matches!(
            resolve("POST", "/api/bk-cmdb/prod"),
            Resolved::NotFound(_)
        ));
    }
}
