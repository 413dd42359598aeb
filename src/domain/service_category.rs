//! Service-category rules (events-sync spec 3; bk-cmdb `ServiceCategory.Validate` and
//! coreservice `process/service_category.go`): the name rule and the two different uniqueness
//! rules of create and update. Pure: the categories come in as arguments.

use crate::limits::MAX_CATEGORY_NAME_RUNES;

/// What the uniqueness rules look at in a category.
#[derive(Clone, Copy, Debug)]
pub struct Cat<'a> {
    pub id: i64,
    pub name: &'a str,
    pub bk_parent_id: i64,
    pub bk_biz_id: i64,
}

/// Go's `\p{Han}`: the Han script's ranges (Unicode 15).
const HAN: &[(u32, u32)] = &[
    (0x2E80, 0x2E99),
    (0x2E9B, 0x2EF3),
    (0x2F00, 0x2FD5),
    (0x3005, 0x3005),
    (0x3007, 0x3007),
    (0x3021, 0x3029),
    (0x3038, 0x303B),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFA6D),
    (0xFA70, 0xFAD9),
    (0x16FE2, 0x16FE3),
    (0x16FF0, 0x16FF1),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2EBE0),
    (0x2F800, 0x2FA1D),
    (0x30000, 0x323AF),
];

/// One character of bk-cmdb's `^([\w\p{Han}]|[:\-\(\)])+$`, with Go's ASCII-only `\w`.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "_:-()".contains(c)
        || HAN.iter().any(|&(lo, hi)| (lo..=hi).contains(&(c as u32)))
}

/// The name rule, untrimmed: non-empty, at most 128 characters, letters, digits, `_`, Han
/// characters, `:`, `-`, `(` and `)` only.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_CATEGORY_NAME_RUNES
        && name.chars().all(name_char)
}

/// Create's uniqueness (`CreateServiceCategory`): among the categories of `biz` and the
/// built-in ones, a root's name must be unique among roots, a child's among every category
/// that is not a root, whatever its parent.
pub fn create_clash<'a>(
    all: impl IntoIterator<Item = Cat<'a>>,
    biz: i64,
    parent: i64,
    name: &str,
) -> bool {
    all.into_iter().any(|c| {
        (c.bk_biz_id == 0 || c.bk_biz_id == biz)
            && c.name == name
            && ((parent == 0) == (c.bk_parent_id == 0))
    })
}

/// Update's uniqueness (`UpdateServiceCategory`): among the other categories with the same
/// parent, of the record's business or built in.
pub fn update_clash<'a>(all: impl IntoIterator<Item = Cat<'a>>, record: Cat, name: &str) -> bool {
    all.into_iter().any(|c| {
        c.id != record.id
            && (c.bk_biz_id == 0 || c.bk_biz_id == record.bk_biz_id)
            && c.bk_parent_id == record.bk_parent_id
            && c.name == name
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(id: i64, name: &str, parent: i64, biz: i64) -> Cat<'_> {
        Cat {
            id,
            name,
            bk_parent_id: parent,
            bk_biz_id: biz,
        }
    }

    #[test]
    fn names() {
        assert!(valid_name("web-1:(a)_b"));
        assert!(valid_name("数据库"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name("a.b"));
        assert!(!valid_name("é"));
        assert!(!valid_name("（全角）"));
        assert!(valid_name(&"界".repeat(128)));
        assert!(!valid_name(&"界".repeat(129)));
    }

    #[test]
    fn create_and_update_differ() {
        let all = [
            cat(1, "Default", 0, 0),
            cat(2, "Mysql", 1, 0),
            cat(3, "mine", 0, 7),
            cat(4, "leaf", 3, 7),
            cat(5, "other", 0, 8),
        ];
        // A child named like a child of another root clashes; a root like a child does not.
        assert!(create_clash(all, 7, 3, "Mysql"));
        assert!(!create_clash(all, 7, 0, "Mysql"));
        assert!(create_clash(all, 7, 0, "Default"));
        assert!(!create_clash(all, 7, 0, "other"));
        assert!(create_clash(all, 8, 0, "other"));
        // Update compares only siblings.
        assert!(!update_clash(all, all[3], "Mysql"));
        assert!(update_clash(all, all[2], "Default"));
        assert!(!update_clash(all, all[2], "mine"));
    }
}
