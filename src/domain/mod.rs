//! Pure rules, no I/O and no clock: the process attribute table and its validation, bind_info
//! rules, the Go-like decoding of request bodies, process updates and what a process template
//! lets an update change, the projection of an instance read. Time and ids come in as arguments.

pub mod bind_info;
pub mod bound_process;
pub mod condition;
pub mod decode;
pub mod page;
pub mod process;
pub mod process_fields;
pub mod process_update;
pub mod projection;
pub mod query_filter;
pub mod service_category;
pub mod service_instance;
pub mod service_template;
pub mod template_property;
pub mod template_sync;
pub mod topology;
pub mod topology_write;
pub mod watch;
