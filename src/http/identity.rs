//! Who is asking, from the headers (spec 1.2, product.md section 3): user, supplier account,
//! language and request id, with bk-cmdb's precedence and legacy header names. A user named by
//! an `X-Bkapi-JWT` is believed only once its signature is verified (`auth.rs`).

use crate::error::Lang;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};

/// The request's headers as (name as the client spelt it, value) pairs; names are compared
/// case-insensitively.
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// The first header among `names` (compared case-insensitively) with a non-empty value.
    pub fn first(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| {
            self.0
                .iter()
                .find(|(k, v)| k.eq_ignore_ascii_case(n) && !v.is_empty())
                .map(|(_, v)| v.as_str())
        })
    }
}

pub const USER: &[&str] = &["X-Bkcmdb-User", "BK_User"];
pub const SUPPLIER: &[&str] = &[
    "X-Bkcmdb-Supplier-Account",
    "X-Bkapi-Supplier-Account",
    "HTTP_BK_SUPPLIER_ACCOUNT",
    "HTTP_BLUEKING_SUPPLIER_ID",
];
pub const LANGUAGE: &[&str] = &[
    "X-Bkcmdb-Language",
    "Blueking-Language",
    "HTTP_BLUEKING_LANGUAGE",
];
pub const REQUEST_ID: &[&str] = &["X-Request-Id", "X-Bkapi-Request-Id", "Cc_Request_Id"];

/// English only for the exact value `en`; otherwise the server's default.
pub fn language(h: &Headers, default: Lang) -> Lang {
    match h.first(LANGUAGE) {
        Some("en") => Lang::En,
        _ => default,
    }
}

/// The caller's request id, or a new one in bk-cmdb's form (`cc0000` + 20 characters).
pub fn request_id(h: &Headers) -> String {
    if let Some(rid) = h.first(REQUEST_ID) {
        return rid.to_string();
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = crate::clock::now_ms() as u64;
    let mut x = (t << 20) ^ n ^ (std::process::id() as u64).rotate_left(40);
    let alphabet = b"0123456789abcdefghijklmnopqrstuv";
    let mut id = String::from("cc0000");
    for i in 0..20 {
        if i == 10 {
            x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n;
        }
        id.push(alphabet[(x & 31) as usize] as char);
        x >>= 5;
    }
    id
}

/// `bk_username` from the gateway's `X-Bkapi-Authorization` JSON header.
pub fn gateway_user(h: &Headers) -> Option<String> {
    let raw = h.first(&["X-Bkapi-Authorization"])?;
    let v: Value = serde_json::from_str(raw).ok()?;
    v.get("bk_username")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `bk_username` from a legacy body or query object.
pub fn body_user(body: &Value) -> Option<String> {
    body.get("bk_username")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rid_shape() {
        let h = Headers(vec![]);
        let a = request_id(&h);
        assert_eq!(a.len(), 26);
        assert!(a.starts_with("cc0000"));
        assert_ne!(a, request_id(&h));
    }

    #[test]
    fn legacy_names() {
        let h = Headers(vec![
            ("bk_user".into(), "bob".into()),
            ("http_blueking_language".into(), "en".into()),
        ]);
        assert_eq!(h.first(USER), Some("bob"));
        assert_eq!(language(&h, Lang::Zh), Lang::En);
    }
}
