//! Tenant documents: the rules a document body must meet, and JSON merge patch (RFC 7396).
//!
//! A body is a JSON object of at most `MAX_DOCUMENT_BYTES` (serialized), nested at most
//! [`MAX_DEPTH`] levels (the top object is level 1; each object or array inside adds one), whose
//! keys never start with `$` and never contain `.` or NUL (MongoDB reserves the first two; NUL
//! ends a C string in both stores), and whose integers fit in 64 signed bits (BSON's widest).

use serde_json::{Map, Value};

use super::Invalid;

/// Deepest nesting allowed.
pub const MAX_DEPTH: usize = 32;

/// A document body that meets every rule.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentBody(Map<String, Value>);

impl DocumentBody {
    /// Checks `value` against the rules, `max_bytes` being `MAX_DOCUMENT_BYTES`.
    pub fn parse(value: Value, max_bytes: usize) -> Result<Self, Invalid> {
        let Value::Object(map) = value else {
            return Err(Invalid::new(
                "model_type",
                "A document must be a JSON object",
            ));
        };
        let size = serde_json::to_vec(&map).map_or(usize::MAX, |v| v.len());
        if size > max_bytes {
            return Err(Invalid::new(
                "too_large",
                format!("A document may be at most {max_bytes} bytes of JSON; this one is {size}"),
            ));
        }
        for (key, nested) in &map {
            check(key, nested, 1)?;
        }
        Ok(Self(map))
    }

    /// The object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The object, owned.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

/// A document as stored: its id, version and times, and its data.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDocument {
    /// 24-hex-digit ObjectId, assigned by the service (ids sort by creation time).
    pub id: String,
    /// 1 when created, one more at each write (the `ETag`).
    pub version: i64,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it was last written.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// The document itself.
    pub data: Map<String, Value>,
}

/// Whether `key` may name a field: any string (the empty one too) except one that starts with
/// `$` or contains `.` or NUL.
pub fn key_allowed(key: &str) -> bool {
    !key.starts_with('$') && !key.contains('.') && !key.contains('\0')
}

fn check(key: &str, value: &Value, depth: usize) -> Result<(), Invalid> {
    if !key_allowed(key) {
        return Err(Invalid::new(
            "value_error",
            format!("Field names may not start with '$' or contain '.' or NUL: {key:?}"),
        ));
    }
    check_value(value, depth)
}

fn check_value(value: &Value, depth: usize) -> Result<(), Invalid> {
    match value {
        Value::Object(map) => {
            deeper(depth)?;
            for (key, nested) in map {
                check(key, nested, depth + 1)?;
            }
        }
        Value::Array(items) => {
            deeper(depth)?;
            for nested in items {
                check_value(nested, depth + 1)?;
            }
        }
        Value::Number(n) if n.is_u64() && n.as_i64().is_none() => {
            return Err(Invalid::new(
                "value_error",
                "Integers must fit in 64 signed bits",
            ));
        }
        _ => {}
    }
    Ok(())
}

/// An object or array inside a level-`depth` object is one level deeper.
fn deeper(depth: usize) -> Result<(), Invalid> {
    if depth >= MAX_DEPTH {
        return Err(Invalid::new(
            "too_deep",
            format!("Documents may nest at most {MAX_DEPTH} levels"),
        ));
    }
    Ok(())
}

/// Applies a JSON merge patch (RFC 7396) to `target`: a patch object's members replace the
/// target's, `null` removes one, nested objects merge; any other patch replaces the target.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else {
        return;
    };
    for (key, value) in patch {
        if value.is_null() {
            map.remove(key);
        } else {
            merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(levels: usize) -> Value {
        // `levels` objects in all, the top one included.
        (1..levels).fold(json!({"leaf": 1}), |inner, _| json!({ "a": inner }))
    }

    #[test]
    fn depth_counts_every_object_and_array_level() {
        assert!(DocumentBody::parse(nested(32), 65_536).is_ok());
        assert_eq!(
            DocumentBody::parse(nested(33), 65_536).unwrap_err().kind,
            "too_deep"
        );
        // Arrays count as levels too: 31 objects and one array is 32.
        let mut v = json!([1]);
        for _ in 0..31 {
            v = json!({ "a": v });
        }
        assert!(DocumentBody::parse(v.clone(), 65_536).is_ok());
        assert!(DocumentBody::parse(json!({ "a": [v] }), 65_536).is_err());
        assert!(DocumentBody::parse(json!({ "a": [[v]] }), 65_536).is_err());
        // Arrays inside arrays: the top object and 31 arrays is 32 levels; 32 arrays is 33.
        let arrays = |n: usize| (1..n).fold(json!([]), |inner, _| json!([inner]));
        assert!(DocumentBody::parse(json!({ "a": arrays(31) }), 65_536).is_ok());
        assert_eq!(
            DocumentBody::parse(json!({ "a": arrays(32) }), 65_536)
                .unwrap_err()
                .kind,
            "too_deep"
        );
    }

    #[test]
    fn size_is_the_serialized_json() {
        let body = json!({"k": "x".repeat(100)});
        let size = serde_json::to_vec(&body).unwrap().len();
        assert_eq!(size, 108);
        assert!(DocumentBody::parse(body.clone(), 108).is_ok());
        let err = DocumentBody::parse(body, 107).unwrap_err();
        assert_eq!(
            (err.kind, err.message.as_str()),
            (
                "too_large",
                "A document may be at most 107 bytes of JSON; this one is 108"
            )
        );
    }

    #[test]
    fn only_objects_with_allowed_keys() {
        for bad in [json!([1]), json!("x"), json!(1), Value::Null] {
            assert_eq!(
                DocumentBody::parse(bad, 1000).unwrap_err().kind,
                "model_type"
            );
        }
        for key in ["$set", "a.b", "nul\0", ".", "$"] {
            let err = DocumentBody::parse(json!({ key: 1 }), 1000).unwrap_err();
            assert_eq!(err.kind, "value_error", "{key:?}");
            let deep = DocumentBody::parse(json!({"ok": [{ key: 1 }]}), 1000);
            assert!(deep.is_err(), "{key:?} inside an array");
        }
        for key in ["a$", "_id", "", "ünï", "a b", "x-y"] {
            assert!(
                DocumentBody::parse(json!({ key: 1 }), 1000).is_ok(),
                "{key:?}"
            );
        }
        let big = json!({"n": u64::MAX});
        assert_eq!(
            DocumentBody::parse(big, 1000).unwrap_err().message,
            "Integers must fit in 64 signed bits"
        );
        assert!(DocumentBody::parse(json!({"n": i64::MIN, "m": i64::MAX, "f": 1.5}), 1000).is_ok());
        let parsed = DocumentBody::parse(json!({"a": 1}), 1000).unwrap();
        assert_eq!(parsed.as_map()["a"], 1);
        assert_eq!(parsed.into_map().len(), 1);
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        // The examples of RFC 7396 §3 (Appendix A).
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), Value::Null, Value::Null),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (mut target, patch, expected) in cases {
            merge_patch(&mut target, &patch);
            assert_eq!(target, expected, "patch {patch}");
        }
    }
}
