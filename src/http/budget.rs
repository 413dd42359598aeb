//! The memory budget of request bodies in flight (`serve --max-body-memory`): a request holds
//! its body's bytes, and then what parsing them will cost, from one shared budget; a request
//! that does not fit waits briefly for others to finish, then gets 503. A body whose parse alone
//! would need more than the whole budget can never fit, and is refused at once.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Bytes a parsed JSON value costs beyond its text, at most (serde_json's `Value` is 32 bytes; an
/// array element may have as much again of spare capacity; an object entry adds its key's
/// `String` and its B-tree slot).
pub const VALUE_COST: usize = 64;
/// Bytes an object key costs beyond its value (see `VALUE_COST`).
pub const KEY_COST: usize = 96;

/// The shared budget.
pub struct Budget {
    total: usize,
    used: Mutex<usize>,
    freed: Condvar,
}

/// Why bytes were not granted.
#[derive(Debug, PartialEq)]
pub enum Refused {
    /// More than the whole budget: it can never fit.
    Never,
    /// Others held the budget for longer than the wait.
    Busy,
}

/// Bytes held from the budget, given back on drop.
pub struct Held<'a> {
    budget: &'a Budget,
    bytes: usize,
}

impl Budget {
    pub fn new(total: usize) -> Budget {
        Budget {
            total,
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// An empty holding, to grow.
    pub fn none(&self) -> Held<'_> {
        Held {
            budget: self,
            bytes: 0,
        }
    }

    fn take(&self, bytes: usize, until: Instant) -> Result<(), Refused> {
        if bytes > self.total {
            return Err(Refused::Never);
        }
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used + bytes > self.total {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Refused::Busy);
            }
            used = self
                .freed
                .wait_timeout(used, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *used += bytes;
        Ok(())
    }

    fn give(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        *used -= bytes;
        self.freed.notify_all();
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        *self.used.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Held<'_> {
    /// Holds `more` bytes as well, waiting until `until` at most for them.
    pub fn grow(&mut self, more: usize, until: Instant) -> Result<(), Refused> {
        if self.bytes.saturating_add(more) > self.budget.total {
            return Err(Refused::Never);
        }
        self.budget.take(more, until)?;
        self.bytes += more;
        Ok(())
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.give(self.bytes);
    }
}

/// What parsing `raw` as JSON will cost beyond its text, at most: one pass counting the values
/// and object keys outside strings, and the bytes inside strings (copied into their `String`s).
pub fn parse_cost(raw: &[u8]) -> usize {
    let (mut values, mut keys, mut text) = (1usize, 0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    for &b in raw {
        if in_string {
            text += 1;
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b',' | b'[' | b'{' => values += 1,
            b':' => keys += 1,
            _ => {}
        }
    }
    values
        .saturating_mul(VALUE_COST)
        .saturating_add(keys.saturating_mul(KEY_COST))
        .saturating_add(text)
}

/// How long a request waits for its bytes before its 503.
pub fn wait() -> Duration {
    Duration::from_millis(crate::limits::BODY_MEMORY_WAIT_MILLIS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_share_the_budget_and_wait_for_each_other() {
        let b = Budget::new(100);
        let soon = || Instant::now() + Duration::from_millis(50);
        let mut a = b.none();
        a.grow(60, soon()).unwrap();
        let mut c = b.none();
        assert_eq!(c.grow(50, soon()), Err(Refused::Busy));
        assert_eq!(c.grow(101, soon()), Err(Refused::Never));
        c.grow(40, soon()).unwrap();
        assert_eq!(b.used(), 100);
        drop(a);
        assert_eq!(b.used(), 40);
        c.grow(60, soon()).unwrap();
        assert_eq!(c.grow(1, soon()), Err(Refused::Never));
        drop(c);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn a_waiting_holder_gets_what_another_gives_back() {
        let b = std::sync::Arc::new(Budget::new(10));
        let mut first = b.none();
        first.grow(10, Instant::now()).unwrap();
        let b2 = std::sync::Arc::clone(&b);
        let t = std::thread::spawn(move || {
            let mut h = b2.none();
            h.grow(5, Instant::now() + Duration::from_secs(30)).is_ok()
        });
        std::thread::sleep(Duration::from_millis(50));
        drop(first);
        assert!(t.join().unwrap());
    }

    #[test]
    fn parse_cost_counts_values_and_keys_outside_strings() {
        assert_eq!(parse_cost(b"0"), VALUE_COST);
        assert_eq!(parse_cost(b"[0,0,0]"), 4 * VALUE_COST);
        assert_eq!(
            parse_cost(br#"{"a":1,"b":"x,y:[{"}"#),
            // The bytes after each opening quote: `a"`, `b"`, `x,y:[{"`.
            3 * VALUE_COST + 2 * KEY_COST + 2 + 2 + 7
        );
        assert_eq!(parse_cost(br#"["\"],[", 1]"#), 3 * VALUE_COST + 6);
        // At least a `Value` (32 bytes) per element of a dense array.
        let dense = format!("[{}0]", "0,".repeat(100_000));
        assert!(parse_cost(dense.as_bytes()) >= 100_000 * 32);
    }
}
