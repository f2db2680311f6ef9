//! Wire names: how a unit enum of the report is spelled (`web_identity`, `warning`,
//! `dual_stack`), one spelling for the report, the text output, metric labels and docs. Its
//! own leaf, so the catalogue and the report both use it without importing each other.

use serde::Serialize;

/// A unit enum's name on the wire: its serde name, or empty for anything else.
pub fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}
