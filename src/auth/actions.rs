//! Which IAM action each write operation needs, on which resource (bk-cmdb's parser rules in
//! `src/ac/parser/*.go` → `src/ac/iam/adaptor.go` → `gen_id.go`; spec bk-auth.md 3.2). One table:
//! an operation without a row needs nothing (bk-cmdb's Find/FindMany/Skip), so a new read route
//! needs no line here and a new write route adds one.

use crate::api::Op;

/// IAM system of every action (`src/ac/iam/types.go`).
pub const SYSTEM_ID: &str = "bk_cmdb";
pub const SYSTEM_NAME: &str = "配置平台";

/// What an action is checked on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    /// The business of the body's `bk_biz_id` (IAM type `biz`).
    Biz,
    /// The service template whose id is the body's field of this name (IAM type
    /// `biz_process_service_template`); a grant on its business covers it too.
    Template(&'static str),
    /// The service templates owning the process templates the request names, checked by
    /// proc_server itself: a denial is 1199046 without a `permission` object.
    ProcTemplates,
}

/// One row: an operation, the IAM action it needs, and what the action is on.
#[derive(Clone, Copy, Debug)]
pub struct Need {
    pub op: Op,
    pub action: &'static str,
    pub on: On,
}

pub const NEEDS: &[Need] = &[
    Need {
        op: Op::CreateProcessInstance,
        action: "edit_biz_service_instance",
        on: On::Biz,
    },
    Need {
        op: Op::UpdateProcessInstance,
        action: "edit_biz_service_instance",
        on: On::Biz,
    },
    Need {
        op: Op::DeleteProcessInstance,
        action: "edit_biz_service_instance",
        on: On::Biz,
    },
    Need {
        op: Op::CreateServiceInstance,
        action: "create_biz_service_instance",
        on: On::Biz,
    },
    Need {
        op: Op::DeleteServiceInstance,
        action: "delete_biz_service_instance",
        on: On::Biz,
    },
    Need {
        op: Op::AddLabelForServiceInstance,
        action: "edit_biz_service_instance",
        on: On::Biz,
    },
    Need {
        op: Op::RemoveLabelFromServiceInstance,
        action: "delete_biz_service_instance",
        on: On::Biz,
    },
    Need {
        op: Op::CreateServiceTemplate,
        action: "create_biz_service_template",
        on: On::Biz,
    },
    Need {
        op: Op::UpdateServiceTemplate,
        action: "edit_biz_service_template",
        on: On::Template("id"),
    },
    Need {
        op: Op::DeleteServiceTemplate,
        action: "delete_biz_service_template",
        on: On::Template("service_template_id"),
    },
    Need {
        op: Op::CreateProcTemplates,
        action: "edit_biz_service_template",
        on: On::ProcTemplates,
    },
    Need {
        op: Op::UpdateProcTemplate,
        action: "edit_biz_service_template",
        on: On::ProcTemplates,
    },
    Need {
        op: Op::DeleteProcTemplates,
        action: "edit_biz_service_template",
        on: On::ProcTemplates,
    },
    // bk-cmdb's parser: `syncServiceInstanceAccordingToServiceTemplate` is a
    // ProcessServiceInstance Update.
    Need {
        op: Op::SyncServiceTemplate,
        action: "edit_biz_service_instance",
        on: On::Biz,
    },
    Need {
        op: Op::CreateServiceCategory,
        action: "create_biz_service_category",
        on: On::Biz,
    },
    Need {
        op: Op::UpdateServiceCategory,
        action: "edit_biz_service_category",
        on: On::Biz,
    },
    Need {
        op: Op::DeleteServiceCategory,
        action: "delete_biz_service_category",
        on: On::Biz,
    },
    // Topology writes (the business of the path) and host writes (`parser/topology.go`,
    // `parser/host.go`: a business's mainline instances, its hosts).
    Need {
        op: Op::CreateSet,
        action: "create_biz_topology",
        on: On::Biz,
    },
    Need {
        op: Op::UpdateSet,
        action: "edit_biz_topology",
        on: On::Biz,
    },
    Need {
        op: Op::DeleteSet,
        action: "delete_biz_topology",
        on: On::Biz,
    },
    Need {
        op: Op::BatchDeleteSet,
        action: "delete_biz_topology",
        on: On::Biz,
    },
    Need {
        op: Op::CreateModule,
        action: "create_biz_topology",
        on: On::Biz,
    },
    Need {
        op: Op::UpdateModule,
        action: "edit_biz_topology",
        on: On::Biz,
    },
    Need {
        op: Op::DeleteModule,
        action: "delete_biz_topology",
        on: On::Biz,
    },
    Need {
        op: Op::AddHostToBusinessIdle,
        action: "edit_biz_host",
        on: On::Biz,
    },
    Need {
        op: Op::TransferHostModule,
        action: "edit_biz_host",
        on: On::Biz,
    },
    Need {
        op: Op::TransferHostToIdlemodule,
        action: "edit_biz_host",
        on: On::Biz,
    },
];

/// Every IAM action id an auth file may grant, with its (always Chinese) name
/// (`src/ac/iam/initial_actions.go` `ActionIDNameMap`).
pub const ACTIONS: &[(&str, &str)] = &[
    ("edit_biz_service_instance", "服务实例编辑"),
    ("create_biz_service_instance", "服务实例新建"),
    ("delete_biz_service_instance", "服务实例删除"),
    ("create_biz_service_template", "服务模板新建"),
    ("edit_biz_service_template", "服务模板编辑"),
    ("delete_biz_service_template", "服务模板删除"),
    ("create_biz_service_category", "服务分类新建"),
    ("edit_biz_service_category", "服务分类编辑"),
    ("delete_biz_service_category", "服务分类删除"),
    ("create_biz_topology", "业务拓扑新建"),
    ("edit_biz_topology", "业务拓扑编辑"),
    ("delete_biz_topology", "业务拓扑删除"),
    ("edit_biz_host", "业务主机编辑"),
];

/// IAM resource types and their names (`src/ac/iam/initial_resources.go`).
pub const TYPE_BIZ: (&str, &str) = ("biz", "业务");
pub const TYPE_TEMPLATE: (&str, &str) = ("biz_process_service_template", "服务模板");

/// The row of `op`, if it needs an action.
pub fn need(op: Op) -> Option<&'static Need> {
    NEEDS.iter().find(|n| n.op == op)
}

/// The name of an action id.
pub fn action_name(id: &str) -> Option<&'static str> {
    ACTIONS.iter().find(|(a, _)| *a == id).map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_needed_action_has_a_name_and_ops_are_listed_once() {
        for (i, n) in NEEDS.iter().enumerate() {
            assert!(action_name(n.action).is_some(), "{}", n.action);
            assert!(
                NEEDS[i + 1..].iter().all(|m| m.op != n.op),
                "{:?} twice",
                n.op
            );
        }
        assert!(need(Op::ListProcessInstance).is_none());
        assert_eq!(
            need(Op::DeleteProcessInstance).map(|n| n.action),
            Some("edit_biz_service_instance")
        );
    }
}
