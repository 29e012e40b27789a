//! Limits on the organizations' own data: documents, and how long audit events are kept.

use super::parse::parse_num;
use super::ConfigError;

/// How much an organization may store, and for how long its audit events are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantLimits {
    /// Largest document, as compact JSON (`MAX_DOCUMENT_BYTES`, default 65,536; 1 KiB to 16 MiB,
    /// MongoDB's document limit).
    pub max_document_bytes: usize,
    /// Most documents one organization may hold (`TENANT_MAX_DOCUMENTS`, default 1,000,000).
    pub max_documents: u64,
    /// Days audit events are kept (`AUDIT_RETENTION_DAYS`, default 365; 1 to 36,500), also
    /// those of deleted organizations.
    pub audit_retention_days: u32,
}

impl TenantLimits {
    pub(super) fn parse(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            max_document_bytes: parse_num(
                get,
                "MAX_DOCUMENT_BYTES",
                65_536,
                1_024,
                16 * 1024 * 1024,
            )?,
            max_documents: parse_num(get, "TENANT_MAX_DOCUMENTS", 1_000_000, 1, 1_000_000_000_000)?,
            audit_retention_days: parse_num(get, "AUDIT_RETENTION_DAYS", 365, 1, 36_500)?,
        })
    }

    /// The largest request body a document route reads: the document with room for whitespace.
    /// Anything longer is a 413 before it is read whole.
    pub fn max_body_bytes(&self) -> usize {
        self.max_document_bytes * 2 + 1024
    }
}
