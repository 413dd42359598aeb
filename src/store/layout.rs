//! The stored layouts: what each record looks like on disk, as types of their own.
//!
//! bincode writes a struct's fields by position, without their names, so the order of the
//! fields below *is* the file format: reordering two fields, or changing a type, would
//! silently misread every existing store. The record types of `records.rs` (the dataset file
//! and the API answers) may change freely; these may not, except with a new
//! `codec::SCHEMA_VERSION` and a migration. The golden-bytes tests at the end pin each layout
//! to the bytes a store of the current schema version holds.
//!
//! Times are milliseconds; a process template's `property` is a [`Dyn`] (a JSON value bincode
//! can carry).

use super::codec::Dyn;
use super::records::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredBusiness {
    pub bk_biz_id: i64,
    pub bk_biz_name: String,
    pub default: i64,
    pub attrs: Dyn,
}

/// The layouts of a business, host and module before they carried `default` and `attrs`
/// (version-1 stores, and version-2 stores of builds before the topology records): still read,
/// as records with no other attribute (see `typed.rs`).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct LegacyBusiness {
    pub bk_biz_id: i64,
    pub bk_biz_name: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct LegacyHost {
    pub bk_host_id: i64,
    pub bk_host_innerip: String,
    pub bk_host_outerip: String,
    pub bk_host_innerip_v6: String,
    pub bk_host_outerip_v6: String,
    pub bk_cloud_id: i64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct LegacyModule {
    pub bk_module_id: i64,
    pub bk_biz_id: i64,
    pub bk_set_id: i64,
    pub bk_module_name: String,
    pub service_template_id: i64,
    pub service_category_id: i64,
    pub default: i64,
    pub hosts: Vec<i64>,
}

fn no_attrs() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

impl From<LegacyBusiness> for Business {
    fn from(s: LegacyBusiness) -> Business {
        Business {
            bk_biz_id: s.bk_biz_id,
            bk_biz_name: s.bk_biz_name,
            default: 0,
            attrs: no_attrs(),
        }
    }
}

impl From<LegacyHost> for Host {
    fn from(s: LegacyHost) -> Host {
        Host {
            bk_host_id: s.bk_host_id,
            bk_host_innerip: s.bk_host_innerip,
            bk_host_outerip: s.bk_host_outerip,
            bk_host_innerip_v6: s.bk_host_innerip_v6,
            bk_host_outerip_v6: s.bk_host_outerip_v6,
            bk_cloud_id: s.bk_cloud_id,
            attrs: no_attrs(),
        }
    }
}

impl From<LegacyModule> for Module {
    fn from(s: LegacyModule) -> Module {
        Module {
            bk_module_id: s.bk_module_id,
            bk_biz_id: s.bk_biz_id,
            bk_set_id: s.bk_set_id,
            bk_module_name: s.bk_module_name,
            service_template_id: s.service_template_id,
            service_category_id: s.service_category_id,
            default: s.default,
            hosts: s.hosts,
            attrs: no_attrs(),
        }
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredSet {
    pub bk_set_id: i64,
    pub bk_biz_id: i64,
    pub bk_set_name: String,
    pub bk_parent_id: i64,
    pub default: i64,
    pub attrs: Dyn,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredCloudArea {
    pub bk_cloud_id: i64,
    pub bk_cloud_name: String,
    pub attrs: Dyn,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredHost {
    pub bk_host_id: i64,
    pub bk_host_innerip: String,
    pub bk_host_outerip: String,
    pub bk_host_innerip_v6: String,
    pub bk_host_outerip_v6: String,
    pub bk_cloud_id: i64,
    pub attrs: Dyn,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredModule {
    pub bk_module_id: i64,
    pub bk_biz_id: i64,
    pub bk_set_id: i64,
    pub bk_module_name: String,
    pub service_template_id: i64,
    pub service_category_id: i64,
    pub default: i64,
    pub hosts: Vec<i64>,
    pub attrs: Dyn,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredServiceCategory {
    pub id: i64,
    pub name: String,
    pub bk_parent_id: i64,
    pub bk_root_id: i64,
    pub bk_biz_id: i64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredServiceTemplate {
    pub bk_biz_id: i64,
    pub id: i64,
    pub name: String,
    pub service_category_id: i64,
    pub creator: String,
    pub modifier: String,
    pub create_time: i64,
    pub last_time: i64,
    pub bk_supplier_account: String,
    pub host_apply_enabled: bool,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredProcessTemplate {
    pub id: i64,
    pub bk_process_name: String,
    pub bk_biz_id: i64,
    pub service_template_id: i64,
    pub property: Dyn,
    pub creator: String,
    pub modifier: String,
    pub create_time: i64,
    pub last_time: i64,
    pub bk_supplier_account: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredServiceInstance {
    pub bk_biz_id: i64,
    pub id: i64,
    pub name: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub service_template_id: i64,
    pub bk_host_id: i64,
    pub bk_module_id: i64,
    pub creator: String,
    pub modifier: String,
    pub create_time: i64,
    pub last_time: i64,
    pub bk_supplier_account: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredRelation {
    pub bk_biz_id: i64,
    pub bk_process_id: i64,
    pub service_instance_id: i64,
    pub process_template_id: i64,
    pub bk_host_id: i64,
    pub bk_supplier_account: String,
}

/// The bytes of the relations of many new processes, which differ only in `bk_process_id`:
/// encoded once, each id spliced in at its offset (after the version byte and `bk_biz_id`).
pub struct RelationBytes {
    bytes: Vec<u8>,
    at: usize,
}

impl RelationBytes {
    pub fn new(rel: &Relation) -> RelationBytes {
        let zero = Relation {
            bk_process_id: 0,
            ..rel.clone()
        };
        RelationBytes {
            bytes: super::Record::encode(&zero),
            at: 1 + super::codec::i64_len(rel.bk_biz_id),
        }
    }

    /// Appends the stored bytes of the relation with process `pid` to `out`.
    pub fn append_with_pid(&self, pid: i64, out: &mut Vec<u8>) {
        super::codec::splice_i64_into(&self.bytes, self.at, pid, out);
    }

    /// At most the length of the bytes, whatever the id.
    pub fn max_len(&self) -> usize {
        self.bytes.len() + 9
    }
}

/// The conversions between a record and its stored layout, both ways, field by field.
macro_rules! layout {
    ($rec:ident, $stored:ident { $($f:ident),* $(,)? } $(, $conv:ident: $to:expr, $from:expr)?) => {
        impl From<&$rec> for $stored {
            #[allow(clippy::redundant_closure_call)]
            fn from(r: &$rec) -> $stored {
                $stored {
                    $($f: r.$f.clone(),)*
                    $($conv: ($to)(&r.$conv),)?
                }
            }
        }
        impl From<$stored> for $rec {
            #[allow(clippy::redundant_closure_call)]
            fn from(s: $stored) -> $rec {
                $rec {
                    $($f: s.$f,)*
                    $($conv: ($from)(s.$conv),)?
                }
            }
        }
    };
}

layout!(
    Business,
    StoredBusiness {
        bk_biz_id,
        bk_biz_name,
        default,
    },
    attrs: Dyn::from_json,
    |d: Dyn| d.to_json()
);
layout!(
    Set,
    StoredSet {
        bk_set_id,
        bk_biz_id,
        bk_set_name,
        bk_parent_id,
        default,
    },
    attrs: Dyn::from_json,
    |d: Dyn| d.to_json()
);
layout!(
    CloudArea,
    StoredCloudArea {
        bk_cloud_id,
        bk_cloud_name,
    },
    attrs: Dyn::from_json,
    |d: Dyn| d.to_json()
);
layout!(
    Host,
    StoredHost {
        bk_host_id,
        bk_host_innerip,
        bk_host_outerip,
        bk_host_innerip_v6,
        bk_host_outerip_v6,
        bk_cloud_id,
    },
    attrs: Dyn::from_json,
    |d: Dyn| d.to_json()
);
layout!(
    Module,
    StoredModule {
        bk_module_id,
        bk_biz_id,
        bk_set_id,
        bk_module_name,
        service_template_id,
        service_category_id,
        default,
        hosts,
    },
    attrs: Dyn::from_json,
    |d: Dyn| d.to_json()
);
layout!(
    ServiceCategory,
    StoredServiceCategory {
        id,
        name,
        bk_parent_id,
        bk_root_id,
        bk_biz_id,
    }
);
layout!(
    ServiceTemplate,
    StoredServiceTemplate {
        bk_biz_id,
        id,
        name,
        service_category_id,
        creator,
        modifier,
        create_time,
        last_time,
        bk_supplier_account,
        host_apply_enabled,
    }
);
layout!(
    ProcessTemplate,
    StoredProcessTemplate {
        id,
        bk_process_name,
        bk_biz_id,
        service_template_id,
        creator,
        modifier,
        create_time,
        last_time,
        bk_supplier_account,
    },
    property: Dyn::from_json,
    |d: Dyn| d.to_json()
);
layout!(
    ServiceInstance,
    StoredServiceInstance {
        bk_biz_id,
        id,
        name,
        labels,
        service_template_id,
        bk_host_id,
        bk_module_id,
        creator,
        modifier,
        create_time,
        last_time,
        bk_supplier_account,
    }
);
layout!(
    Relation,
    StoredRelation {
        bk_biz_id,
        bk_process_id,
        service_instance_id,
        process_template_id,
        bk_host_id,
        bk_supplier_account,
    }
);

#[cfg(test)]
mod tests {
    //! Golden bytes: each stored record, encoded, must be exactly the bytes a store of the
    //! current schema version (2; topology records with `default` and `attrs`) holds, and must decode back to the same record. Version 1
    //! held the same bytes behind a version byte of 1, but for processes (`GOLDEN_PROCESS_V1`). A change here
    //! is a change of the file format: it needs a new schema version and a migration.
    use super::super::typed::Record;
    use super::*;
    use serde_json::json;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn golden<R: Record + PartialEq + std::fmt::Debug>(rec: R, want: &str) {
        let bytes = rec.encode();
        assert_eq!(hex(&bytes), want, "stored bytes of {}", R::WHAT);
        assert_eq!(R::decode(&bytes).unwrap(), rec, "{} decodes back", R::WHAT);
    }

    #[test]
    fn business() {
        let rec = Business {
            bk_biz_id: 3,
            bk_biz_name: "biz".into(),
            default: 1,
            attrs: json!({"life_cycle": "2", "team": null}),
        };
        golden(rec, GOLDEN_BUSINESS);
    }

    #[test]
    fn legacy_topology_records_still_decode() {
        // The bytes of a version-2 store written before the topology records.
        let b = Business::decode(&unhex("02060362697a")).unwrap();
        assert_eq!(
            (b.bk_biz_id, b.bk_biz_name.as_str(), b.default),
            (3, "biz", 0)
        );
        assert_eq!(b.attrs, json!({}));
        let h = Host::decode(&unhex("02160831302e302e302e3100033a3a310001")).unwrap();
        assert_eq!(
            (h.bk_host_id, h.bk_host_innerip_v6.as_str(), h.bk_cloud_id),
            (11, "::1", -1)
        );
        let m = Module::decode(&unhex("0228060e016d0a04000216fb5802")).unwrap();
        assert_eq!((m.bk_module_id, m.hosts.clone()), (20, vec![11, 300]));
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn set() {
        let rec = Set {
            bk_set_id: 4,
            bk_biz_id: 3,
            bk_set_name: "s".into(),
            bk_parent_id: 3,
            default: 0,
            attrs: json!({"bk_capacity": 10}),
        };
        golden(rec, GOLDEN_SET);
    }

    #[test]
    fn cloud_area() {
        let rec = CloudArea {
            bk_cloud_id: 0,
            bk_cloud_name: "c".into(),
            attrs: json!({}),
        };
        golden(rec, GOLDEN_CLOUD_AREA);
    }

    #[test]
    fn host() {
        let rec = Host {
            bk_host_id: 11,
            bk_host_innerip: "10.0.0.1".into(),
            bk_host_outerip: "".into(),
            bk_host_innerip_v6: "::1".into(),
            bk_host_outerip_v6: "".into(),
            bk_cloud_id: -1,
            attrs: json!({"bk_cpu": 8}),
        };
        golden(rec, GOLDEN_HOST);
    }

    #[test]
    fn module() {
        let rec = Module {
            bk_module_id: 20,
            bk_biz_id: 3,
            bk_set_id: 7,
            bk_module_name: "m".into(),
            service_template_id: 5,
            service_category_id: 2,
            default: 0,
            hosts: vec![11, 300],
            attrs: json!({"operator": ""}),
        };
        golden(rec, GOLDEN_MODULE);
    }

    #[test]
    fn service_category() {
        let rec = ServiceCategory {
            id: 2,
            name: "c".into(),
            bk_parent_id: 1,
            bk_root_id: 1,
            bk_biz_id: 0,
        };
        golden(rec, GOLDEN_SERVICE_CATEGORY);
    }

    #[test]
    fn service_template() {
        let rec = ServiceTemplate {
            bk_biz_id: 3,
            id: 5,
            name: "st".into(),
            service_category_id: 2,
            creator: "a".into(),
            modifier: "b".into(),
            create_time: 1_700_000_000_123,
            last_time: 1_700_000_000_456,
            bk_supplier_account: "0".into(),
            host_apply_enabled: true,
        };
        golden(rec, GOLDEN_SERVICE_TEMPLATE);
    }

    #[test]
    fn process_template() {
        let rec = ProcessTemplate {
            id: 6,
            bk_process_name: "p".into(),
            bk_biz_id: 3,
            service_template_id: 5,
            property: json!({"bk_func_name": {"value": "f", "as_default_value": true},
                             "bind_info": {"value": [{"port": {"value": "80"}}]},
                             "priority": {"value": 1.5}, "user": {"value": null}}),
            creator: "a".into(),
            modifier: "b".into(),
            create_time: 1_700_000_000_123,
            last_time: 1_700_000_000_456,
            bk_supplier_account: "0".into(),
        };
        golden(rec, GOLDEN_PROCESS_TEMPLATE);
    }

    #[test]
    fn service_instance() {
        let mut labels = BTreeMap::new();
        labels.insert("k".to_string(), "v".to_string());
        let rec = ServiceInstance {
            bk_biz_id: 3,
            id: 30,
            name: "si".into(),
            labels: Some(labels),
            service_template_id: 5,
            bk_host_id: 11,
            bk_module_id: 20,
            creator: "a".into(),
            modifier: "b".into(),
            create_time: 1_700_000_000_123,
            last_time: 1_700_000_000_456,
            bk_supplier_account: "0".into(),
        };
        golden(rec, GOLDEN_SERVICE_INSTANCE);
        let none = ServiceInstance {
            bk_biz_id: 3,
            id: 31,
            name: "".into(),
            labels: None,
            service_template_id: 0,
            bk_host_id: 11,
            bk_module_id: 20,
            creator: "".into(),
            modifier: "".into(),
            create_time: 0,
            last_time: 0,
            bk_supplier_account: "".into(),
        };
        golden(none, GOLDEN_SERVICE_INSTANCE_BARE);
    }

    #[test]
    fn relation() {
        let rec = Relation {
            bk_biz_id: 3,
            bk_process_id: 41,
            service_instance_id: 30,
            process_template_id: 6,
            bk_host_id: 11,
            bk_supplier_account: "0".into(),
        };
        golden(rec, GOLDEN_RELATION);
    }

    #[test]
    fn process() {
        let map = json!({"bk_process_id": 41, "bk_biz_id": 3, "service_instance_id": 30,
                         "bk_process_name": "p", "bind_info": [{"ip": "127.0.0.1", "port": "80",
                         "enable": true}], "priority": null, "proc_num": 1.5,
                         "bk_big": 18446744073709551615u64});
        let map = map.as_object().cloned().unwrap();
        let v1: Vec<u8> = (0..GOLDEN_PROCESS_V1.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&GOLDEN_PROCESS_V1[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(crate::store::codec::decode_map_v1(&v1).unwrap(), map);
        golden(map, GOLDEN_PROCESS);
    }

    const GOLDEN_BUSINESS: &str = "02060362697a0207020a6c6966655f6379636c65050132047465616d00";
    const GOLDEN_SET: &str = "0208060173060007010b626b5f63617061636974790214";
    const GOLDEN_CLOUD_AREA: &str = "020001630700";
    const GOLDEN_HOST: &str = "02160831302e302e302e3100033a3a310001070106626b5f6370750210";
    const GOLDEN_MODULE: &str = "0228060e016d0a04000216fb58020701086f70657261746f720500";
    const GOLDEN_SERVICE_CATEGORY: &str = "02040163020200";
    const GOLDEN_SERVICE_TEMPLATE: &str =
        "02060a0273740401610162fdf6d0ca9f17030000fd90d3ca9f17030000013001";
    const GOLDEN_PROCESS_TEMPLATE: &str = "020c0170060a07040962696e645f696e666f07010576616c75650601070104706f727407010576616c7565050238300c626b5f66756e635f6e616d6507021061735f64656661756c745f76616c756501010576616c7565050166087072696f7269747907010576616c756504000000000000f83f047573657207010576616c75650001610162fdf6d0ca9f17030000fd90d3ca9f170300000130";
    const GOLDEN_SERVICE_INSTANCE: &str =
        "02063c0273690101016b01760a162801610162fdf6d0ca9f17030000fd90d3ca9f170300000130";
    const GOLDEN_SERVICE_INSTANCE_BARE: &str = "02063e00000016280000000000";
    const GOLDEN_RELATION: &str = "0206523c0c160130";

    /// A relation spliced with an id is the relation encoded with it, whatever the widths of
    /// the business id and the process id.
    #[test]
    fn a_spliced_relation_is_the_encoded_one() {
        use super::super::typed::Record;
        let ids = [
            0,
            1,
            -1,
            125,
            126,
            127,
            250,
            251,
            32_767,
            65_535,
            1 << 31,
            -(1 << 40),
        ];
        for biz in ids.iter().copied().chain([i64::MIN, i64::MAX]) {
            let mut rel = Relation {
                bk_biz_id: biz,
                bk_process_id: 99,
                service_instance_id: 7,
                process_template_id: 0,
                bk_host_id: 300,
                bk_supplier_account: "0".into(),
            };
            let bytes = RelationBytes::new(&rel);
            for pid in ids.iter().copied().chain([i64::MIN, i64::MAX]) {
                rel.bk_process_id = pid;
                let mut spliced = Vec::new();
                bytes.append_with_pid(pid, &mut spliced);
                assert_eq!(spliced, rel.encode(), "biz {biz}, pid {pid}");
            }
        }
    }
    const GOLDEN_PROCESS: &str = "02c681b0020801090306656e61626c650202697006093132372e302e302e3104706f727406023830030603520601700005000000000000f83f033c0106626b5f62696704ffffffffffffffffff01";
    /// The same process as a version-1 store holds it (key names and all), which the
    /// migration reads.
    const GOLDEN_PROCESS_V1: &str = "01080962696e645f696e666f0601070306656e61626c65010102697005093132372e302e302e3104706f72740502383006626b5f62696703fdffffffffffffffff09626b5f62697a5f696402060d626b5f70726f636573735f696402520f626b5f70726f636573735f6e616d65050170087072696f72697479000870726f635f6e756d04000000000000f83f13736572766963655f696e7374616e63655f6964023c";
}
