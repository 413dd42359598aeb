//! Service-template rules (spec 4.1): the name rule of bk-cmdb's `ValidTopoNameField`, and the
//! text Go's `strconv.ParseInt` gives for a path id that is not a number. Pure.

use crate::limits::MAX_TEMPLATE_NAME_RUNES;

/// The name bk-cmdb stores: trimmed of spaces (only `' '`, as Go's `strings.Trim(name, " ")`),
/// or `None` if it breaks the rule (empty, over 256 runes, or one of `\|/:*,<>"?#` or ASCII
/// white space inside).
pub fn valid_name(name: &str) -> Option<&str> {
    let name = name.trim_matches(' ');
    let bad = |c: char| "\\|/:*,<>\"?#\t\n\x0c\r ".contains(c);
    if name.is_empty() || name.chars().count() > MAX_TEMPLATE_NAME_RUNES || name.contains(bad) {
        return None;
    }
    Some(name)
}

/// Parses a path id as Go's `strconv.ParseInt(s, 10, 64)`, giving Go's error text on failure.
pub fn parse_int(s: &str) -> Result<i64, String> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let reason = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        "value out of range"
    } else {
        "invalid syntax"
    };
    Err(format!(
        "strconv.ParseInt: parsing {}: {reason}",
        go_quote(s)
    ))
}

/// Go's `strconv.Quote` for the characters a URL path or query can carry.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(valid_name("  web  "), Some("web"));
        assert_eq!(valid_name("\tweb"), None);
        assert_eq!(valid_name("a/b"), None);
        assert_eq!(valid_name("   "), None);
        assert_eq!(valid_name("服务"), Some("服务"));
        assert!(valid_name(&"界".repeat(256)).is_some());
        assert!(valid_name(&"界".repeat(257)).is_none());
    }

    #[test]
    fn parse_int_texts() {
        assert_eq!(parse_int("+12"), Ok(12));
        assert_eq!(
            parse_int("abc").unwrap_err(),
            r#"strconv.ParseInt: parsing "abc": invalid syntax"#
        );
        assert_eq!(
            parse_int("").unwrap_err(),
            r#"strconv.ParseInt: parsing "": invalid syntax"#
        );
        assert_eq!(
            parse_int("99999999999999999999").unwrap_err(),
            r#"strconv.ParseInt: parsing "99999999999999999999": value out of range"#
        );
    }
}
