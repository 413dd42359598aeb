//! Paging and sorting as bk-cmdb's list APIs do them (`metadata/page.go` `BasePage`, and the
//! storage layer's `Find.Sort`/`Start`/`Limit`, spec 4.5).
//!
//! A request's `page` is `{start, limit, sort, enable_count}`. Which validation applies is the
//! API's choice ([`Page::validate`], [`Page::is_illegal`], [`Page::validate_with_enable_count`]);
//! the window itself ([`window`]) follows MongoDB: `limit` 0 means no limit. Sorting compares
//! values in BSON order (null and missing < numbers < strings < objects < arrays < booleans <
//! dates); ties keep the order the caller gave (storage order, id ascending).

use super::decode;
use crate::error::{CcError, code};
use crate::limits::{MAX_PAGE_SIZE, NO_LIMIT};
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// bk-cmdb `BasePage`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub start: i64,
    pub limit: i64,
    pub sort: String,
    pub enable_count: bool,
}

impl Page {
    /// `sort`, or `default` where the page names none.
    pub fn sort_or<'a>(&'a self, default: &'a str) -> &'a str {
        if self.sort.is_empty() {
            default
        } else {
            &self.sort
        }
    }

    /// How many `items` there are, and this page of them sorted by `keys` (`value_of` reads a
    /// field of one): `start` and `limit` as given to MongoDB.
    pub fn count_and_window<T>(
        &self,
        items: Vec<T>,
        keys: &[SortKey],
        value_of: impl Fn(&T, &str) -> SortValue,
    ) -> (usize, Vec<T>) {
        let count = items.len();
        let sorted = sort(items, keys, value_of);
        (count, window(sorted, self.start, self.limit))
    }

    /// The limit MongoDB is given: bk-cmdb's "no limit" (999999999) is none (0).
    pub fn mongo_limit(&self) -> i64 {
        if self.limit == NO_LIMIT {
            0
        } else {
            self.limit
        }
    }

    /// Decodes the `page` object of a request body as Go decodes a `BasePage` field: absent or
    /// `null` is the zero page; a wrong JSON type anywhere is 1199000.
    pub fn decode(obj: &Map<String, Value>, key: &str) -> Result<Page, CcError> {
        let Some(p) = decode::object(obj, key)? else {
            return Ok(Page::default());
        };
        Ok(Page {
            start: decode::int(p, "start")?,
            limit: decode::int(p, "limit")?,
            sort: decode::string(p, "sort")?,
            enable_count: decode::boolean(p, "enable_count")?,
        })
    }

    /// `BasePage.Validate(allowNoLimit)`: the name of the offending field, if any. With
    /// `enable_count`, every other field must keep its zero value.
    pub fn validate(&self, allow_no_limit: bool) -> Result<(), &'static str> {
        if self.enable_count {
            if self.start > 0 || self.limit > 0 || !self.sort.is_empty() {
                return Err("page");
            }
            return Ok(());
        }
        if self.start < 0 {
            return Err("start");
        }
        if self.limit < 0 {
            return Err("limit");
        }
        if self.limit > MAX_PAGE_SIZE && (self.limit != NO_LIMIT || !allow_no_limit) {
            return Err("limit");
        }
        Ok(())
    }

    /// `BasePage.IsIllegal`: a negative start, or a limit outside 1..=1000 other than
    /// 999999999.
    pub fn is_illegal(&self) -> bool {
        self.start < 0 || (self.limit > MAX_PAGE_SIZE && self.limit != NO_LIMIT) || self.limit <= 0
    }

    /// `BasePage.ValidateWithEnableCount(allowNoLimit, maxLimit)`, with its error codes.
    pub fn validate_with_enable_count(
        &self,
        allow_no_limit: bool,
        max_limit: Option<i64>,
    ) -> Result<(), CcError> {
        if self.enable_count {
            if self.start != 0 || self.limit != 0 || !self.sort.is_empty() {
                return Err(CcError::invalid("page.enable_count"));
            }
            return Ok(());
        }
        if self.start < 0 {
            return Err(CcError::with(code::PARAMS_IS_INVALID, "page.start"));
        }
        if self.limit <= 0 {
            return Err(CcError::with(code::PARAMS_IS_INVALID, "page.limit"));
        }
        let max = max_limit.unwrap_or(MAX_PAGE_SIZE);
        if self.limit > max && (allow_no_limit || self.limit != NO_LIMIT) {
            return Err(CcError::plain(code::PAGE_LIMIT_EXCEEDED));
        }
        Ok(())
    }
}

/// One sort item: a field path (dots reach into objects) and its direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortKey {
    pub field: String,
    pub desc: bool,
}

/// JSON record maps sorted by a `sort` text (see [`parse_sort`]; ties keep their order).
pub fn sort_maps(
    items: Vec<Map<String, Value>>,
    sort: &str,
) -> Result<Vec<Map<String, Value>>, CcError> {
    let keys = parse_sort(sort)?;
    Ok(self::sort(items, &keys, |m, f| {
        m.get(f).map_or(SortValue::Null, SortValue::of)
    }))
}

/// Parses a sort string as bk-cmdb's `Find.Sort` does: comma-separated items, each `field`,
/// `+field`, `-field`, `field:1` or `field:-1` (with `:`, only `-1` means descending). An
/// empty string is no sort.
///
/// A field MongoDB refuses as a sort path (empty, an empty dotted segment, or a leading `$`)
/// fails the query: bk-cmdb then answers 1199017, and so does this.
pub fn parse_sort(sort: &str) -> Result<Vec<SortKey>, CcError> {
    if sort.is_empty() {
        return Ok(Vec::new());
    }
    let mut keys = Vec::new();
    for item in sort.split(',') {
        let parts: Vec<&str> = item.trim().split(':').collect();
        let field = parts[0].trim_start_matches(['+', '-']);
        let desc = if parts.len() == 2 {
            parts[1].trim() == "-1"
        } else {
            parts[0].starts_with('-')
        };
        if field.split('.').any(str::is_empty) || field.starts_with('$') {
            return Err(CcError::plain(code::DB_SELECT));
        }
        keys.push(SortKey {
            field: field.to_string(),
            desc,
        });
    }
    Ok(keys)
}

/// A value as MongoDB compares it in a sort.
#[derive(Clone, Debug, PartialEq)]
pub enum SortValue {
    /// `null` or a missing field.
    Null,
    Int(i64),
    Float(f64),
    Str(String),
    Object(Vec<(String, SortValue)>),
    Array(Vec<SortValue>),
    Bool(bool),
    /// A BSON date, in milliseconds.
    Date(i64),
}

impl SortValue {
    /// The value at `path` (dot-separated) inside a JSON document.
    pub fn at(doc: &Value, path: &str) -> SortValue {
        let mut v = doc;
        for seg in path.split('.') {
            match v.get(seg) {
                Some(next) => v = next,
                None => return SortValue::Null,
            }
        }
        SortValue::of(v)
    }

    /// A JSON value; numbers that fit an `i64` stay integers.
    pub fn of(v: &Value) -> SortValue {
        match v {
            Value::Null => SortValue::Null,
            Value::Bool(b) => SortValue::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => SortValue::Int(i),
                None => SortValue::Float(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => SortValue::Str(s.clone()),
            Value::Array(a) => SortValue::Array(a.iter().map(SortValue::of).collect()),
            Value::Object(m) => SortValue::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), SortValue::of(v)))
                    .collect(),
            ),
        }
    }

    /// BSON's canonical type order.
    fn rank(&self) -> u8 {
        match self {
            SortValue::Null => 1,
            SortValue::Int(_) | SortValue::Float(_) => 2,
            SortValue::Str(_) => 3,
            SortValue::Object(_) => 4,
            SortValue::Array(_) => 5,
            SortValue::Bool(_) => 8,
            SortValue::Date(_) => 9,
        }
    }
}

fn cmp_num(a: &SortValue, b: &SortValue) -> Ordering {
    match (a, b) {
        (SortValue::Int(x), SortValue::Int(y)) => x.cmp(y),
        (SortValue::Int(x), SortValue::Float(y)) => (*x as f64).total_cmp(y),
        (SortValue::Float(x), SortValue::Int(y)) => x.total_cmp(&(*y as f64)),
        (SortValue::Float(x), SortValue::Float(y)) => x.total_cmp(y),
        _ => Ordering::Equal,
    }
}

impl Eq for SortValue {}

impl PartialOrd for SortValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SortValue {
    fn cmp(&self, other: &Self) -> Ordering {
        let by_rank = self.rank().cmp(&other.rank());
        if by_rank != Ordering::Equal {
            return by_rank;
        }
        match (self, other) {
            (SortValue::Str(a), SortValue::Str(b)) => a.as_bytes().cmp(b.as_bytes()),
            (SortValue::Bool(a), SortValue::Bool(b)) => a.cmp(b),
            (SortValue::Date(a), SortValue::Date(b)) => a.cmp(b),
            (SortValue::Array(a), SortValue::Array(b)) => a.cmp(b),
            (SortValue::Object(a), SortValue::Object(b)) => a.cmp(b),
            (SortValue::Null, SortValue::Null) => Ordering::Equal,
            (a, b) => cmp_num(a, b),
        }
    }
}

/// Sorts `items` by `keys`; `value_of(item, field)` gives an item's value for a field. The
/// sort is stable, so ties keep the caller's order.
pub fn sort<T>(
    items: Vec<T>,
    keys: &[SortKey],
    value_of: impl Fn(&T, &str) -> SortValue,
) -> Vec<T> {
    if keys.is_empty() {
        return items;
    }
    let mut decorated: Vec<(Vec<SortValue>, T)> = items
        .into_iter()
        .map(|it| (keys.iter().map(|k| value_of(&it, &k.field)).collect(), it))
        .collect();
    decorated.sort_by(|(a, _), (b, _)| {
        for (i, k) in keys.iter().enumerate() {
            let o = a[i].cmp(&b[i]);
            let o = if k.desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    decorated.into_iter().map(|(_, it)| it).collect()
}

/// The page of `items` MongoDB returns for `skip(start).limit(limit)`: `limit` 0 is no limit,
/// a negative `limit` returns its absolute value (a single batch). The caller has refused a
/// negative `start`.
pub fn window<T>(items: Vec<T>, start: i64, limit: i64) -> Vec<T> {
    let start = usize::try_from(start).unwrap_or(usize::MAX);
    let take = match limit {
        0 => usize::MAX,
        l => usize::try_from(l.unsigned_abs()).unwrap_or(usize::MAX),
    };
    items.into_iter().skip(start).take(take).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page(start: i64, limit: i64, sort: &str, enable_count: bool) -> Page {
        Page {
            start,
            limit,
            sort: sort.into(),
            enable_count,
        }
    }

    #[test]
    fn decode_is_go_like() {
        let body = json!({"page": {"start": 2, "limit": 10, "sort": "-id", "enable_count": false}});
        assert_eq!(
            Page::decode(body.as_object().unwrap(), "page").unwrap(),
            page(2, 10, "-id", false)
        );
        let body = json!({"PAGE": null});
        assert_eq!(
            Page::decode(body.as_object().unwrap(), "page").unwrap(),
            Page::default()
        );
        for bad in [
            json!({"page": 1}),
            json!({"page": {"limit": "10"}}),
            json!({"page": {"start": 1.5}}),
            json!({"page": {"sort": 1}}),
            json!({"page": {"enable_count": 1}}),
        ] {
            assert_eq!(
                Page::decode(bad.as_object().unwrap(), "page")
                    .unwrap_err()
                    .code,
                code::JSON_UNMARSHAL,
                "{bad}"
            );
        }
    }

    #[test]
    fn validate_matches_base_page() {
        assert_eq!(page(0, 0, "", false).validate(false), Ok(()));
        assert_eq!(page(0, 1000, "", false).validate(false), Ok(()));
        assert_eq!(page(-1, 10, "", false).validate(false), Err("start"));
        assert_eq!(page(0, -1, "", false).validate(false), Err("limit"));
        assert_eq!(page(0, 1001, "", false).validate(false), Err("limit"));
        assert_eq!(page(0, NO_LIMIT, "", false).validate(false), Err("limit"));
        assert_eq!(page(0, NO_LIMIT, "", false).validate(true), Ok(()));
        assert_eq!(page(0, 0, "", true).validate(false), Ok(()));
        assert_eq!(page(0, 1, "", true).validate(false), Err("page"));
        assert_eq!(page(0, 0, "id", true).validate(false), Err("page"));
        // Negative values with enable_count are not looked at, as in bk-cmdb.
        assert_eq!(page(-5, -5, "", true).validate(false), Ok(()));
    }

    #[test]
    fn is_illegal_matches_base_page() {
        assert!(page(0, 0, "", false).is_illegal());
        assert!(page(-1, 10, "", false).is_illegal());
        assert!(page(0, 1001, "", false).is_illegal());
        assert!(!page(0, 1000, "", false).is_illegal());
        assert!(!page(0, 1, "", false).is_illegal());
        assert!(!page(0, NO_LIMIT, "", false).is_illegal());
    }

    #[test]
    fn validate_with_enable_count_codes() {
        let code_of = |p: Page, allow: bool| {
            p.validate_with_enable_count(allow, None)
                .err()
                .map(|e| e.code)
        };
        assert_eq!(code_of(page(0, 10, "", false), false), None);
        assert_eq!(
            code_of(page(0, 10, "", true), false),
            Some(code::PARAMS_INVALID)
        );
        assert_eq!(
            code_of(page(-1, 10, "", false), false),
            Some(code::PARAMS_IS_INVALID)
        );
        assert_eq!(
            code_of(page(0, 0, "", false), false),
            Some(code::PARAMS_IS_INVALID)
        );
        assert_eq!(
            code_of(page(0, 1001, "", false), false),
            Some(code::PAGE_LIMIT_EXCEEDED)
        );
        // bk-cmdb's condition reads inverted: 999999999 passes only when no-limit is NOT allowed.
        assert_eq!(code_of(page(0, NO_LIMIT, "", false), false), None);
        assert_eq!(
            code_of(page(0, NO_LIMIT, "", false), true),
            Some(code::PAGE_LIMIT_EXCEEDED)
        );
    }

    #[test]
    fn sort_syntax() {
        let k = |f: &str, desc| SortKey {
            field: f.into(),
            desc,
        };
        assert_eq!(parse_sort("").unwrap(), vec![]);
        assert_eq!(
            parse_sort("id,-name, +x ,a:-1,b:1,-c:1,d: -1,e:-1:2,-f:2:3").unwrap(),
            vec![
                k("id", false),
                k("name", true),
                k("x", false),
                k("a", true),
                k("b", false),
                k("c", false),
                k("d", true),
                k("e", false),
                k("f", true)
            ]
        );
        for bad in ["id,", ",", "-", "a..b", "$x", "a:"] {
            let r = parse_sort(bad);
            if bad == "a:" {
                assert_eq!(r.unwrap(), vec![k("a", false)]);
            } else {
                assert_eq!(r.unwrap_err().code, code::DB_SELECT, "{bad}");
            }
        }
    }

    #[test]
    fn bson_order_and_stability() {
        let docs = vec![
            json!({"id": 1, "v": "b"}),
            json!({"id": 2, "v": 3}),
            json!({"id": 3}),
            json!({"id": 4, "v": true}),
            json!({"id": 5, "v": "a"}),
            json!({"id": 6, "v": 2.5}),
            json!({"id": 7, "v": null}),
            json!({"id": 8, "v": {"x": 1}}),
        ];
        let ids = |docs: &[Value]| {
            docs.iter()
                .map(|d| d["id"].as_i64().unwrap())
                .collect::<Vec<_>>()
        };
        let asc = sort(docs.clone(), &parse_sort("v").unwrap(), |d, f| {
            SortValue::at(d, f)
        });
        assert_eq!(ids(&asc), vec![3, 7, 6, 2, 5, 1, 8, 4]);
        let desc = sort(docs.clone(), &parse_sort("-v").unwrap(), |d, f| {
            SortValue::at(d, f)
        });
        assert_eq!(ids(&desc), vec![4, 8, 1, 5, 2, 6, 3, 7]);
        let nested = vec![
            json!({"id": 1, "l": {"k": "z"}}),
            json!({"id": 2, "l": {"k": "a"}}),
        ];
        assert_eq!(
            ids(&sort(nested, &parse_sort("l.k").unwrap(), |d, f| {
                SortValue::at(d, f)
            })),
            vec![2, 1]
        );
        assert!(SortValue::Date(1) > SortValue::Bool(true));
        assert!(SortValue::Str("é".into()) > SortValue::Str("z".into()));
    }

    #[test]
    fn window_is_mongo_skip_limit() {
        let v: Vec<i32> = (1..=5).collect();
        assert_eq!(window(v.clone(), 0, 0), vec![1, 2, 3, 4, 5]);
        assert_eq!(window(v.clone(), 1, 2), vec![2, 3]);
        assert_eq!(window(v.clone(), 4, 10), vec![5]);
        assert_eq!(window(v.clone(), 9, 10), Vec::<i32>::new());
        assert_eq!(window(v.clone(), 0, -2), vec![1, 2]);
        assert_eq!(window(v, 2, i64::MIN), vec![3, 4, 5]);
    }
}
