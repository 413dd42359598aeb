//! Rules of the topology and host writes (spec topology 8, 9): bk-cmdb's mainline name rule
//! (`valid.ValidTopoNameField`) with its error texts, the host IP fields as bk-cmdb stores them
//! (IPv4 checked, IPv6 in full form), and the plan of a host transfer (which relations and
//! service instances go, which relations come). Pure: no store, no clock.

use crate::error::{Arg, CcError, code};
use crate::limits::MAX_TEMPLATE_NAME_RUNES;
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A set's or module's name: trimmed of spaces, non-empty (1199010), at most 256 runes
/// (1199073), none of `\|/:*,<>"?#` or white space (1199006); the error names `field`.
pub fn topo_name(name: &str, field: &str) -> Result<String, CcError> {
    let name = name.trim_matches(' ');
    if name.is_empty() {
        return Err(CcError::with(code::PARAMS_NEED_SET, field));
    }
    if name.chars().count() > MAX_TEMPLATE_NAME_RUNES {
        return Err(CcError::new(
            code::VAL_EXCEED_MAX,
            vec![
                Arg::Str(field.into()),
                Arg::Int(MAX_TEMPLATE_NAME_RUNES as i64),
            ],
        ));
    }
    let bad = |c: char| "\\|/:*,<>\"?#".contains(c) || c.is_ascii_whitespace();
    if name.contains(bad) {
        return Err(CcError::invalid(field));
    }
    Ok(name.to_string())
}

/// An IP field of a new host as bk-cmdb stores it, comma-joined: a string (comma-separated)
/// or a list of strings; each element trimmed, IPv4 elements must be dotted quads, IPv6 ones
/// are written in full form. `None` when one is not an address: the caller words the error.
pub fn ip_list(v: Option<&Value>, v6: bool) -> Option<String> {
    let parts: Vec<String> = match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
        Some(Value::Array(a)) => {
            let mut out = Vec::new();
            for x in a {
                out.push(x.as_str()?.to_string());
            }
            out
        }
        Some(_) => return None,
    };
    let mut out = Vec::new();
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        if v6 {
            out.push(full_v6(p)?);
        } else {
            p.parse::<Ipv4Addr>().ok()?;
            out.push(p.to_string());
        }
    }
    Some(out.join(","))
}

/// An IPv6 address in bk-cmdb's stored form: eight groups of four hex digits.
pub fn full_v6(s: &str) -> Option<String> {
    let a: Ipv6Addr = s.parse().ok()?;
    Some(
        a.segments()
            .iter()
            .map(|g| format!("{g:04x}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// `ids` without repeats, ascending.
pub fn distinct(ids: &[i64]) -> Vec<i64> {
    ids.iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// One of a host's current modules, as a transfer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Current {
    pub module: i64,
    /// The module's `default` (0 for a user module).
    pub default: i64,
}

/// What a transfer does to one host (coreservice `transfer.go`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Modules the host leaves (its relation goes).
    pub leave: Vec<i64>,
    /// Modules whose service instances of this host are deleted with their processes.
    pub drop_instances: Vec<i64>,
    /// Modules the host enters (a relation comes).
    pub enter: Vec<i64>,
}

/// The plan of moving a host with modules `current` to `targets`: with `increment` it keeps
/// every user module and leaves only built-in ones; without, it leaves every module not
/// targeted and loses its service instances there.
pub fn transfer_plan(current: &[Current], targets: &[i64], increment: bool) -> Plan {
    let targets = distinct(targets);
    let mut plan = Plan::default();
    for c in current {
        if targets.contains(&c.module) {
            continue;
        }
        if !increment || c.default != 0 {
            plan.leave.push(c.module);
            if !increment {
                plan.drop_instances.push(c.module);
            }
        }
    }
    for t in targets {
        if !current.iter().any(|c| c.module == t) {
            plan.enter.push(t);
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        assert_eq!(topo_name("  web ", "bk_set_name").unwrap(), "web");
        assert_eq!(
            topo_name("  ", "bk_set_name").unwrap_err(),
            CcError::with(code::PARAMS_NEED_SET, "bk_set_name")
        );
        assert_eq!(
            topo_name("a/b", "bk_set_name").unwrap_err(),
            CcError::invalid("bk_set_name")
        );
        assert_eq!(
            topo_name("a b", "bk_module_name").unwrap_err(),
            CcError::invalid("bk_module_name")
        );
        assert_eq!(
            topo_name(&"字".repeat(257), "bk_set_name")
                .unwrap_err()
                .code,
            code::VAL_EXCEED_MAX
        );
        assert!(topo_name(&"字".repeat(256), "bk_set_name").is_ok());
    }

    #[test]
    fn ips() {
        assert_eq!(
            ip_list(Some(&json!(" 10.0.0.1,10.0.0.2 ")), false),
            Some("10.0.0.1,10.0.0.2".into())
        );
        assert_eq!(
            ip_list(Some(&json!(["10.0.0.1"])), false),
            Some("10.0.0.1".into())
        );
        assert_eq!(ip_list(Some(&json!("10.0.0.256")), false), None);
        assert_eq!(ip_list(Some(&json!(7)), false), None);
        assert_eq!(ip_list(None, false), Some(String::new()));
        assert_eq!(
            ip_list(Some(&json!("::1")), true),
            Some("0000:0000:0000:0000:0000:0000:0000:0001".into())
        );
        assert_eq!(ip_list(Some(&json!("::g")), true), None);
    }

    #[test]
    fn plans() {
        let idle = Current {
            module: 1,
            default: 1,
        };
        let a = Current {
            module: 10,
            default: 0,
        };
        let b = Current {
            module: 11,
            default: 0,
        };
        assert_eq!(
            transfer_plan(&[idle], &[10, 10], false),
            Plan {
                leave: vec![1],
                drop_instances: vec![1],
                enter: vec![10]
            }
        );
        assert_eq!(
            transfer_plan(&[a, b], &[11, 12], false),
            Plan {
                leave: vec![10],
                drop_instances: vec![10],
                enter: vec![12]
            }
        );
        assert_eq!(
            transfer_plan(&[idle, a], &[12], true),
            Plan {
                leave: vec![1],
                drop_instances: vec![],
                enter: vec![12]
            }
        );
    }
}
