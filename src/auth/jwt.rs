//! The API gateway's `X-Bkapi-JWT` (spec bk-auth.md 2.4 and 4): verified as bk-cmdb's apiserver
//! does with golang-jwt v4 (`src/common/resource/jwt/jwt.go`): three segments, the header, the
//! claims, an RSA algorithm (RS256/384/512; the gateway signs RS512), the signature against the
//! configured public key, `exp`/`iat`/`nbf` when present, then `app.verified` and
//! `user.username`. The error texts are Go's and bk-cmdb's, which the HTTP edge answers with.

use super::rsa::{Hash, PublicKey};
use crate::limits::MAX_JWT_BYTES;
use serde_json::Value;

/// What a valid token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub app_code: String,
    pub username: String,
}

/// Why a token was refused: bk-cmdb's text, and the class the ESB answers by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtError {
    pub text: String,
    pub kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Not a token, a wrong algorithm or signature, or used before its time.
    Invalid,
    /// Signed, but `exp` has passed.
    Expired,
    /// Signed and current, but the app is missing or not verified.
    App,
    /// Signed and current, but the user is missing or has no name.
    User,
}

fn err(kind: Kind, text: impl Into<String>) -> JwtError {
    JwtError {
        text: text.into(),
        kind,
    }
}

/// Go's `base64.RawURLEncoding.DecodeString`, with its error text.
fn decode_segment(s: &str) -> Result<Vec<u8>, String> {
    let illegal = |i: usize| format!("illegal base64 data at input byte {i}");
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    let mut n = 0usize;
    for (i, c) in s.bytes().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            b'\r' | b'\n' => continue,
            _ => return Err(illegal(i)),
        } as u32;
        n += 1;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if n % 4 == 1 {
        return Err(illegal(s.len() - 1));
    }
    Ok(out)
}

/// The text Go's `encoding/json` gives for bytes that do not decode into a map or struct.
fn json_error(bytes: &[u8], target: &str) -> Option<String> {
    match serde_json::from_slice::<Value>(bytes) {
        Err(e) if e.is_eof() => Some("unexpected end of JSON input".into()),
        Err(e) => {
            // serde names the line and column of the character it refused; Go names the
            // character (only the common "beginning of value" case is reproduced).
            let first = bytes.iter().copied().find(|b| !b.is_ascii_whitespace());
            let c = if e.line() == 1 && e.column() > 0 {
                bytes.get(e.column() - 1).copied().or(first)
            } else {
                first
            };
            Some(format!(
                "invalid character '{}' looking for beginning of value",
                c.unwrap_or(b'?') as char
            ))
        }
        Ok(Value::Object(_)) | Ok(Value::Null) => None,
        Ok(v) => {
            let kind = match v {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "bool",
            };
            Some(format!(
                "json: cannot unmarshal {kind} into Go value of type {target}"
            ))
        }
    }
}

/// A field of a JSON object as Go's decoder finds it: the exact key, else one equal ignoring
/// ASCII case.
fn field<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
    let map = obj.as_object()?;
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// A `NumericDate` claim in whole seconds (golang-jwt truncates to its second precision), or
/// `None` when absent or null.
fn date(claims: &Value, name: &str) -> Result<Option<i64>, String> {
    match field(claims, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(n.as_f64().unwrap_or(0.0).trunc() as i64)),
        Some(v) => Err(format!(
            "could not parse NumericDate: json: cannot unmarshal {} into Go value of type json.Number",
            if v.is_string() {
                "string"
            } else {
                "non-number"
            }
        )),
    }
}

/// Go's `time.Duration.String` of `ns` nanoseconds (e.g. `1m5.123456789s`, `1.5ms`).
pub fn go_duration(ns: i128) -> String {
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let frac = |v: u128, digits: usize| -> String {
        let s = format!("{v:0digits$}");
        let t = s.trim_end_matches('0');
        if t.is_empty() {
            String::new()
        } else {
            format!(".{t}")
        }
    };
    if u == 0 {
        return "0s".into();
    }
    if u < 1_000_000_000 {
        let (unit, div, digits) = if u < 1_000 {
            ("ns", 1, 0)
        } else if u < 1_000_000 {
            ("µs", 1_000, 3)
        } else {
            ("ms", 1_000_000, 6)
        };
        out.push_str(&format!("{}{}{unit}", u / div, frac(u % div, digits)));
        return out;
    }
    let secs = u / 1_000_000_000;
    let f = frac(u % 1_000_000_000, 9);
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        out.push_str(&format!("{h}h{m}m{s}{f}s"));
    } else if m > 0 {
        out.push_str(&format!("{m}m{s}{f}s"));
    } else {
        out.push_str(&format!("{s}{f}s"));
    }
    out
}

/// Verifies `token` against `key` at `now_ns` (nanoseconds since the epoch).
pub fn verify(token: &str, key: &PublicKey, now_ns: i128) -> Result<Claims, JwtError> {
    let invalid = |t: String| err(Kind::Invalid, t);
    if token.len() > MAX_JWT_BYTES {
        return Err(invalid(format!(
            "token is longer than {MAX_JWT_BYTES} bytes"
        )));
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(invalid(
            "token contains an invalid number of segments".into(),
        ));
    }
    let header_bytes = decode_segment(parts[0]).map_err(invalid)?;
    if let Some(e) = json_error(&header_bytes, "map[string]interface {}") {
        return Err(invalid(e));
    }
    let header: Value = serde_json::from_slice(&header_bytes).unwrap_or(Value::Null);
    let claim_bytes = decode_segment(parts[1]).map_err(invalid)?;
    if let Some(e) = json_error(&claim_bytes, "jwt.claims") {
        return Err(invalid(e));
    }
    let claims: Value = serde_json::from_slice(&claim_bytes).unwrap_or(Value::Null);
    let exp = date(&claims, "exp").map_err(invalid)?;
    let iat = date(&claims, "iat").map_err(invalid)?;
    let nbf = date(&claims, "nbf").map_err(invalid)?;
    let alg = match header.get("alg") {
        Some(Value::String(a)) => a.as_str(),
        _ => return Err(invalid("signing method (alg) is unspecified.".into())),
    };
    let hash = match alg {
        "RS256" => Hash::Sha256,
        "RS384" => Hash::Sha384,
        "RS512" => Hash::Sha512,
        "HS256" | "HS384" | "HS512" | "ES256" | "ES384" | "ES512" | "PS256" | "PS384" | "PS512"
        | "EdDSA" | "Ed25519" | "none" => {
            return Err(invalid(format!("unexpected signing method: {alg}")));
        }
        _ => return Err(invalid("signing method (alg) is unavailable.".into())),
    };
    // golang-jwt validates the time claims first, but a bad signature replaces their error.
    let now_s = now_ns.div_euclid(1_000_000_000) as i64;
    let mut claim_error = None;
    if let Some(exp) = exp
        && now_s >= exp
    {
        let delta = now_ns - (exp as i128) * 1_000_000_000;
        claim_error = Some(err(
            Kind::Expired,
            format!("token is expired by {}", go_duration(delta)),
        ));
    }
    if let Some(iat) = iat
        && now_s < iat
    {
        claim_error = Some(invalid("token used before issued".into()));
    }
    if let Some(nbf) = nbf
        && now_s < nbf
    {
        claim_error = Some(invalid("token is not valid yet".into()));
    }
    let sig = decode_segment(parts[2]).map_err(invalid)?;
    let signed = &token[..parts[0].len() + 1 + parts[1].len()];
    if !key.verify(hash, signed.as_bytes(), &sig) {
        return Err(invalid("crypto/rsa: verification error".into()));
    }
    if let Some(e) = claim_error {
        return Err(e);
    }
    let app = match field(&claims, "app") {
        None | Some(Value::Null) => return Err(err(Kind::App, "app info is not set")),
        Some(a) => a,
    };
    if field(app, "verified") != Some(&Value::Bool(true)) {
        return Err(err(Kind::App, "app is not verified"));
    }
    let user = match field(&claims, "user") {
        None | Some(Value::Null) => return Err(err(Kind::User, "user info is not set")),
        Some(u) => u,
    };
    let username = field(user, "username")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if username.is_empty() {
        return Err(err(Kind::User, "user is not set"));
    }
    Ok(Claims {
        app_code: field(app, "app_code")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        username: username.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_prints_them() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(65_123_456_789), "1m5.123456789s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(1_500_000), "1.5ms");
        assert_eq!(go_duration(2_000), "2µs");
        assert_eq!(go_duration(7), "7ns");
        assert_eq!(go_duration(5_000_000_000), "5s");
        assert_eq!(go_duration(-1_500_000_000), "-1.5s");
    }

    #[test]
    fn segments_as_go_decodes_them() {
        assert_eq!(decode_segment("e30").unwrap(), b"{}");
        assert_eq!(
            decode_segment("e30=").unwrap_err(),
            "illegal base64 data at input byte 3"
        );
        assert_eq!(
            decode_segment("abcde").unwrap_err(),
            "illegal base64 data at input byte 4"
        );
        assert_eq!(
            json_error(b"[1]", "map[string]interface {}").unwrap(),
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        );
        assert_eq!(
            json_error(b"{", "x").unwrap(),
            "unexpected end of JSON input"
        );
        assert_eq!(
            json_error(b"x", "x").unwrap(),
            "invalid character 'x' looking for beginning of value"
        );
    }

    /// An RS512 token signed outside this crate (Python's big integers and hashlib, with the
    /// test-only key of `tests/keys/`), so the verification is checked against another
    /// implementation, not only against our own signing.
    const SIGNED_ELSEWHERE: &str = "eyJhbGciOiJSUzUxMiIsInR5cCI6IkpXVCJ9.eyJhcHAiOnsiYXBwX2NvZGUiOiJndyIsInZlcmlmaWVkIjp0cnVlfSwidXNlciI6eyJ1c2VybmFtZSI6ImFsaWNlIn19.rF4HmDo_nt3Y9B8auk7tN-ROH55Vhfoe59rD3IQz-B6KntqUaLsbK-GABydyC_QOQi39cSWgHUPZ04TF8ez90ZF3hvlyz1HEFVO5vhm48jgVx4QkRJjjjFop5nNHu6I8PxrUH4q-kpn_clPNVFUDV3V7fw0XaDZqiGhwLhEjzZCi2WX8UdPb0L36s3r9MDGBjLlpuBIYkBU5ym6wyevJOwf5ltc3eH3yG2n9FqJ-l6iue-2MQ8r6zt1bqoNOvL5pGdYbstalxIk3wpr-g64X48TQbuTLswaktL9TLDAiKbHKWWPCh24LcsgOalK_C6mtGLOqzgbm-Q7o3Yr7-_32jg";

    #[test]
    fn verifies_a_token_signed_elsewhere() {
        let key = super::super::rsa::parse_public_key(include_bytes!(
            "../../tests/keys/jwt_test.pub.pem"
        ))
        .unwrap();
        assert_eq!(key.size(), 256);
        let claims = verify(SIGNED_ELSEWHERE, &key, 0).unwrap();
        assert_eq!(claims.username, "alice");
        assert_eq!(claims.app_code, "gw");
        let other = super::super::rsa::parse_public_key(include_bytes!(
            "../../tests/keys/jwt_other.pub.pem"
        ))
        .unwrap();
        assert_eq!(
            verify(SIGNED_ELSEWHERE, &other, 0).unwrap_err().text,
            "crypto/rsa: verification error"
        );
        // The payload of another token (bob instead of alice) under this signature.
        let tampered = SIGNED_ELSEWHERE.replacen("FsaWNlIn19", "JvYiJ9fQ", 1);
        assert_eq!(
            verify(&tampered, &key, 0).unwrap_err().text,
            "crypto/rsa: verification error"
        );
    }
}
