//! `org-service audit verify|export`: the operator's view of every organization's audit log,
//! deleted organizations included (their events are kept for `AUDIT_RETENTION_DAYS`).

use std::io::Write;

use futures::TryStreamExt;

use crate::audit_log::{ndjson, verify_chain};
use crate::config::Config;
use crate::domain::{OrgName, TimeRange};
use crate::storage::{self, Role, Store};

/// The chain `wanted` names: an organization id, or a name (any spelling with the same slug)
/// that exactly one audited organization had at its latest event.
async fn resolve(store: &dyn Store, wanted: &str) -> anyhow::Result<String> {
    let audited = store.audited_organizations().await?;
    if audited.iter().any(|(id, _)| id == wanted) {
        return Ok(wanted.to_owned());
    }
    let slug = OrgName::parse(wanted)
        .map(|n| n.slug().to_owned())
        .map_err(|e| anyhow::anyhow!("--org {wanted:?} is neither an id nor a name: {e}"))?;
    let named: Vec<&String> = audited
        .iter()
        .filter(|(_, s)| *s == slug)
        .map(|(id, _)| id)
        .collect();
    match named.as_slice() {
        [one] => Ok((*one).clone()),
        [] => anyhow::bail!("no audit log of an organization named {wanted:?}"),
        many => anyhow::bail!(
            "several organizations were named {wanted:?}; give one id: {}",
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Verifies the chain of `org` (every chain without it), printing one line per chain.
/// Returns whether every chain verified.
pub async fn verify(
    config: &Config,
    org: Option<&str>,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let store = storage::connect(config, config.testing.failpoints.clone(), Role::Tool).await?;
    let chains = match org {
        Some(wanted) => vec![(resolve(store.as_ref(), wanted).await?, String::new())],
        None => store.audited_organizations().await?,
    };
    let mut all_ok = true;
    for (id, _) in &chains {
        let v = verify_chain(store.as_ref(), id).await?;
        all_ok &= v.ok;
        writeln!(
            out,
            "{}",
            serde_json::json!({ "organization_id": id, "verification": v })
        )?;
    }
    store.close().await;
    Ok(all_ok)
}

/// Writes the events of `org` in `range` to `out` as NDJSON, oldest first.
pub async fn export(
    config: &Config,
    org: &str,
    range: TimeRange,
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    let store = storage::connect(config, config.testing.failpoints.clone(), Role::Tool).await?;
    let id = resolve(store.as_ref(), org).await?;
    let mut lines = 0;
    let mut chunks = Box::pin(ndjson(std::sync::Arc::clone(&store), id, range));
    while let Some(chunk) = chunks.try_next().await? {
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        out.write_all(&chunk)?;
    }
    out.flush()?;
    store.close().await;
    Ok(lines)
}
