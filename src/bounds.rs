//! Caps on what text from registries, AWS and the cluster may take in a report: untrusted
//! strings are copied into findings (platform lists, media types, challenges, error messages),
//! and without a cap one hostile index made a one-image report 11.7 MB and held `serve --watch`
//! past its memory limit (issue 23). Pure; the limits are documented in docs/limits.md.

use serde_json::Value;

/// Longest summary or remediation of a finding, in characters.
pub const MAX_TEXT: usize = 2048;
/// Longest string inside a finding's evidence, in characters.
pub const MAX_VALUE: usize = 512;
/// Longest item of a list taken from an answer (a platform, a media type), in characters.
pub const MAX_ITEM: usize = 64;
/// Most items of a list in evidence or a summary; the rest is counted in a last "… N more".
pub const MAX_ITEMS: usize = 16;
/// Most keys of an object in evidence, and how deep evidence nests.
pub const MAX_KEYS: usize = 32;
pub const MAX_DEPTH: usize = 4;
/// Largest one image's report (one check's result) may be, serialised: past it, the
/// evidence of its findings is dropped (their codes, summaries and fixes stay).
pub const MAX_IMAGE_REPORT_BYTES: usize = 256 * 1024;

/// `s` cut to `max` characters, saying how many were left out.
pub fn text(s: String, max: usize) -> String {
    let Some((cut, _)) = s.char_indices().nth(max) else {
        return s;
    };
    let more = s[cut..].chars().count();
    let mut kept = s;
    kept.truncate(cut);
    kept.push_str(&format!("… {more} more characters"));
    kept
}

/// At most [`MAX_ITEMS`] items of at most [`MAX_ITEM`] characters, then "… N more" for the
/// rest. Takes an iterator so a long list is never built whole.
pub fn list<I: IntoIterator<Item = String>>(items: I) -> Vec<String> {
    let mut out = Vec::new();
    let mut more = 0usize;
    for item in items {
        if out.len() < MAX_ITEMS {
            out.push(text(item, MAX_ITEM));
        } else {
            more += 1;
        }
    }
    if more > 0 {
        out.push(format!("… {more} more"));
    }
    out
}

/// A finding's evidence value within the caps: strings, lists, objects and depth.
pub fn value(v: Value) -> Value {
    value_at(v, 0)
}

fn value_at(v: Value, depth: usize) -> Value {
    match v {
        Value::String(s) => Value::String(text(s, MAX_VALUE)),
        Value::Array(items) if depth >= MAX_DEPTH => many(items.len()),
        Value::Object(m) if depth >= MAX_DEPTH => many(m.len()),
        Value::Array(mut items) => {
            // A list already cut by [`list`] keeps its count.
            let counted = items.len() == MAX_ITEMS + 1
                && items[MAX_ITEMS]
                    .as_str()
                    .is_some_and(|s| s.starts_with("… ") && s.ends_with(" more"));
            let marker = if counted { items.pop() } else { None };
            let n = items.len();
            let mut out: Vec<Value> = items
                .into_iter()
                .take(MAX_ITEMS)
                .map(|i| value_at(i, depth + 1))
                .collect();
            if n > MAX_ITEMS {
                out.push(Value::String(format!("… {} more", n - MAX_ITEMS)));
            }
            out.extend(marker);
            Value::Array(out)
        }
        Value::Object(m) => {
            let n = m.len();
            let mut out: serde_json::Map<String, Value> = m
                .into_iter()
                .take(MAX_KEYS)
                .map(|(k, v)| (text(k, MAX_ITEM), value_at(v, depth + 1)))
                .collect();
            if n > MAX_KEYS {
                out.insert("…".into(), Value::String(format!("{} more", n - MAX_KEYS)));
            }
            Value::Object(out)
        }
        other => other,
    }
}

fn many(n: usize) -> Value {
    Value::String(format!("… {n} more"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_at_characters_and_says_how_many_more() {
        assert_eq!(text("short".into(), 8), "short");
        assert_eq!(text("abcdef".into(), 6), "abcdef");
        assert_eq!(text("abcdefgh".into(), 6), "abcdef… 2 more characters");
        // Never inside a character: "é" is two bytes.
        assert_eq!(text("ééé".into(), 1), "é… 2 more characters");
    }

    #[test]
    fn lists_keep_sixteen_short_items_and_count_the_rest() {
        let l = list((0..1024).map(|i| format!("{}{i}/amd64", "x".repeat(3800))));
        assert_eq!(l.len(), MAX_ITEMS + 1);
        assert!(
            l[..MAX_ITEMS]
                .iter()
                .all(|i| i.chars().count() < MAX_ITEM + 32)
        );
        assert_eq!(l[MAX_ITEMS], "… 1008 more");
        assert_eq!(list(["linux/amd64".to_string()]), ["linux/amd64"]);
    }

    /// One check's result: past the bound, evidence gives way and the findings stay.
    #[test]
    fn an_image_report_over_the_bound_drops_its_evidence() {
        use crate::report::{Finding, Severity};
        let mut r = crate::report::fixtures::passing(&["a/one"], 1)
            .images
            .remove(0);
        let f = Finding {
            code: crate::catalogue::Code::REGISTRY_ERROR,
            severity: Severity::Error,
            summary: "s".into(),
            remediation: "r".into(),
            evidence: [("e".to_string(), Value::from("x".repeat(400)))].into(),
        };
        r.findings = vec![f; 1000];
        r.bound();
        let size = serde_json::to_vec(&r).unwrap().len();
        assert!(size < MAX_IMAGE_REPORT_BYTES, "{size}");
        assert_eq!(r.findings.len(), 1000);
        assert!(
            r.findings[0].evidence["evidence"]
                .as_str()
                .unwrap()
                .starts_with("dropped")
        );
        let mut small = crate::report::fixtures::passing(&["a/one"], 1)
            .images
            .remove(0);
        let before = small.clone();
        small.bound();
        assert_eq!(small, before);
    }

    #[test]
    fn evidence_is_capped_in_every_dimension() {
        let big = serde_json::json!({
            "available": vec!["y".repeat(4000); 1024],
            "message": "m".repeat(10_000),
            "deep": [[[[["five"]]]]],
            "n": 3,
        });
        let v = value(big);
        let s = v.to_string();
        assert!(s.len() < 16 * 1024, "{} bytes", s.len());
        assert_eq!(v["available"].as_array().unwrap().len(), MAX_ITEMS + 1);
        assert_eq!(v["available"][MAX_ITEMS], "… 1008 more");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .ends_with("… 9488 more characters")
        );
        assert_eq!(v["deep"][0][0][0], "… 1 more");
        assert_eq!(v["n"], 3);
        // A list cut by `list` passes through with its count.
        let cut = list((0..100).map(|i| i.to_string()));
        assert_eq!(value(Value::from(cut.clone())), Value::from(cut));
        let wide: serde_json::Map<String, Value> = (0..100)
            .map(|i| (format!("k{i:03}"), Value::from(i)))
            .collect();
        let v = value(Value::Object(wide));
        assert_eq!(v.as_object().unwrap().len(), MAX_KEYS + 1);
        assert_eq!(v["…"], "68 more");
    }
}
