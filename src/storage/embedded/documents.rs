//! The documents API on the embedded store: rows of `tenant_documents`, each write one
//! transaction that checks the version it is conditioned on. Filters become SQL with bound
//! parameters only (`render`): the query text depends on the number and kinds of conditions,
//! never on what a client sent.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::Value as Sql;
use rusqlite::{params, params_from_iter, OptionalExtension};
use serde_json::{Map, Value};

use super::codec::{backend, is_foreign_key, parse_ts, ts};
use super::EmbeddedStore;
use crate::domain::{Filter, Organization, Scalar, StoredDocument};
use crate::storage::{Documents, Limit, StoreError};

const COLUMNS: &str = "id, version, created_at, updated_at, document";

/// SQLite's JSON path of a condition: `$."a"."b"` (names hold no `"`: the filter parser refuses it).
fn json_path(path: &[String]) -> String {
    path.iter().fold(String::from("$"), |mut p, name| {
        p.push_str(".\"");
        p.push_str(name);
        p.push('"');
        p
    })
}

/// The `AND …` clauses of `filter` and their parameters, in order. Types are compared with
/// `json_type`, so `true` never equals `1` (to `json_extract` both are the integer 1).
pub(super) fn render(filter: &Filter) -> (String, Vec<Sql>) {
    let mut sql = String::new();
    let mut params = Vec::new();
    for condition in &filter.conditions {
        let path = Sql::Text(json_path(&condition.path));
        match &condition.value {
            Scalar::Null => {
                sql.push_str(" AND json_type(document, ?) = 'null'");
                params.push(path);
            }
            Scalar::Bool(b) => {
                sql.push_str(" AND json_type(document, ?) = ?");
                params.extend([path, Sql::Text(if *b { "true" } else { "false" }.into())]);
            }
            Scalar::String(s) => {
                sql.push_str(
                    " AND json_type(document, ?) = 'text' AND json_extract(document, ?) = ?",
                );
                params.extend([path.clone(), path, Sql::Text(s.clone())]);
            }
            Scalar::Number(n) => {
                sql.push_str(
                    " AND json_type(document, ?) IN ('integer', 'real') AND json_extract(document, ?) = ?",
                );
                let value = match n.as_i64() {
                    Some(i) => Sql::Integer(i),
                    None => Sql::Real(n.as_f64().unwrap_or(f64::NAN)),
                };
                params.extend([path.clone(), path, value]);
            }
        }
    }
    (sql, params)
}

/// The creation time hidden in an ObjectId (its first four bytes, seconds): the time of
/// documents stored before documents had times.
fn id_time(id: &str) -> DateTime<Utc> {
    let seconds = id
        .get(..8)
        .and_then(|h| i64::from_str_radix(h, 16).ok())
        .unwrap_or(0);
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredDocument> {
    let id: String = row.get(0)?;
    let created = row
        .get::<_, Option<String>>(2)?
        .map(|t| parse_ts(&t))
        .transpose()?
        .unwrap_or_else(|| id_time(&id));
    let updated = row
        .get::<_, Option<String>>(3)?
        .map(|t| parse_ts(&t))
        .transpose()?
        .unwrap_or(created);
    let text: String = row.get(4)?;
    let data = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => map,
        // A document stored before the API (demo data) that is not an object.
        Ok(other) => Map::from_iter([("value".to_owned(), other)]),
        Err(e) => {
            return Err(rusqlite::Error::FromSqlConversionFailure(
                4,
                rusqlite::types::Type::Text,
                Box::new(e),
            ))
        }
    };
    Ok(StoredDocument {
        id,
        version: row.get(1)?,
        created_at: created,
        updated_at: updated,
        data,
    })
}

fn one(
    conn: &rusqlite::Connection,
    org_id: &str,
    id: &str,
) -> Result<Option<StoredDocument>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM tenant_documents WHERE organization_id = ?1 AND id = ?2"
    ))
    .and_then(|mut stmt| stmt.query_row(params![org_id, id], from_row).optional())
    .map_err(backend)
}

#[async_trait]
impl Documents for EmbeddedStore {
    async fn insert_document(
        &self,
        org: &Organization,
        id: &str,
        data: &Map<String, Value>,
        at: DateTime<Utc>,
        max_documents: u64,
    ) -> Result<StoredDocument, StoreError> {
        let (org_id, id, text) = (
            org.id.clone(),
            id.to_owned(),
            Value::Object(data.clone()).to_string(),
        );
        let stored = StoredDocument {
            id: id.clone(),
            version: 1,
            created_at: at,
            updated_at: at,
            data: data.clone(),
        };
        self.write(move |tx, _| {
            let held: i64 = tx
                .prepare_cached("SELECT COUNT(*) FROM tenant_documents WHERE organization_id = ?1")
                .and_then(|mut stmt| stmt.query_row([&org_id], |r| r.get(0)))
                .map_err(backend)?;
            if u64::try_from(held).unwrap_or(0) >= max_documents {
                return Err(StoreError::Quota(Limit::Documents));
            }
            tx.prepare_cached(
                "INSERT INTO tenant_documents (organization_id, id, document, version, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 1, ?4, ?4)",
            )
            .and_then(|mut stmt| stmt.execute(params![org_id, id, text, ts(at)]))
            .map_err(|e| {
                // The organization was deleted meanwhile.
                if is_foreign_key(&e) {
                    StoreError::Gone
                } else {
                    backend(e)
                }
            })?;
            Ok(())
        })
        .await?;
        Ok(stored)
    }

    async fn get_document(
        &self,
        org: &Organization,
        id: &str,
    ) -> Result<Option<StoredDocument>, StoreError> {
        let (org_id, id) = (org.id.clone(), id.to_owned());
        self.read(move |conn| one(conn, &org_id, &id)).await
    }

    async fn write_document(
        &self,
        org: &Organization,
        id: &str,
        expected: i64,
        data: Option<&Map<String, Value>>,
        at: DateTime<Utc>,
    ) -> Result<Option<StoredDocument>, StoreError> {
        let (org_id, id) = (org.id.clone(), id.to_owned());
        let text = data.map(|d| Value::Object(d.clone()).to_string());
        self.write(move |tx, _| {
            let current = one(tx, &org_id, &id)?.ok_or(StoreError::Gone)?;
            if current.version != expected {
                return Err(StoreError::Precondition);
            }
            match text {
                Some(text) => {
                    tx.execute(
                        "UPDATE tenant_documents SET document = ?3, version = version + 1, updated_at = ?4
                         WHERE organization_id = ?1 AND id = ?2",
                        params![org_id, id, text, ts(at)],
                    )
                    .map_err(backend)?;
                    one(tx, &org_id, &id)
                }
                None => {
                    tx.execute(
                        "DELETE FROM tenant_documents WHERE organization_id = ?1 AND id = ?2",
                        params![org_id, id],
                    )
                    .map_err(backend)?;
                    Ok(None)
                }
            }
        })
        .await
    }

    async fn list_documents(
        &self,
        org: &Organization,
        filter: &Filter,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<StoredDocument>, StoreError> {
        let (conditions, filter_params) = render(filter);
        let org_id = org.id.clone();
        self.read(move |conn| {
            // The primary key orders and starts the page: page 1,000 seeks like page 1.
            let sql = format!(
                "SELECT {COLUMNS} FROM tenant_documents WHERE organization_id = ? AND id > ?{conditions} ORDER BY id LIMIT ?"
            );
            let mut all = vec![Sql::Text(org_id), Sql::Text(after.unwrap_or_default())];
            all.extend(filter_params);
            all.push(Sql::Integer(i64::from(limit)));
            let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
            let rows = stmt
                .query_map(params_from_iter(all), from_row)
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn count_documents(
        &self,
        org: &Organization,
        filter: &Filter,
    ) -> Result<u64, StoreError> {
        let (conditions, filter_params) = render(filter);
        let org_id = org.id.clone();
        self.read(move |conn| {
            let sql = format!(
                "SELECT COUNT(*) FROM tenant_documents WHERE organization_id = ?{conditions}"
            );
            let mut all = vec![Sql::Text(org_id)];
            all.extend(filter_params);
            conn.prepare_cached(&sql)
                .and_then(|mut stmt| stmt.query_row(params_from_iter(all), |r| r.get::<_, i64>(0)))
                .map(|n| n.max(0) as u64)
                .map_err(backend)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_render_to_bound_parameters_only() {
        let filter = Filter::parse(Some(
            r#"{"a.b": 1, "s": "x' OR 1=1 --", "t": true, "n": null, "f": 1.5}"#,
        ))
        .unwrap();
        let (sql, params) = render(&filter);
        let number =
            " AND json_type(document, ?) IN ('integer', 'real') AND json_extract(document, ?) = ?";
        let text = " AND json_type(document, ?) = 'text' AND json_extract(document, ?) = ?";
        let boolean = " AND json_type(document, ?) = ?";
        let null = " AND json_type(document, ?) = 'null'";
        // By field name: a.b, f, n, s, t.
        assert_eq!(sql, [number, number, null, text, boolean].concat());
        assert_eq!(
            params,
            vec![
                Sql::Text("$.\"a\".\"b\"".into()),
                Sql::Text("$.\"a\".\"b\"".into()),
                Sql::Integer(1),
                Sql::Text("$.\"f\"".into()),
                Sql::Text("$.\"f\"".into()),
                Sql::Real(1.5),
                Sql::Text("$.\"n\"".into()),
                Sql::Text("$.\"s\"".into()),
                Sql::Text("$.\"s\"".into()),
                Sql::Text("x' OR 1=1 --".into()),
                Sql::Text("$.\"t\"".into()),
                Sql::Text("true".into()),
            ]
        );
        let (sql, params) = render(&Filter::parse(Some(r#"{"t": false}"#)).unwrap());
        assert_eq!(sql, " AND json_type(document, ?) = ?");
        assert_eq!(params[1], Sql::Text("false".into()));
        assert_eq!(render(&Filter::default()), (String::new(), vec![]));
    }

    #[test]
    fn no_input_reaches_the_query_text() {
        use rand::{Rng, SeedableRng};
        let fragments = [
            " AND json_type(document, ?) IN ('integer', 'real') AND json_extract(document, ?) = ?",
            " AND json_type(document, ?) = 'text' AND json_extract(document, ?) = ?",
            " AND json_type(document, ?) = 'null'",
            " AND json_type(document, ?) = ?",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let names = [
            "a",
            "b'",
            "c\"",
            "d; DROP TABLE x",
            "e)",
            "--",
            "$f",
            "g.h",
            "ü",
        ];
        let mut rendered = 0;
        for _ in 0..5_000 {
            let n = rng.random_range(0..10);
            let mut object = serde_json::Map::new();
            for _ in 0..n {
                let path: Vec<&str> = (0..rng.random_range(1..3))
                    .map(|_| names[rng.random_range(0..names.len())])
                    .collect();
                let value = match rng.random_range(0..5) {
                    0 => Value::Null,
                    1 => Value::Bool(rng.random()),
                    2 => Value::from(rng.random::<i32>()),
                    3 => Value::from("x') OR ('1'='1"),
                    _ => serde_json::json!({"$ne": 1}),
                };
                object.insert(path.join("."), value);
            }
            let Ok(filter) = Filter::parse(Some(&Value::Object(object).to_string())) else {
                continue;
            };
            let (mut sql, params) = render(&filter);
            assert_eq!(sql.matches('?').count(), params.len());
            // The text is made of the known fragments only, whatever the input.
            while !sql.is_empty() {
                let fragment = fragments.iter().find(|f| sql.starts_with(**f)).expect(&sql);
                sql.drain(..fragment.len());
            }
            rendered += 1;
        }
        assert!(rendered > 100, "only {rendered} filters parsed");
    }

    #[test]
    fn legacy_documents_take_their_time_from_their_id() {
        assert_eq!(id_time("65a1b2c3d4e5f6a7b8c9d0e1").timestamp(), 0x65a1_b2c3);
        assert_eq!(id_time("zz").timestamp(), 0);
    }
}
