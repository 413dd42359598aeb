//! Pure rules, no I/O and no clock: the process attribute table and its validation, bind_info
//! rules, and the Go-like decoding of request bodies. Time and ids come in as arguments.

pub mod bind_info;
pub mod decode;
pub mod page;
pub mod process;
pub mod process_template;
pub mod service_instance;
pub mod service_template;
