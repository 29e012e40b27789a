//! Where a tenant's documents live on MongoDB.

use std::fmt;
use std::str::FromStr;

/// `TENANT_LAYOUT`: a collection per tenant, or one shared collection keyed by tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TenantLayout {
    /// The original's shape: the tenant's documents in its own collection `org_<slug>`.
    #[default]
    Collection,
    /// Every tenant's documents in `tenant_documents`, keyed by the organization's id (what
    /// MongoDB advises beyond a bounded number of tenants).
    Shared,
}

impl TenantLayout {
    /// The name used in configuration, on the command line and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Collection => "collection",
            Self::Shared => "shared",
        }
    }
}

impl fmt::Display for TenantLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TenantLayout {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "collection" => Ok(Self::Collection),
            "shared" => Ok(Self::Shared),
            other => Err(format!(
                "{other:?} is not a tenant layout: use collection or shared"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_round_trip_through_their_names() {
        for layout in [TenantLayout::Collection, TenantLayout::Shared] {
            assert_eq!(layout.as_str().parse::<TenantLayout>(), Ok(layout));
            assert_eq!(layout.to_string(), layout.as_str());
        }
        assert_eq!(TenantLayout::default(), TenantLayout::Collection);
        assert_eq!(TenantLayout::Collection.as_str(), "collection");
        assert_eq!(TenantLayout::Shared.as_str(), "shared");
        let err = "Shared".parse::<TenantLayout>().unwrap_err();
        assert!(err.contains("\"Shared\" is not a tenant layout"), "{err}");
        assert!("".parse::<TenantLayout>().is_err());
    }
}
