//! bk-cmdb's QueryFilter (`src/common/querybuilder`, spec topology 4.1): a tree of AND/OR
//! combinations of atom rules `{field, operator, value}`. [`Filter::parse`] decodes it once
//! (a shape Go cannot decode is 1199000), [`Filter::validate`] names the first bad key as
//! bk-cmdb's `Validate` does, and [`Filter::matches`] evaluates it against one record the way
//! MongoDB evaluates the query bk-cmdb builds from it. Every API that takes a filter uses this.

use crate::clock;
use crate::error::CcError;
use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};
use std::sync::LazyLock;

/// bk-cmdb's `querybuilder.MaxDeep`: a combination of atoms is 2 deep.
pub const MAX_DEPTH: usize = 3;
/// `DefaultMaxSliceElementsCount` and `DefaultMaxConditionOrRulesCount` (search_business).
pub const DEFAULT_MAX_ELEMENTS: usize = 500;
pub const DEFAULT_MAX_OR_RULES: usize = 20;

/// The operators bk-cmdb supports (`SupportOperators`).
const OPERATORS: &[&str] = &[
    "equal",
    "not_equal",
    "in",
    "not_in",
    "less",
    "less_or_equal",
    "greater",
    "greater_or_equal",
    "datetime_less",
    "datetime_less_or_equal",
    "datetime_greater",
    "datetime_greater_or_equal",
    "begins_with",
    "not_begins_with",
    "contains",
    "not_contains",
    "ends_with",
    "not_ends_with",
    "is_empty",
    "is_not_empty",
    "is_null",
    "is_not_null",
    "exist",
    "not_exist",
];

static FIELD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9][\d\w\-_.]*$").expect("the field pattern compiles"));

/// One node of a filter.
#[derive(Clone, Debug)]
pub enum Rule {
    Combined {
        condition: String,
        rules: Vec<Rule>,
    },
    Atom {
        field: String,
        operator: String,
        value: Value,
        /// The pattern of a string operator, compiled once (`None`: not one, or not a regex).
        regex: Option<Regex>,
    },
}

/// A parsed filter; `None` inside = no filter (JSON `null` or absent).
#[derive(Clone, Debug, Default)]
pub struct Filter(pub Option<Rule>);

/// What validation allows (`querybuilder.RuleOption`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Elements of an `in`/`not_in` array all of one type.
    pub same_type: bool,
    /// At most this many elements in an `in`/`not_in` array (0: no limit).
    pub max_elements: usize,
    /// At most this many rules in an OR / AND combination (0: no limit).
    pub max_or: usize,
    pub max_and: usize,
}

impl Filter {
    /// Decodes a filter as Go's `QueryFilter.UnmarshalJSON` does; a shape it cannot decode is
    /// 1199000.
    pub fn parse(v: Option<&Value>) -> Result<Filter, CcError> {
        match v {
            None | Some(Value::Null) => Ok(Filter(None)),
            Some(v) => Ok(Filter(Some(parse_rule(v)?))),
        }
    }

    /// bk-cmdb's `QueryFilter.Validate`: `Err(key)` names the first offending key relative to
    /// the filter (`""` when the top is not a combination).
    pub fn validate(&self, opt: &Options) -> Result<(), String> {
        self.validate_why(opt).map_err(|(k, _)| k)
    }

    /// [`Filter::validate`] with Go's error text as well: `Err((key, message))`.
    pub fn validate_why(&self, opt: &Options) -> Result<(), (String, String)> {
        match &self.0 {
            None => Ok(()),
            Some(r @ Rule::Combined { .. }) => validate_rule(r, opt),
            Some(Rule::Atom { .. }) => {
                Err((String::new(), "query filter must be combined rules".into()))
            }
        }
    }

    /// The depth of the tree (an atom is 1, a combination one more than its deepest rule).
    pub fn depth(&self) -> usize {
        self.0.as_ref().map_or(0, depth)
    }

    /// True if the record whose fields `get` returns matches (no filter matches everything).
    /// `get` answers `None` for a field the record does not have; list-valued fields (a host's
    /// IPs) come as arrays.
    pub fn matches(&self, get: &dyn Fn(&str) -> Option<Value>) -> bool {
        self.0.as_ref().is_none_or(|r| eval(r, get))
    }

    /// The fields the filter names.
    pub fn fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(r) = &self.0 {
            collect_fields(r, &mut out);
        }
        out
    }
}

fn collect_fields(r: &Rule, out: &mut Vec<String>) {
    match r {
        Rule::Combined { rules, .. } => rules.iter().for_each(|r| collect_fields(r, out)),
        Rule::Atom { field, .. } => out.push(field.clone()),
    }
}

fn parse_rule(v: &Value) -> Result<Rule, CcError> {
    let Value::Object(m) = v else {
        return Err(CcError::json());
    };
    if m.contains_key("condition") {
        let condition = match m.get("condition") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) => String::new(),
            _ => return Err(CcError::json()),
        };
        let rules = match m.get("rules") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.iter().map(parse_rule).collect::<Result<_, _>>()?,
            Some(_) => return Err(CcError::json()),
        };
        Ok(Rule::Combined { condition, rules })
    } else if m.contains_key("operator") {
        let text = |k: &str| -> Result<String, CcError> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(CcError::json()),
            }
        };
        let operator = text("operator")?;
        let field = text("field")?;
        let value = m.get("value").cloned().unwrap_or(Value::Null);
        let regex = pattern(&operator, &value);
        Ok(Rule::Atom {
            field,
            operator,
            value,
            regex,
        })
    } else {
        Err(CcError::json())
    }
}

/// The MongoDB `$regex` a string operator becomes (the value is not escaped, as in bk-cmdb).
fn pattern(op: &str, value: &Value) -> Option<Regex> {
    let Value::String(v) = value else {
        return None;
    };
    let (text, insensitive) = match op {
        "begins_with" | "not_begins_with" => (format!("^{v}"), false),
        "ends_with" | "not_ends_with" => (format!("{v}$"), false),
        "contains" => (v.clone(), true),
        "not_contains" => (v.clone(), false),
        _ => return None,
    };
    RegexBuilder::new(&text)
        .case_insensitive(insensitive)
        .size_limit(1 << 20)
        .build()
        .ok()
}

fn depth(r: &Rule) -> usize {
    match r {
        Rule::Atom { .. } => 1,
        Rule::Combined { rules, .. } => rules.iter().map(depth).max().unwrap_or(0) + 1,
    }
}

fn is_basic(v: &Value) -> bool {
    matches!(v, Value::Number(_) | Value::String(_) | Value::Bool(_))
}

fn type_name(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::Bool(_) => 1,
        _ => 2,
    }
}

/// A date or time text as bk-cmdb accepts it (`util.IsTime`, or `2006-01-02`): milliseconds.
fn datetime_ms(s: &str) -> Option<i64> {
    if let Some(ms) = clock::parse_ms(s) {
        return Some(ms);
    }
    // "2006-01-02", "2006-01-02 15:04:05", "2006-01-02T15:04:05" (UTC).
    let t = s.replace(' ', "T");
    let t = if t.len() == 10 {
        format!("{t}T00:00:00Z")
    } else if !t.ends_with('Z') && !t.contains('+') {
        format!("{t}Z")
    } else {
        t
    };
    clock::parse_ms(&t)
}

/// Go's `reflect.TypeOf(v)` and `%+v` of a decoded JSON value (numbers decode as
/// `json.Number`).
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "json.Number",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_value).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", go_value(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Go's `reflect.Kind` name of a value that is not an array.
fn go_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "invalid",
        Value::Bool(_) => "bool",
        Value::Number(_) | Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

fn basic(v: &Value) -> Result<(), String> {
    if is_basic(v) {
        Ok(())
    } else {
        Err(format!(
            "unknow value type: {} with value: {}",
            go_type(v),
            go_value(v)
        ))
    }
}

fn validate_value(op: &str, v: &Value, opt: &Options) -> Result<(), String> {
    let string = |v: &Value| -> Result<(), String> {
        if v.is_string() {
            Ok(())
        } else {
            Err(format!(
                "unknow value type of: {}, value: {}",
                go_type(v),
                go_value(v)
            ))
        }
    };
    match op {
        "equal" | "not_equal" => basic(v),
        "in" | "not_in" => match v {
            Value::Null => Ok(()),
            Value::Array(a) => {
                for item in a {
                    basic(item)?;
                }
                if opt.max_elements > 0 && a.len() > opt.max_elements {
                    return Err(format!(
                        "too many elements of slice: {} max({})",
                        a.len(),
                        opt.max_elements
                    ));
                }
                if opt.same_type {
                    let mut types: Vec<&str> = Vec::new();
                    for item in a {
                        let t = match type_name(item) {
                            0 => "numeric",
                            1 => "boolean",
                            _ => "string",
                        };
                        if !types.contains(&t) {
                            types.push(t);
                        }
                    }
                    if types.len() > 1 {
                        return Err(format!(
                            "slice element type not unique, types: [{}]",
                            types.join(" ")
                        ));
                    }
                }
                Ok(())
            }
            other => Err(format!(
                "unexpected value type: {}, expect array",
                go_kind(other)
            )),
        },
        "less" | "less_or_equal" | "greater" | "greater_or_equal" => {
            if v.is_number() {
                Ok(())
            } else {
                Err(format!(
                    "unknow value type: {}, value: {}",
                    go_type(v),
                    go_value(v)
                ))
            }
        }
        "datetime_less"
        | "datetime_less_or_equal"
        | "datetime_greater"
        | "datetime_greater_or_equal" => {
            string(v)?;
            let s = v.as_str().unwrap_or("");
            if datetime_ms(s).is_some() {
                Ok(())
            } else {
                Err(format!(
                    "parsing time {}: cannot parse {} as \"2006\"",
                    go_quote(s),
                    go_quote(s)
                ))
            }
        }
        "begins_with" | "not_begins_with" | "contains" | "not_contains" | "ends_with"
        | "not_ends_with" => {
            string(v)?;
            if v.as_str().is_some_and(str::is_empty) {
                Err("value shouldn't be empty".into())
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn validate_rule(r: &Rule, opt: &Options) -> Result<(), (String, String)> {
    let err = |k: &str, m: String| Err((k.to_string(), m));
    match r {
        Rule::Combined { condition, rules } => {
            if condition != "AND" && condition != "OR" {
                return err("condition", format!("unexpected condition: {condition}"));
            }
            if rules.is_empty() {
                return err("rules", "combined rules shouldn't be empty".into());
            }
            let max = if condition == "OR" {
                opt.max_or
            } else {
                opt.max_and
            };
            if max > 0 && rules.len() > max {
                return err(
                    "rules",
                    format!(
                        "too many rules of {condition} condition: {} max({max})",
                        rules.len()
                    ),
                );
            }
            for (i, rule) in rules.iter().enumerate() {
                validate_rule(rule, opt).map_err(|(k, m)| (format!("rules[{i}].{k}"), m))?;
            }
            Ok(())
        }
        Rule::Atom {
            field,
            operator,
            value,
            ..
        } => {
            if !OPERATORS.contains(&operator.as_str()) {
                return err("operator", format!("unsupported operator: {operator}"));
            }
            if !FIELD.is_match(field) {
                return err("field", format!("invalid field: {field}"));
            }
            validate_value(operator, value, opt).map_err(|m| ("value".to_string(), m))
        }
    }
}

/// MongoDB equality of two scalars (numbers compare by value).
fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

/// `{field: {$eq: v}}`: the field equals `v`, or is an array with an element equal to it.
fn eq(field: Option<&Value>, v: &Value) -> bool {
    match field {
        None => v.is_null(),
        Some(Value::Array(a)) => a.iter().any(|x| scalar_eq(x, v)) || v == field.unwrap_or(v),
        Some(f) => scalar_eq(f, v),
    }
}

/// The field's values a comparison or regex looks at: its elements if it is an array.
fn each_value(field: Option<&Value>) -> Vec<&Value> {
    match field {
        None => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v) => vec![v],
    }
}

fn cmp_num(field: Option<&Value>, v: &Value, ok: fn(f64, f64) -> bool) -> bool {
    let Some(y) = v.as_f64() else { return false };
    each_value(field)
        .into_iter()
        .any(|x| x.as_f64().is_some_and(|x| ok(x, y)))
}

fn cmp_time(field: Option<&Value>, v: &Value, ok: fn(i64, i64) -> bool) -> bool {
    let Some(y) = v.as_str().and_then(datetime_ms) else {
        return false;
    };
    each_value(field).into_iter().any(|x| {
        x.as_str()
            .and_then(clock::parse_ms)
            .is_some_and(|x| ok(x, y))
    })
}

fn regex_any(field: Option<&Value>, re: Option<&Regex>) -> bool {
    let Some(re) = re else { return false };
    each_value(field)
        .into_iter()
        .any(|x| x.as_str().is_some_and(|s| re.is_match(s)))
}

fn eval(r: &Rule, get: &dyn Fn(&str) -> Option<Value>) -> bool {
    match r {
        Rule::Combined { condition, rules } => {
            if condition == "OR" {
                rules.iter().any(|r| eval(r, get))
            } else {
                rules.iter().all(|r| eval(r, get))
            }
        }
        Rule::Atom {
            field,
            operator,
            value,
            regex,
        } => {
            let got = get(field);
            let f = got.as_ref();
            let in_list = || match value {
                Value::Array(a) => a.iter().any(|v| eq(f, v)),
                _ => false,
            };
            match operator.as_str() {
                "equal" => eq(f, value),
                "not_equal" => !eq(f, value),
                "in" => in_list(),
                "not_in" => !in_list(),
                "less" => cmp_num(f, value, |x, y| x < y),
                "less_or_equal" => cmp_num(f, value, |x, y| x <= y),
                "greater" => cmp_num(f, value, |x, y| x > y),
                "greater_or_equal" => cmp_num(f, value, |x, y| x >= y),
                "datetime_less" => cmp_time(f, value, |x, y| x < y),
                "datetime_less_or_equal" => cmp_time(f, value, |x, y| x <= y),
                "datetime_greater" => cmp_time(f, value, |x, y| x > y),
                "datetime_greater_or_equal" => cmp_time(f, value, |x, y| x >= y),
                "begins_with" | "contains" | "ends_with" => regex_any(f, regex.as_ref()),
                "not_begins_with" | "not_contains" | "not_ends_with" => {
                    !regex_any(f, regex.as_ref())
                }
                "is_empty" => matches!(f, Some(Value::Array(a)) if a.is_empty()),
                "is_not_empty" => !matches!(f, Some(Value::Array(a)) if a.is_empty()),
                "is_null" => matches!(f, None | Some(Value::Null)),
                "is_not_null" => !matches!(f, None | Some(Value::Null)),
                "exist" => f.is_some(),
                "not_exist" => f.is_none(),
                _ => false,
            }
        }
    }
}

/// A record map as the filter sees it: `list_fields` (comma-joined in the map) become arrays,
/// `""` an absent list (bk-cmdb stores an empty list as null).
pub fn getter<'a>(
    map: &'a Map<String, Value>,
    list_fields: &'a [&'a str],
) -> impl Fn(&str) -> Option<Value> + 'a {
    move |field: &str| {
        let v = map.get(field)?;
        if list_fields.contains(&field) {
            return Some(match v {
                Value::String(s) if s.is_empty() => Value::Null,
                Value::String(s) => {
                    Value::Array(s.split(',').map(|p| Value::String(p.into())).collect())
                }
                other => other.clone(),
            });
        }
        Some(v.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(v: Value) -> Filter {
        Filter::parse(Some(&v)).unwrap()
    }

    fn hit(filter: Value, rec: Value) -> bool {
        let m = rec.as_object().unwrap().clone();
        let lists = ["ips"];
        let get = getter(&m, &lists);
        f(filter).matches(&get)
    }

    fn rule(field: &str, op: &str, value: Value) -> Value {
        json!({"condition": "AND", "rules": [{"field": field, "operator": op, "value": value}]})
    }

    #[test]
    fn shapes_go_cannot_decode_are_1199000() {
        for v in [
            json!({"x": 1}),
            json!("AND"),
            json!([]),
            json!({"condition": 1}),
            json!({"condition": "AND", "rules": {}}),
            json!({"condition": "AND", "rules": [{"field": "a"}]}),
            json!({"operator": "equal", "field": 3}),
        ] {
            let e = Filter::parse(Some(&v)).unwrap_err();
            assert_eq!(e.code, crate::error::code::JSON_UNMARSHAL, "{v}");
        }
        assert!(Filter::parse(Some(&Value::Null)).unwrap().0.is_none());
    }

    #[test]
    fn validation_names_the_first_bad_key() {
        let o = Options {
            same_type: true,
            ..Options::default()
        };
        let v = |x: Value| f(x).validate(&o);
        assert_eq!(
            v(json!({"field": "a", "operator": "equal", "value": 1})),
            Err(String::new())
        );
        assert_eq!(
            v(json!({"condition": "XOR", "rules": []})),
            Err("condition".into())
        );
        assert_eq!(
            v(json!({"condition": "AND", "rules": []})),
            Err("rules".into())
        );
        assert_eq!(
            v(rule("a", "like", json!(1))),
            Err("rules[0].operator".into())
        );
        assert_eq!(
            v(rule("-a", "equal", json!(1))),
            Err("rules[0].field".into())
        );
        assert_eq!(
            v(rule("a", "equal", json!([1]))),
            Err("rules[0].value".into())
        );
        assert_eq!(
            v(rule("a", "in", json!([1, "x"]))),
            Err("rules[0].value".into())
        );
        assert_eq!(v(rule("a", "in", Value::Null)), Ok(()));
        assert_eq!(
            v(rule("a", "less", json!("1"))),
            Err("rules[0].value".into())
        );
        assert_eq!(
            v(rule("a", "contains", json!(""))),
            Err("rules[0].value".into())
        );
        assert_eq!(
            v(rule("a", "datetime_less", json!("yesterday"))),
            Err("rules[0].value".into())
        );
        assert_eq!(v(rule("a", "datetime_less", json!("2026-01-02"))), Ok(()));
        assert_eq!(v(rule("a", "is_null", json!({"any": "thing"}))), Ok(()));
        let nested = json!({"condition": "AND", "rules": [{"condition": "OR", "rules": [
            {"condition": "AND", "rules": [{"field": "a", "operator": "exist"}]}]}]});
        assert_eq!(f(nested).depth(), 4);
        let limited = Options {
            max_or: 1,
            max_elements: 2,
            ..o
        };
        let two_or = json!({"condition": "OR", "rules": [
            {"field": "a", "operator": "exist"}, {"field": "b", "operator": "exist"}]});
        assert_eq!(f(two_or).validate(&limited), Err("rules".into()));
        assert_eq!(
            f(rule("a", "in", json!([1, 2, 3]))).validate(&limited),
            Err("rules[0].value".into())
        );
    }

    #[test]
    fn every_operator() {
        let r = json!({"n": 5, "s": "Web-01", "ips": "10.0.0.1,10.0.0.2", "nul": null,
                       "t": "2026-03-04T05:06:07.000Z", "arr": []});
        let yes = |field: &str, op: &str, v: Value| assert!(hit(rule(field, op, v), r.clone()));
        let no = |field: &str, op: &str, v: Value| assert!(!hit(rule(field, op, v), r.clone()));
        yes("n", "equal", json!(5));
        yes("n", "equal", json!(5.0));
        no("n", "equal", json!("5"));
        yes("ips", "equal", json!("10.0.0.2"));
        yes("n", "not_equal", json!(4));
        yes("missing", "not_equal", json!(4));
        yes("s", "in", json!(["x", "Web-01"]));
        yes("ips", "in", json!(["10.0.0.1"]));
        no("n", "in", Value::Null);
        yes("n", "not_in", json!([1, 2]));
        yes("n", "less", json!(6));
        no("n", "less", json!(5));
        yes("n", "less_or_equal", json!(5));
        yes("n", "greater", json!(4.5));
        yes("n", "greater_or_equal", json!(5));
        no("s", "greater", json!(1));
        yes("t", "datetime_less", json!("2026-03-05"));
        yes("t", "datetime_less_or_equal", json!("2026-03-04T05:06:07Z"));
        yes("t", "datetime_greater", json!("2026-03-04"));
        no("t", "datetime_greater_or_equal", json!("2027-01-01"));
        yes("s", "begins_with", json!("Web"));
        no("s", "begins_with", json!("web"));
        yes("s", "not_begins_with", json!("web"));
        yes("s", "contains", json!("eb-0"));
        yes("s", "contains", json!("WEB"));
        no("s", "not_contains", json!("eb"));
        yes("s", "not_contains", json!("WEB"));
        yes("s", "ends_with", json!("01"));
        yes("s", "not_ends_with", json!("02"));
        yes("ips", "begins_with", json!("10\\.0"));
        yes("arr", "is_empty", Value::Null);
        no("n", "is_empty", Value::Null);
        yes("n", "is_not_empty", Value::Null);
        yes("nul", "is_null", Value::Null);
        yes("missing", "is_null", Value::Null);
        yes("n", "is_not_null", Value::Null);
        yes("nul", "exist", Value::Null);
        yes("missing", "not_exist", Value::Null);
        no("nul", "not_exist", Value::Null);
    }

    #[test]
    fn and_or() {
        let r = json!({"a": 1, "b": 2});
        let both = |c: &str, x: i64, y: i64| {
            json!({"condition": c, "rules": [
                {"field": "a", "operator": "equal", "value": x},
                {"condition": "AND", "rules": [{"field": "b", "operator": "equal", "value": y}]}]})
        };
        assert!(hit(both("AND", 1, 2), r.clone()));
        assert!(!hit(both("AND", 1, 3), r.clone()));
        assert!(hit(both("OR", 9, 2), r.clone()));
        assert!(!hit(both("OR", 9, 3), r));
    }
}
