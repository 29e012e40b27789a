//! The `filter` of `GET /org/documents`: a JSON object of at most [`MAX_CONDITIONS`] equality
//! conditions, `{"<dotted path>": <string | number | boolean | null>}`, parsed into a closed
//! set of [`Condition`]s. Nothing a client sends becomes an operator or a piece of query text:
//! each store renders a condition itself, from these values only (bound parameters on SQLite,
//! a document built field by field on MongoDB).
//!
//! Matching is exact in type and value on both stores: `true` is not `1`, `"1"` is not `1`,
//! `null` matches an explicit null only (not a missing field), numbers compare by value (`1`
//! equals `1.0`), and a path never descends into an array (`{"tags": "x"}` does not match
//! `{"tags": ["x"]}`), since the two stores would disagree there.

use serde_json::{Map, Number, Value};

use super::document::key_allowed;
use super::Invalid;

/// Most conditions in one filter.
pub const MAX_CONDITIONS: usize = 8;

/// A value a condition compares with.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// JSON `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number (integer or not).
    Number(Number),
    /// A string.
    String(String),
}

/// `path == value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Field names from the document's top level down (at least one).
    pub path: Vec<String>,
    /// The value the field must have.
    pub value: Scalar,
}

/// A parsed filter: every condition must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// The conditions, by field name (JSON objects are unordered).
    pub conditions: Vec<Condition>,
}

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid::new("value_error", message)
}

impl Filter {
    /// Parses the `filter` query parameter (absent: no condition).
    pub fn parse(raw: Option<&str>) -> Result<Self, Invalid> {
        let Some(raw) = raw else {
            return Ok(Self::default());
        };
        let value: Value =
            serde_json::from_str(raw).map_err(|_| invalid("filter must be a JSON object"))?;
        let Value::Object(map) = value else {
            return Err(invalid("filter must be a JSON object"));
        };
        Self::from_map(map)
    }

    fn from_map(map: Map<String, Value>) -> Result<Self, Invalid> {
        if map.len() > MAX_CONDITIONS {
            return Err(invalid(format!(
                "filter may have at most {MAX_CONDITIONS} conditions"
            )));
        }
        let mut conditions = map
            .into_iter()
            .map(|(field, value)| {
                Ok(Condition {
                    path: parse_path(&field)?,
                    value: scalar(&field, value)?,
                })
            })
            .collect::<Result<Vec<_>, Invalid>>()?;
        // Sorted here: serde_json keeps a JSON object's order or sorts it depending on a
        // feature another crate may turn on, and a query's text should not depend on that.
        conditions.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Self { conditions })
    }
}

/// `a.b.c` → `["a", "b", "c"]`. Each name follows the document key rules, is not empty, and has
/// no `"` (SQLite's JSON paths cannot quote one).
fn parse_path(field: &str) -> Result<Vec<String>, Invalid> {
    let names: Vec<String> = field.split('.').map(str::to_owned).collect();
    let fine = names
        .iter()
        .all(|n| !n.is_empty() && key_allowed(n) && !n.contains('"'));
    if !fine {
        return Err(invalid(format!(
            "filter field {field:?}: names separated by '.', none empty, none starting with '$', no '\"' or NUL"
        )));
    }
    Ok(names)
}

fn scalar(field: &str, value: Value) -> Result<Scalar, Invalid> {
    match value {
        Value::Null => Ok(Scalar::Null),
        Value::Bool(b) => Ok(Scalar::Bool(b)),
        Value::Number(n) if n.is_u64() && n.as_i64().is_none() => Err(invalid(format!(
            "filter field {field:?}: integers must fit in 64 signed bits"
        ))),
        Value::Number(n) => Ok(Scalar::Number(n)),
        Value::String(s) if s.contains('\0') => Err(invalid(format!(
            "filter field {field:?}: strings may not contain NUL"
        ))),
        Value::String(s) => Ok(Scalar::String(s)),
        Value::Array(_) | Value::Object(_) => Err(invalid(format!(
            "filter field {field:?}: only a string, number, boolean or null is compared (use a dotted path for a nested field)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Filter, Invalid> {
        Filter::parse(Some(&v.to_string()))
    }

    #[test]
    fn conditions_come_out_by_field_with_their_paths() {
        let f = parse(json!({"a.b": 1, "s": "x", "t": true, "n": null, "f": 1.5})).unwrap();
        let got: Vec<(Vec<&str>, Scalar)> = f
            .conditions
            .iter()
            .map(|c| (c.path.iter().map(String::as_str).collect(), c.value.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (vec!["a", "b"], Scalar::Number(1.into())),
                (vec!["f"], Scalar::Number(Number::from_f64(1.5).unwrap())),
                (vec!["n"], Scalar::Null),
                (vec!["s"], Scalar::String("x".into())),
                (vec!["t"], Scalar::Bool(true)),
            ]
        );
        assert_eq!(Filter::parse(None).unwrap(), Filter::default());
        assert!(parse(json!({})).unwrap().conditions.is_empty());
    }

    #[test]
    fn at_most_eight_conditions() {
        let eight: Map<String, Value> = (0..8).map(|i| (format!("k{i}"), json!(i))).collect();
        assert_eq!(
            parse(Value::Object(eight.clone()))
                .unwrap()
                .conditions
                .len(),
            8
        );
        let mut nine = eight;
        nine.insert("k8".into(), json!(8));
        assert_eq!(
            parse(Value::Object(nine)).unwrap_err().message,
            "filter may have at most 8 conditions"
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for raw in [
            "",
            "nope",
            "[1]",
            "1",
            "null",
            "\"a\"",
            "{\"a\":1",
            "{\"a\":1}x",
        ] {
            assert_eq!(
                Filter::parse(Some(raw)).unwrap_err().message,
                "filter must be a JSON object",
                "{raw:?}"
            );
        }
        for bad in [
            json!({"a": {"$gt": 1}}),
            json!({"a": [1]}),
            json!({"a": {"b": 1}}),
            json!({"$where": "1"}),
            json!({"a.$b": 1}),
            json!({"a..b": 1}),
            json!({".a": 1}),
            json!({"a.": 1}),
            json!({"": 1}),
            json!({"a\"b": 1}),
            json!({"a\u{0}": 1}),
            json!({"a": "x\u{0}"}),
            json!({"a": u64::MAX}),
        ] {
            let err = parse(bad.clone()).unwrap_err();
            assert_eq!(err.kind, "value_error", "{bad}");
            assert!(
                err.message.starts_with("filter field"),
                "{bad}: {}",
                err.message
            );
        }
        assert!(parse(json!({"a": i64::MIN, "b$": 1, "_id": "x"})).is_ok());
    }

    #[test]
    fn random_input_never_panics_and_never_yields_an_operator() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(20_261_130);
        let alphabet: Vec<char> = "{}[]\":,.$\\ab1 -\u{0}\u{e9}tnulrefs0e+".chars().collect();
        for _ in 0..20_000 {
            let len = rng.random_range(0..40);
            let raw: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            if let Ok(filter) = Filter::parse(Some(&raw)) {
                assert!(filter.conditions.len() <= MAX_CONDITIONS);
                for c in &filter.conditions {
                    assert!(!c.path.is_empty());
                    for name in &c.path {
                        assert!(!name.is_empty() && !name.starts_with('$'), "{raw:?}");
                        assert!(!name.contains(['.', '"', '\0']), "{raw:?}");
                    }
                }
            }
        }
    }
}
