//! The three envelopes (product.md section 3): native `bk_error_code`/`bk_error_msg`,
//! gateway `code`/`message`, ESB `code`/`message` plus `request_id`. Written by hand so that
//! keys keep bk-cmdb's order and `data` is spliced in as already-serialised JSON.

/// Which envelope to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Native,
    Gateway,
    Esb,
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The body of an answer. `data` is JSON text (`null` on failure).
pub fn render(shape: Shape, ok: bool, code: i64, message: &str, data: &str, rid: &str) -> String {
    render_with_permission(shape, ok, code, message, "null", data, rid)
}

/// [`render`] with a `permission` object (JSON text) instead of `null`.
pub fn render_with_permission(
    shape: Shape,
    ok: bool,
    code: i64,
    message: &str,
    permission: &str,
    data: &str,
    rid: &str,
) -> String {
    let mut out = head(shape, ok, code, message, permission, rid);
    out.reserve(data.len() + 1);
    out.push_str(data);
    out.push('}');
    go_escape(out)
}

/// An envelope up to `"data":` (not yet escaped with [`go_escape`]); `data` and `}` follow.
pub fn head(
    shape: Shape,
    ok: bool,
    code: i64,
    message: &str,
    permission: &str,
    rid: &str,
) -> String {
    let (code_key, msg_key) = match shape {
        Shape::Native => ("bk_error_code", "bk_error_msg"),
        Shape::Gateway | Shape::Esb => ("code", "message"),
    };
    let mut out = format!(
        "{{\"result\":{ok},\"{code_key}\":{code},\"{msg_key}\":{},\"permission\":{permission},",
        quote(message)
    );
    if shape == Shape::Esb {
        out.push_str(&format!("\"request_id\":{},", quote(rid)));
    }
    out.push_str("\"data\":");
    out
}

/// A `resource_watch` success in the native shape: bk-cmdb's event server writes it by string
/// concatenation (`RespString`), with spaces after `:` and `,` and no `permission` key.
pub fn render_event_success(data: &str) -> String {
    go_escape(format!(
        "{{\"result\": true, \"bk_error_code\": 0, \"bk_error_msg\": \"success\", \"data\": {data}}}"
    ))
}

/// Escapes what bk-cmdb's JSON encoder (json-iterator with `EscapeHTML`) escapes and serde_json
/// does not: `<`, `>`, `&`, U+2028 and U+2029. They can only occur inside JSON strings, so the
/// whole text can be rewritten.
pub(super) fn go_escape(json: String) -> String {
    if !json.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(
            render(Shape::Native, true, 0, "success", "[64]", "r"),
            r#"{"result":true,"bk_error_code":0,"bk_error_msg":"success","permission":null,"data":[64]}"#
        );
        assert_eq!(
            render(Shape::Gateway, true, 0, "success", "[64]", "r"),
            r#"{"result":true,"code":0,"message":"success","permission":null,"data":[64]}"#
        );
        assert_eq!(
            render(Shape::Esb, false, 1199000, "x\"", "null", "r1"),
            r#"{"result":false,"code":1199000,"message":"x\"","permission":null,"request_id":"r1","data":null}"#
        );
    }

    #[test]
    fn html_characters_are_escaped_as_go_does() {
        assert_eq!(
            render(
                Shape::Native,
                true,
                0,
                "success",
                "[\"a<b>&c\u{2028}\"]",
                "r"
            ),
            r#"{"result":true,"bk_error_code":0,"bk_error_msg":"success","permission":null,"data":["a\u003cb\u003e\u0026c\u2028"]}"#
        );
    }
}
