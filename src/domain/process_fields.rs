//! The process field table: one row per field name a process rule knows, with a column for each
//! list of names bk-cmdb (or our file format) keeps. Every list of process field names is
//! derived from it, so a field is added, or its role changed, on one line.
//!
//! The attribute rules of a create or an update (type, range, required, the name in messages)
//! are `process::ATTRS`, in the order the first bad one is reported.

use super::template_property::Ty;

/// The Go type of one field of bk-cmdb's `metadata.Process`, which decides how an update item
/// is decoded (`process_update::decode_item`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoType {
    /// `*string`: null stays null.
    OptStr,
    /// `*int64`.
    OptInt,
    /// `*bool`.
    OptBool,
    /// `int64`: null or absent is 0.
    Int,
    /// `string`: null or absent is "".
    Str,
    /// `time.Time`: an RFC 3339 string; null or absent is the zero time.
    Time,
    /// `[]ProcBindInfo`.
    BindInfo,
}

/// One process field and the lists it belongs to.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: &'static str,
    /// Its type as a field of bk-cmdb's `metadata.Process` struct; `None` if the struct has no
    /// such field. The table's rows that have one are in the struct's order.
    pub go: Option<GoType>,
    /// Its position in bk-cmdb's `ProcessProperty` (a process template's `property`, rendered
    /// in that order) and the JSON type of its `value`.
    pub property: Option<(usize, Ty)>,
    /// Its position among the fields a process template can lock (`as_default_value`), in
    /// bk-cmdb's order (`GetEditableFields`, the sync's comparison).
    pub lock: Option<usize>,
    /// Its bit in a stored process (`store/compact.rs`): part of the file format, so a position
    /// changes only with a new schema version. The positions follow the names' byte order.
    pub stored: Option<usize>,
    /// The server sets it (ids, owner, times, creator): a client never sends it, and `push`
    /// neither pushes nor compares it.
    pub server_set: bool,
    /// An update may set it (bk-cmdb's `editable`; for an attribute of `process::ATTRS`).
    pub editable: bool,
    /// An explicit `null` in an update clears it (bk-cmdb `GetAllProcessPropertyFields`, which
    /// also names fields of bk-cmdb's older process model that cmdb-lite does not store).
    pub clearable: bool,
}

macro_rules! go {
    (-) => {
        None
    };
    ($t:ident) => {
        Some(GoType::$t)
    };
}

macro_rules! at {
    (-) => {
        None
    };
    ($n:literal) => {
        Some($n)
    };
}

macro_rules! property {
    (- -) => {
        None
    };
    ($n:literal $t:ident) => {
        Some(($n, Ty::$t))
    };
}

macro_rules! flag {
    (-) => {
        false
    };
    (x) => {
        true
    };
}

macro_rules! table {
    ($($name:literal $go:tt $pos:tt $ty:tt $lock:tt $stored:tt $server:tt $edit:tt $clear:tt)*) => {
        &[$(Field {
            name: $name,
            go: go!($go),
            property: property!($pos $ty),
            lock: at!($lock),
            stored: at!($stored),
            server_set: flag!($server),
            editable: flag!($edit),
            clearable: flag!($clear),
        }),*]
    };
}

/// The process fields. `-` is none (or no); `x` is yes.
#[rustfmt::skip]
pub const FIELDS: &[Field] = table! {
//  name                    go        property   lock stored server editable clearable
    "proc_num"              OptInt    0  Int     6    19     -      x        x
    "stop_cmd"              OptStr    1  Str     5    24     -      x        x
    "restart_cmd"           OptStr    2  Str     12   21     -      x        x
    "face_stop_cmd"         OptStr    3  Str     13   15     -      x        x
    "bk_process_id"         Int       -  -       -    6      x      -        -
    "bk_func_name"          OptStr    4  Str     0    5      -      x        x
    "work_path"             OptStr    5  Str     14   27     -      x        x
    "priority"              OptInt    6  Int     15   18     -      x        x
    "reload_cmd"            OptStr    7  Str     11   20     -      x        x
    "bk_process_name"       OptStr    8  Str     1    7      -      x        x
    "pid_file"              OptStr    9  Str     10   17     -      x        x
    "auto_start"            OptBool   10 Bool    9    0      -      x        x
    "bk_start_check_secs"   OptInt    11 Int     3    8      -      x        x
    "last_time"             Time      -  -       -    16     x      -        -
    "create_time"           Time      -  -       -    13     x      -        -
    "bk_biz_id"             Int       -  -       -    2      x      -        -
    "start_cmd"             OptStr    12 Str     16   23     -      x        x
    "user"                  OptStr    13 Str     4    26     -      x        x
    "timeout"               OptInt    14 Int     8    25     -      x        x
    "description"           OptStr    15 Str     7    14     -      x        x
    "bk_supplier_account"   Str       -  -       -    10     x      -        -
    "bk_start_param_regex"  OptStr    16 Str     2    9      -      x        x
    "service_instance_id"   Int       -  -       -    22     x      -        -
    "bind_info"             BindInfo  -  -       -    1      -      x        -
    "bk_created_at"         -         -  -       -    3      x      -        -
    "bk_updated_at"         -         -  -       -    11     x      -        -
    "bk_created_by"         -         -  -       -    4      x      -        -
    "bk_updated_by"         -         -  -       -    12     x      -        -
    "port"                  -         -  -       -    -      -      -        x
    "protocol"              -         -  -       -    -      -      -        x
    "bind_ip"               -         -  -       -    -      -      -        x
    "bk_enable_port"        -         -  -       -    -      -      -        x
    "bk_gateway_ip"         -         -  -       -    -      -      -        x
    "bk_gateway_port"       -         -  -       -    -      -      -        x
    "bk_gateway_protocol"   -         -  -       -    -      -      -        x
    "bk_gateway_city"       -         -  -       -    -      -      -        x
};

/// Which positioned column a list is made from.
#[derive(Clone, Copy)]
enum Column {
    Property,
    Lock,
    Stored,
}

const fn position(f: &Field, column: Column) -> Option<usize> {
    match (column, f.property) {
        (Column::Property, Some((p, _))) => Some(p),
        (Column::Property, None) => None,
        (Column::Lock, _) => f.lock,
        (Column::Stored, _) => f.stored,
    }
}

/// The position in [`PROPERTY`] of the field named `name`; a field without one fails the build
/// where a constant asks for it.
pub const fn property_position(name: &str) -> usize {
    let mut i = 0;
    while i < FIELDS.len() {
        if let Some((p, _)) = FIELDS[i].property
            && same(FIELDS[i].name, name)
        {
            return p;
        }
        i += 1;
    }
    panic!("not a process property")
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The value type of the property at position `p` (a row holds it: see [`names`]).
const fn property_type(p: usize) -> Ty {
    let mut i = 0;
    loop {
        if let Some((q, ty)) = FIELDS[i].property
            && q == p
        {
            return ty;
        }
        i += 1;
    }
}

/// The names of a positioned column, in its order. Every position from 0 to `N - 1` must be
/// held by exactly one row (checked when the constant is built: a gap or a clash does not
/// compile).
const fn names<const N: usize>(column: Column) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < FIELDS.len() {
        if let Some(p) = position(&FIELDS[i], column) {
            assert!(
                p < N && out[p].is_empty(),
                "a position out of range or held twice"
            );
            out[p] = FIELDS[i].name;
        }
        i += 1;
    }
    let mut p = 0;
    while p < N {
        assert!(!out[p].is_empty(), "a position no row holds");
        p += 1;
    }
    out
}

/// The fields a process template can lock, in bk-cmdb's order.
pub const LOCKABLE: [&str; 17] = names(Column::Lock);

/// The known keys of a stored process, by their bit (`store/compact.rs`).
pub const STORED: [&str; 28] = names(Column::Stored);

/// A process template's `property` fields (all but `bind_info`), in bk-cmdb's
/// `ProcessProperty` order, with their value types.
pub const PROPERTY: [(&str, Ty); 17] = {
    let names: [&str; 17] = names(Column::Property);
    let mut out = [("", Ty::Int); 17];
    let mut p = 0;
    while p < 17 {
        out[p] = (names[p], property_type(p));
        p += 1;
    }
    out
};

/// The fields of bk-cmdb's `metadata.Process` struct, in its order, with their Go types.
pub fn struct_fields() -> impl Iterator<Item = (&'static str, GoType)> {
    FIELDS.iter().filter_map(|f| f.go.map(|go| (f.name, go)))
}

fn row(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

/// True if the server sets `name` (see [`Field::server_set`]).
pub fn is_server_set(name: &str) -> bool {
    row(name).is_some_and(|f| f.server_set)
}

/// True if an update may set `name` (see [`Field::editable`]).
pub fn is_editable(name: &str) -> bool {
    row(name).is_some_and(|f| f.editable)
}

/// True if an explicit `null` in an update clears `name` (see [`Field::clearable`]).
pub fn is_clearable(name: &str) -> bool {
    row(name).is_some_and(|f| f.clearable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        for (i, f) in FIELDS.iter().enumerate() {
            assert!(
                FIELDS[..i].iter().all(|g| g.name != f.name),
                "{} twice",
                f.name
            );
        }
    }

    /// The stored positions follow the names' byte order, which the compact encoding relies on
    /// (its known keys merge with the others in a map's key order).
    #[test]
    fn stored_keys_are_sorted() {
        assert!(STORED.windows(2).all(|w| w[0] < w[1]), "{STORED:?}");
    }

    /// Every attribute a create validates is a stored field, and an attribute is editable
    /// exactly when the server does not set it.
    #[test]
    fn the_attributes_are_stored_fields() {
        for a in super::super::process::ATTRS {
            let f = row(a.id).unwrap_or_else(|| panic!("{} has no row", a.id));
            assert!(f.stored.is_some(), "{} is not stored", a.id);
            assert_eq!(f.editable, !f.server_set, "{}", a.id);
        }
    }

    /// A lockable field is a template property, and clearable by an explicit null.
    #[test]
    fn lockable_fields_are_properties() {
        for name in LOCKABLE {
            assert!(PROPERTY.iter().any(|(p, _)| *p == name), "{name}");
            assert!(is_clearable(name), "{name}");
        }
    }
}
