//! The raw MongoDB-style `condition` maps some bk-cmdb reads pass to the database unchanged
//! (search_business, search_set, search_module, search_cloud_area; spec topology 4.2):
//! `{field: value}` equality (an array field matches by element), `{field: {$op: …}}` with
//! `$eq $ne $in $nin $lt $lte $gt $gte $regex $options $exists $not`, and `$and`/`$or`/`$nor`
//! lists. Parsed once ([`Cond::parse`]), evaluated per record ([`Cond::matches`]). An operator
//! MongoDB would reject is refused at parse time (bk-cmdb answers a database error).

use crate::error::{CcError, code};
use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

#[derive(Clone, Debug)]
pub enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Nor(Vec<Cond>),
    Field(String, Vec<Test>),
}

#[derive(Clone, Debug)]
pub enum Test {
    Eq(Value),
    Ne(Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Cmp(&'static str, Value),
    Regex(Regex),
    Exists(bool),
    Not(Vec<Test>),
}

fn db_error() -> CcError {
    CcError::plain(code::DB_SELECT)
}

/// A case-insensitive substring regex of `text` (bk-cmdb's fuzzy string search, the text
/// escaped).
pub fn fuzzy(text: &str) -> Value {
    let mut m = Map::new();
    m.insert("$regex".into(), Value::String(regex::escape(text)));
    m.insert("$options".into(), Value::String("i".into()));
    Value::Object(m)
}

impl Cond {
    /// Parses a condition map.
    pub fn parse(map: &Map<String, Value>) -> Result<Cond, CcError> {
        let mut all = Vec::new();
        for (k, v) in map {
            match k.as_str() {
                "$and" | "$or" | "$nor" => {
                    let Value::Array(items) = v else {
                        return Err(db_error());
                    };
                    let mut subs = Vec::new();
                    for item in items {
                        let Value::Object(m) = item else {
                            return Err(db_error());
                        };
                        subs.push(Cond::parse(m)?);
                    }
                    all.push(match k.as_str() {
                        "$and" => Cond::And(subs),
                        "$or" => Cond::Or(subs),
                        _ => Cond::Nor(subs),
                    });
                }
                k if k.starts_with('$') => return Err(db_error()),
                _ => all.push(Cond::Field(k.clone(), tests(v)?)),
            }
        }
        Ok(Cond::And(all))
    }

    pub fn matches(&self, get: &dyn Fn(&str) -> Option<Value>) -> bool {
        match self {
            Cond::And(c) => c.iter().all(|c| c.matches(get)),
            Cond::Or(c) => c.iter().any(|c| c.matches(get)),
            Cond::Nor(c) => !c.iter().any(|c| c.matches(get)),
            Cond::Field(f, tests) => {
                let v = get(f);
                tests.iter().all(|t| t.matches(v.as_ref()))
            }
        }
    }
}

fn tests(v: &Value) -> Result<Vec<Test>, CcError> {
    let Value::Object(ops) = v else {
        return Ok(vec![Test::Eq(v.clone())]);
    };
    if !ops.keys().any(|k| k.starts_with('$')) {
        return Ok(vec![Test::Eq(v.clone())]);
    }
    let mut out = Vec::new();
    let list = |x: &Value| -> Result<Vec<Value>, CcError> {
        match x {
            Value::Array(a) => Ok(a.clone()),
            _ => Err(db_error()),
        }
    };
    for (op, x) in ops {
        out.push(match op.as_str() {
            "$eq" => Test::Eq(x.clone()),
            "$ne" => Test::Ne(x.clone()),
            "$in" => Test::In(list(x)?),
            "$nin" => Test::Nin(list(x)?),
            "$lt" => Test::Cmp("lt", x.clone()),
            "$lte" => Test::Cmp("lte", x.clone()),
            "$gt" => Test::Cmp("gt", x.clone()),
            "$gte" => Test::Cmp("gte", x.clone()),
            "$exists" => Test::Exists(match x {
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::Null => false,
                _ => true,
            }),
            "$regex" => {
                let Value::String(p) = x else {
                    return Err(db_error());
                };
                let opts = ops.get("$options").and_then(Value::as_str).unwrap_or("");
                Test::Regex(
                    RegexBuilder::new(p)
                        .case_insensitive(opts.contains('i'))
                        .multi_line(opts.contains('m'))
                        .dot_matches_new_line(opts.contains('s'))
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|_| db_error())?,
                )
            }
            "$options" => continue,
            "$not" => Test::Not(tests(x)?),
            _ => return Err(db_error()),
        });
    }
    Ok(out)
}

fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

fn eq(field: Option<&Value>, v: &Value) -> bool {
    match field {
        None => v.is_null(),
        Some(Value::Array(a)) => a.iter().any(|x| scalar_eq(x, v)) || Some(v) == field,
        Some(f) => scalar_eq(f, v),
    }
}

fn values(field: Option<&Value>) -> Vec<&Value> {
    match field {
        None => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v) => vec![v],
    }
}

impl Test {
    fn matches(&self, f: Option<&Value>) -> bool {
        match self {
            Test::Eq(v) => eq(f, v),
            Test::Ne(v) => !eq(f, v),
            Test::In(list) => list.iter().any(|v| eq(f, v)),
            Test::Nin(list) => !list.iter().any(|v| eq(f, v)),
            Test::Cmp(op, v) => values(f).into_iter().any(|x| cmp(op, x, v)),
            Test::Regex(re) => values(f)
                .into_iter()
                .any(|x| x.as_str().is_some_and(|s| re.is_match(s))),
            Test::Exists(want) => f.is_some() == *want,
            Test::Not(tests) => !tests.iter().all(|t| t.matches(f)),
        }
    }
}

fn cmp(op: &str, x: &Value, v: &Value) -> bool {
    let ord = match (x, v) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    };
    let Some(o) = ord else { return false };
    match op {
        "lt" => o.is_lt(),
        "lte" => o.is_le(),
        "gt" => o.is_gt(),
        _ => o.is_ge(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hit(cond: Value, rec: Value) -> bool {
        let c = Cond::parse(cond.as_object().unwrap()).unwrap();
        let m = rec.as_object().unwrap().clone();
        c.matches(&|f: &str| m.get(f).cloned())
    }

    #[test]
    fn operators() {
        let r = json!({"a": 5, "s": "MyShop2", "l": [1, 2]});
        assert!(hit(json!({"a": 5}), r.clone()));
        assert!(hit(json!({"l": 2}), r.clone()));
        assert!(hit(
            json!({"a": {"$in": [4, 5]}, "s": {"$ne": "x"}}),
            r.clone()
        ));
        assert!(hit(json!({"a": {"$gte": 5, "$lt": 6}}), r.clone()));
        assert!(hit(json!({"s": fuzzy("shop")}), r.clone()));
        assert!(!hit(json!({"s": fuzzy("sh.p")}), r.clone()));
        assert!(hit(
            json!({"$or": [{"a": 1}, {"s": {"$regex": "^My"}}]}),
            r.clone()
        ));
        assert!(hit(json!({"x": {"$exists": false}}), r.clone()));
        assert!(hit(json!({"a": {"$not": {"$in": [1]}}}), r.clone()));
        assert!(!hit(json!({"a": {"$nin": [5]}}), r));
        assert!(Cond::parse(json!({"a": {"$bogus": 1}}).as_object().unwrap()).is_err());
        assert!(Cond::parse(json!({"$where": "1"}).as_object().unwrap()).is_err());
    }
}
