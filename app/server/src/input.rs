//! Small helpers for validating submitted fields (forms and API alike).

use sluice_store::domain::Invalid;

/// Records a validation failure in `errors`, returning the value when it parsed.
pub fn keep<T>(errors: &mut Vec<Invalid>, result: Result<T, Invalid>) -> Option<T> {
    result.map_err(|e| errors.push(e)).ok()
}

/// A trimmed value, or `None` when the field was left blank.
pub fn blank_to_none(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}
