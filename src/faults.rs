//! Fault injection for `serve --admin` (`POST`/`GET`/`DELETE /_cmdb/faults`): rules that make
//! the next calls of an operation (or a fraction of them) answer a given bk-cmdb code and
//! message, an HTTP status, after a delay, or with a dropped connection. Pure bookkeeping: the
//! HTTP edge asks [`Faults::take`] before running a call and acts on the [`Action`].

use crate::limits::{MAX_FAULT_DELAY_MS, MAX_FAULTS};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::{Mutex, PoisonError};

/// A rule as posted: which calls, how many, and what happens to them.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The operation's ESB name (`create_process_instance`); `"*"` or absent: every operation.
    #[serde(default)]
    pub operation: Option<String>,
    /// How many calls it applies to; absent: every call until `DELETE /_cmdb/faults`.
    #[serde(default)]
    pub times: Option<u64>,
    /// The share of matching calls it applies to, in (0, 1]; default 1.
    #[serde(default)]
    pub fraction: Option<f64>,
    /// Seed of the draw for `fraction` (for a repeatable run).
    #[serde(default)]
    pub seed: Option<u64>,
    /// The bk-cmdb code answered (with `result: false`).
    #[serde(default)]
    pub code: Option<i64>,
    /// The message answered with `code` (default: the code's catalogue text).
    #[serde(default)]
    pub message: Option<String>,
    /// The HTTP status answered (default 200; with no `code`, the code is 1199999).
    #[serde(default)]
    pub status: Option<u16>,
    /// Milliseconds to wait before answering (at most `MAX_FAULT_DELAY_MS`).
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Close the connection without an answer.
    #[serde(default)]
    pub drop: bool,
}

/// What to do with one call.
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    pub delay_ms: u64,
    pub drop: bool,
    /// `(HTTP status, bk-cmdb code, message)` to answer instead of running the call.
    pub answer: Option<(u16, i64, Option<String>)>,
}

/// A rule in force: what is left of it and its draw.
#[derive(Clone, Debug, Serialize)]
pub struct Active {
    pub id: u64,
    #[serde(flatten)]
    pub rule: Rule,
    /// Calls it still applies to (`null`: no end).
    pub remaining: Option<u64>,
    /// Calls it has applied to.
    pub applied: u64,
    #[serde(skip)]
    rng: u64,
}

/// The rules in force, in the order they were posted.
#[derive(Default)]
pub struct Faults {
    inner: Mutex<(Vec<Active>, u64)>,
}

/// splitmix64: a small, good-enough generator for the `fraction` draw.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rule {
    /// Reads and checks a posted rule; the error says what is wrong.
    pub fn parse(body: Value) -> Result<Rule, String> {
        let rule: Rule = serde_json::from_value(body).map_err(|e| format!("not a fault: {e}"))?;
        if let Some(f) = rule.fraction
            && !(f > 0.0 && f <= 1.0)
        {
            return Err(format!("fraction must be in (0, 1], not {f}"));
        }
        if rule.times == Some(0) {
            return Err("times must be at least 1".into());
        }
        if let Some(ms) = rule.delay_ms
            && ms > MAX_FAULT_DELAY_MS
        {
            return Err(format!("delay_ms may be at most {MAX_FAULT_DELAY_MS}"));
        }
        if let Some(s) = rule.status
            && !(200..=599).contains(&s)
        {
            return Err(format!("status must be an HTTP status (200-599), not {s}"));
        }
        if rule.code.is_none() && rule.status.is_none() && rule.delay_ms.is_none() && !rule.drop {
            return Err("a fault needs code, status, delay_ms or drop".into());
        }
        Ok(rule)
    }

    fn matches(&self, operation: &str) -> bool {
        match self.operation.as_deref() {
            None | Some("*") => true,
            Some(op) => op == operation,
        }
    }
}

impl Faults {
    /// Adds a rule; returns its id, or an error when `MAX_FAULTS` are in force.
    pub fn add(&self, rule: Rule, seed: u64) -> Result<u64, String> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (rules, last) = &mut *inner;
        if rules.len() >= MAX_FAULTS {
            return Err(format!("at most {MAX_FAULTS} faults may be in force"));
        }
        *last += 1;
        let id = *last;
        rules.push(Active {
            id,
            remaining: rule.times,
            applied: 0,
            rng: rule.seed.unwrap_or(seed),
            rule,
        });
        Ok(id)
    }

    /// The rules in force.
    pub fn list(&self) -> Vec<Active> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.0.clone()
    }

    /// Removes every rule; returns how many there were.
    pub fn clear(&self) -> usize {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let n = inner.0.len();
        inner.0.clear();
        n
    }

    /// The fault for one call of `operation`, if a rule takes it: the first rule in force that
    /// matches and whose draw hits. Taking it uses up one of its `times`; a used-up rule goes.
    pub fn take(&self, operation: &str) -> Option<Action> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let rules = &mut inner.0;
        let i = rules.iter_mut().position(|a| {
            if !a.rule.matches(operation) {
                return false;
            }
            match a.rule.fraction {
                Some(f) if f < 1.0 => (next(&mut a.rng) >> 11) as f64 / (1u64 << 53) as f64 <= f,
                _ => true,
            }
        })?;
        let a = &mut rules[i];
        a.applied += 1;
        if let Some(r) = &mut a.remaining {
            *r -= 1;
        }
        let rule = &a.rule;
        let answer = match (rule.code, rule.status) {
            (None, None) => None,
            (code, status) => Some((
                status.unwrap_or(200),
                code.unwrap_or(crate::error::code::INTERNAL),
                rule.message.clone(),
            )),
        };
        let action = Action {
            delay_ms: rule.delay_ms.unwrap_or(0),
            drop: rule.drop,
            answer,
        };
        if a.remaining == Some(0) {
            rules.remove(i);
        }
        Some(action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_counted_fault_applies_exactly_that_many_times() {
        let f = Faults::default();
        let rule = Rule::parse(json!({"operation": "create_process_instance", "times": 3,
                                      "code": 1199014, "message": "dup"}))
        .unwrap();
        f.add(rule, 1).unwrap();
        assert_eq!(f.take("list_process_instance"), None);
        for _ in 0..3 {
            let a = f.take("create_process_instance").unwrap();
            assert_eq!(a.answer, Some((200, 1199014, Some("dup".into()))));
        }
        assert_eq!(f.take("create_process_instance"), None);
        assert!(f.list().is_empty());
    }

    #[test]
    fn a_fraction_applies_to_about_that_share() {
        let f = Faults::default();
        f.add(
            Rule::parse(json!({"fraction": 0.25, "status": 503, "seed": 7})).unwrap(),
            0,
        )
        .unwrap();
        let hits = (0..10_000).filter(|_| f.take("x").is_some()).count();
        assert!((2000..3000).contains(&hits), "{hits}");
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in [
            json!({"code": 1, "fraction": 0}),
            json!({"code": 1, "fraction": 1.5}),
            json!({"code": 1, "times": 0}),
            json!({"operation": "x"}),
            json!({"delay_ms": MAX_FAULT_DELAY_MS + 1}),
            json!({"status": 99}),
            json!({"code": 1, "nonsense": true}),
        ] {
            assert!(Rule::parse(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn at_most_max_faults() {
        let f = Faults::default();
        for _ in 0..MAX_FAULTS {
            f.add(Rule::parse(json!({"drop": true})).unwrap(), 0)
                .unwrap();
        }
        assert!(
            f.add(Rule::parse(json!({"drop": true})).unwrap(), 0)
                .is_err()
        );
        assert_eq!(f.clear(), MAX_FAULTS);
    }
}
