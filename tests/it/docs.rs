//! The documents follow the code. ARCHITECTURE.md's code map names every source file exactly once,
//! and its "Where the rules live" table names, for every bk-cmdb error code in `error::code`, each
//! file and function that raises it. Both are computed from the sources here, so neither can drift:
//! a file or a code added without its line fails this test, which prints the line to add.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn architecture() -> String {
    std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("reading ARCHITECTURE.md")
}

/// The text of the `## {title}` section, up to the next `## ` heading.
fn section<'a>(doc: &'a str, title: &str) -> &'a str {
    let head = format!("\n## {title}\n");
    let start = doc
        .find(&head)
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no section \"## {title}\""));
    let rest = &doc[start + head.len()..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// Every `.rs` file below `dir`, as a path relative to the crate root with `/` separators.
fn rust_files(dir: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root()).expect("below the crate root");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

fn src_files() -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    files
}

#[test]
fn code_map_names_every_source_file_once() {
    let doc = architecture();
    let map = section(&doc, "Code map");
    let mut problems = Vec::new();
    for file in src_files() {
        let n = map.matches(&format!("`{file}`")).count();
        match n {
            1 => {}
            0 => problems.push(format!(
                "`{file}` is missing: add a line `- `{file}`: what it holds`"
            )),
            _ => problems.push(format!("`{file}` is listed {n} times: keep one line")),
        }
    }
    assert!(
        problems.is_empty(),
        "ARCHITECTURE.md's code map is out of step with src/:\n{}",
        problems.join("\n")
    );
}

/// `code::NAME` constants of `src/error.rs`, in their order: (name, number).
fn error_codes() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("src/error.rs")).expect("reading src/error.rs");
    let module = &text[text.find("pub mod code {").expect("error::code")..];
    let module = &module[..module.find("\n}").expect("the end of error::code")];
    module
        .lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix("pub const ")?;
            let (name, rest) = l.split_once(": i64 = ")?;
            Some((name.to_string(), rest.trim_end_matches(';').to_string()))
        })
        .collect()
}

/// The item a line belongs to: the last `fn`, `const` or `static` declared above it.
fn item_name(line: &str) -> Option<String> {
    let mut words = line.split_whitespace().peekable();
    while let Some(w) = words.next() {
        if matches!(w, "fn" | "const" | "static") {
            let next = words.peek()?;
            if w == "const" && *next == "fn" {
                continue;
            }
            let name: String = next
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            return (!name.is_empty()).then_some(name);
        }
        if !matches!(
            w,
            "pub" | "pub(crate)" | "pub(super)" | "async" | "unsafe" | "extern"
        ) {
            return None;
        }
    }
    None
}

/// For each code name: file → the functions (outside `#[cfg(test)]`) that mention `code::NAME`.
fn raisers() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in src_files() {
        let text = std::fs::read_to_string(root().join(&file)).expect("reading a source file");
        let text = &text[..text.find("#[cfg(test)]").unwrap_or(text.len())];
        let mut item = String::from("(top level)");
        for line in text.lines() {
            if let Some(name) = item_name(line) {
                item = name;
            }
            if item == "CATALOGUE" {
                continue; // the message templates, not a raiser
            }
            let mut rest = line;
            while let Some(at) = rest.find("code::") {
                rest = &rest[at + "code::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.entry(name)
                        .or_default()
                        .entry(file.clone())
                        .or_default()
                        .insert(item.clone());
                }
            }
        }
    }
    out
}

fn expected_row(
    name: &str,
    number: &str,
    by: Option<&BTreeMap<String, BTreeSet<String>>>,
) -> String {
    let place = match by {
        None => "(in the catalogue; nothing raises it)".to_string(),
        Some(files) => files
            .iter()
            .map(|(file, fns)| {
                let fns: Vec<String> = fns.iter().map(|f| format!("`{f}`")).collect();
                format!("`{file}` {}", fns.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; "),
    };
    format!("| {number} | `{name}` | {place} |")
}

#[test]
fn where_the_rules_live_names_every_code_and_its_raisers() {
    let doc = architecture();
    let table = section(&doc, "Where the rules live");
    let rows: BTreeSet<&str> = table
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("| 1") || l.starts_with("| 9") || l.starts_with("| 0"))
        .collect();
    let by = raisers();
    let codes = error_codes();
    let expected: Vec<String> = codes
        .iter()
        .map(|(name, number)| expected_row(name, number, by.get(name)))
        .collect();
    let expected_set: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    let missing: Vec<&str> = expected
        .iter()
        .map(String::as_str)
        .filter(|r| !rows.contains(r))
        .collect();
    let stale: Vec<&&str> = rows
        .iter()
        .filter(|r| !expected_set.contains(**r))
        .collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "ARCHITECTURE.md's \"Where the rules live\" table is out of step with the code.\n\
         Rows missing or changed:\n{}\nRows that no longer hold:\n{}\n\
         The whole table as the code has it now (paste it under the table's heading row):\n{}",
        missing.join("\n"),
        stale
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        expected.join("\n")
    );
    let unknown: Vec<&String> = by
        .keys()
        .filter(|n| !codes.iter().any(|(c, _)| c == *n))
        .collect();
    assert!(
        unknown.is_empty(),
        "code names used but not declared: {unknown:?}"
    );
}
