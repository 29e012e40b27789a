//! The load benchmark's targets and its Markdown report.

use serde_json::{json, Value};

use crate::common::round;

/// The targets we hold ourselves to, with pass/fail.
pub fn targets(store: &str, f: &serde_json::Map<String, Value>) -> Value {
    let figures = Value::Object(f.clone());
    let num = |path: &[&str]| {
        path.iter()
            .try_fold(&figures, |v, k| v.get(*k))
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN)
    };
    let mut rows = vec![
        (
            "GET /org/get at 32 connections ≥ 0.8 × direct lookups",
            num(&["get_c32", "ratio"]),
            0.8,
            true,
        ),
        (
            "GET /org/get at 64 connections ≥ 0.8 × direct lookups",
            num(&["get_c64", "ratio"]),
            0.8,
            true,
        ),
        (
            "logins ≥ 0.9 × bcrypt ceiling (cores ÷ one verify)",
            num(&["login", "ratio"]),
            0.9,
            true,
        ),
        (
            "GET p99 while logins saturate ≤ 25 ms",
            num(&["get_while_logins_saturate", "get", "p99_ms"]),
            25.0,
            false,
        ),
        (
            "GET /org/members (100 members) ≥ 0.5 × GET /org/get",
            num(&["members_list_c32", "ratio"]),
            0.5,
            true,
        ),
        (
            "invitation accepts ≥ 0.8 × bcrypt ceiling (cores ÷ one hash)",
            num(&["accept", "ratio"]),
            0.8,
            true,
        ),
        (
            "GET /org/documents/{id} ≥ 0.8 × GET /org/get",
            num(&["document_get_c32", "ratio"]),
            0.8,
            true,
        ),
        (
            "GET /org/documents/{id} with an API key ≥ 0.9 × with a token",
            num(&["document_get_api_key_c32", "ratio"]),
            0.9,
            true,
        ),
        (
            "renames (re-authenticated, audited) ≥ 0.8 × bcrypt ceiling",
            num(&["rename_throughput", "ratio"]),
            0.8,
            true,
        ),
        (
            "GET /org/audit p99 deep in a long log ≤ 1.25 × the first page",
            num(&["audit_pages", "ratio"]),
            1.25,
            false,
        ),
        (
            "list page p99 deep in a large tenant ≤ 1.25 × page 1",
            num(&["document_pages", "ratio"]),
            1.25,
            false,
        ),
        ("peak RSS ≤ 64 MiB", num(&["peak_rss_mib"]), 64.0, false),
        (
            "GET p99 with many organizations ≤ 1.25 × with 10",
            num(&["get_many_orgs", "ratio"]),
            1.25,
            false,
        ),
    ];
    if store == "mongodb" {
        rows.push((
            "rename of the large tenant ≤ 2 × the empty one",
            num(&["rename", "ratio"]),
            2.0,
            false,
        ));
    }
    if store == "embedded" {
        rows.push((
            "first healthy response ≤ 200 ms",
            num(&["first_healthy_ms"]),
            200.0,
            false,
        ));
    }
    Value::Array(
        rows.into_iter()
            .map(|(name, value, limit, at_least)| {
                let pass = if at_least {
                    value >= limit
                } else {
                    value <= limit
                };
                json!({ "target": name, "value": round(value), "limit": limit, "pass": pass })
            })
            .collect(),
    )
}

pub fn markdown(report: &Value) -> String {
    let m = &report["machine"];
    let mut s = format!(
        "### Benchmark ({} mode)\n\nMachine: {} cores, {} ({} GiB), bcrypt cost {}. Every figure is from one run; ceilings were measured in the same run.\n\n",
        report["mode"].as_str().unwrap_or("?"),
        m["cores"], m["cpu"].as_str().unwrap_or("unknown CPU"), m["memory_gib"], report["bcrypt_cost"]
    );
    for store in report["stores"].as_array().into_iter().flatten() {
        let f = &store["figures"];
        s += &format!(
            "#### {} store\n\n| figure | measured | ceiling | ratio |\n|---|---|---|---|\n",
            store["store"].as_str().unwrap_or("?")
        );
        for c in ["32", "64"] {
            let g = &f[format!("get_c{c}")];
            s += &format!("| GET /org/get, {c} connections: req/s (p50 / p99 ms) | {} ({} / {}) | {} ({} / {}) | {} |\n",
                g["api"]["ok_rps"], g["api"]["p50_ms"], g["api"]["p99_ms"], g["ceiling"]["rps"], g["ceiling"]["p50_ms"], g["ceiling"]["p99_ms"], g["ratio"]);
        }
        s += &format!(
            "| HTTP floor: GET /health/live, 32 connections: req/s (p50 / p99 ms) | {} ({} / {}) | | |\n",
            f["http_floor_c32"]["ok_rps"], f["http_floor_c32"]["p50_ms"], f["http_floor_c32"]["p99_ms"]
        );
        s += &format!(
            "| logins/s (bcrypt verify {} ms) | {} | {} | {} |\n",
            f["login"]["bcrypt_verify_ms"],
            f["login"]["api"]["ok_rps"],
            f["login"]["ceiling_rps"],
            f["login"]["ratio"]
        );
        s += &format!(
            "| GET p99 ms while logins saturate | {} | | |\n",
            f["get_while_logins_saturate"]["get"]["p99_ms"]
        );
        s += &format!(
            "| creates/s (bcrypt hash {} ms) | {} | {} | {} |\n",
            f["create"]["bcrypt_hash_ms"],
            f["create"]["rps"],
            f["create"]["ceiling_rps"],
            f["create"]["ratio"]
        );
        let m = &f["members_list_c32"];
        s += &format!(
            "| GET /org/members, 100 members, 32 connections: req/s (p50 / p99 ms) | {} ({} / {}) | GET /org/get: {} ({} / {}) | {} |\n",
            m["api"]["ok_rps"], m["api"]["p50_ms"], m["api"]["p99_ms"],
            m["get_org"]["ok_rps"], m["get_org"]["p50_ms"], m["get_org"]["p99_ms"], m["ratio"]
        );
        s += &format!(
            "| invitation accepts/s (new accounts) | {} | {} | {} |\n",
            f["accept"]["rps"], f["accept"]["ceiling_rps"], f["accept"]["ratio"]
        );
        let d = &f["document_get_c32"];
        s += &format!(
            "| GET /org/documents/{{id}}, 32 connections: req/s (p50 / p99 ms) | {} ({} / {}) | GET /org/get: {} ({} / {}) | {} |\n",
            d["api"]["ok_rps"], d["api"]["p50_ms"], d["api"]["p99_ms"],
            d["get_org"]["ok_rps"], d["get_org"]["p50_ms"], d["get_org"]["p99_ms"], d["ratio"]
        );
        let k = &f["document_get_api_key_c32"];
        s += &format!(
            "| GET /org/documents/{{id}} with an API key, 32 connections: req/s (p50 / p99 ms) | {} ({} / {}) | with a token: {} ({} / {}) | {} |\n",
            k["api_key"]["ok_rps"], k["api_key"]["p50_ms"], k["api_key"]["p99_ms"],
            k["bearer"]["ok_rps"], k["bearer"]["p50_ms"], k["bearer"]["p99_ms"], k["ratio"]
        );
        s += &format!(
            "| POST /org/documents ({} B), 32 connections: req/s (p99 ms) | {} ({}) | | |\n",
            f["document_create_c32"]["bytes"],
            f["document_create_c32"]["rps"],
            f["document_create_c32"]["p99_ms"]
        );
        let r = &f["rename_throughput"];
        s += &format!(
            "| renames/s (re-authenticated, audited), {} connections: req/s (p99 ms) | {} ({}) | {} | {} |\n",
            "2×cores", r["api"]["ok_rps"], r["api"]["p99_ms"], r["ceiling_rps"], r["ratio"]
        );
        let a = &f["audit_pages"];
        s += &format!(
            "| GET /org/audit p99 ms, {} events: first page / cursor {} | {} / {} | | {} |\n",
            a["events"], a["deep_cursor"], a["first"]["p99_ms"], a["deep"]["p99_ms"], a["ratio"]
        );
        let p = &f["document_pages"];
        s += &format!(
            "| list p99 ms, {} documents: page 1 / page {} | {} / {} | | {} |\n",
            p["documents"], p["deep_page"], p["first_p99_ms"], p["deep_p99_ms"], p["ratio"]
        );
        s += &format!(
            "| filtered count over {} documents: req/s (p99 ms) | {} ({}) | | |\n",
            f["document_count"]["documents"],
            f["document_count"]["rps"],
            f["document_count"]["p99_ms"]
        );
        s += &format!(
            "| store rename ms: empty tenant / {} documents | {} / {} | | {} |\n",
            f["rename"]["large_documents"],
            f["rename"]["empty_ms"],
            f["rename"]["large_ms"],
            f["rename"]["ratio"]
        );
        s += &format!(
            "| GET p99 ms: 10 / {} organizations | {} / {} | | {} |\n",
            f["get_many_orgs"]["organizations"],
            f["get_many_orgs"]["p99_ms_with_10"],
            f["get_many_orgs"]["p99_ms"],
            f["get_many_orgs"]["ratio"]
        );
        s += &format!(
            "| peak RSS MiB | {} | | |\n| first healthy response ms | {} | | |\n\n",
            f["peak_rss_mib"], f["first_healthy_ms"]
        );
        s += "| target | value | limit | |\n|---|---|---|---|\n";
        for t in store["targets"].as_array().into_iter().flatten() {
            s += &format!(
                "| {} | {} | {} | {} |\n",
                t["target"].as_str().unwrap_or("?"),
                t["value"],
                t["limit"],
                if t["pass"] == true {
                    "pass"
                } else {
                    "**miss**"
                }
            );
        }
        s += "\n";
    }
    s
}
