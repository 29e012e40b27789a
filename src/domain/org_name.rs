//! Organization names and the tenant collection name derived from them.

use unicode_normalization::UnicodeNormalization;

use super::Invalid;

/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest tenant collection name, in bytes. MongoDB caps a namespace (`db.collection`) at 255
/// bytes and FerretDB a collection name at 235; 120 leaves room for any `MASTER_DB_NAME` we accept.
pub const MAX_COLLECTION_BYTES: usize = 120;
/// Prefix of every tenant collection (never `system.`, never starting with `.` or `$`).
pub const COLLECTION_PREFIX: &str = "org_";

/// A valid organization name: the trimmed display name plus its slug.
///
/// Two names with the same slug are the same organization; the slug is what the stores index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgName {
    display: String,
    slug: String,
}

impl OrgName {
    /// Trims `raw` and checks it: 1–100 characters, no control characters, a non-empty slug
    /// that yields a collection name of at most [`MAX_COLLECTION_BYTES`] bytes.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let display = raw.trim();
        let chars = display.chars().count();
        if chars == 0 {
            return Err(Invalid::new(
                "string_too_short",
                "organization_name must not be empty",
            ));
        }
        if chars > MAX_NAME_CHARS {
            return Err(Invalid::new(
                "string_too_long",
                format!("organization_name must be at most {MAX_NAME_CHARS} characters"),
            ));
        }
        if display.chars().any(char::is_control) {
            return Err(Invalid::new(
                "value_error",
                "organization_name must not contain control characters",
            ));
        }
        let slug = slugify(display);
        if slug.is_empty() {
            return Err(Invalid::new(
                "value_error",
                "organization_name must contain at least one letter or digit",
            ));
        }
        if COLLECTION_PREFIX.len() + slug.len() > MAX_COLLECTION_BYTES {
            return Err(Invalid::new(
                "string_too_long",
                format!(
                    "organization_name is too long once made a collection name (at most {} bytes of letters and digits)",
                    MAX_COLLECTION_BYTES - COLLECTION_PREFIX.len()
                ),
            ));
        }
        Ok(Self {
            display: display.to_owned(),
            slug,
        })
    }

    /// The name as the organization chose it (trimmed).
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// Lower-cased letters and digits, runs of anything else folded into one `_`.
    pub fn slug(&self) -> &str {
        &self.slug
    }

    /// The tenant collection (MongoDB) or table (embedded store): `org_<slug>`.
    pub fn collection_name(&self) -> String {
        format!("{COLLECTION_PREFIX}{}", self.slug)
    }
}

/// Compatibility-normalizes (so full-width `Ａ` and `A` agree), lower-cases, and folds every
/// run of characters that are not letters or digits into a single `_`, trimmed at both ends.
fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    let mut pending_sep = false;
    for c in name.nfkc().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            if pending_sep && !slug.is_empty() {
                slug.push('_');
            }
            pending_sep = false;
            slug.push(c);
        } else {
            pending_sep = true;
        }
    }
    slug
}

/// True when `name` has the shape of a tenant collection this service creates.
pub fn is_tenant_collection(name: &str) -> bool {
    name.strip_prefix(COLLECTION_PREFIX).is_some_and(|slug| {
        !slug.is_empty()
            && !slug.starts_with('_')
            && !slug.ends_with('_')
            && slug.chars().all(|c| c.is_alphanumeric() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_names_share_a_slug() {
        for name in [
            "Acme Corp",
            "acme-corp",
            "ACME_CORP",
            "  Acme   Corp  ",
            "--acme..corp--",
            "Ａｃｍｅ Corp",
        ] {
            let parsed = OrgName::parse(name).unwrap();
            assert_eq!(parsed.slug(), "acme_corp", "{name}");
            assert_eq!(parsed.collection_name(), "org_acme_corp");
        }
    }

    #[test]
    fn display_name_is_trimmed_not_folded() {
        let n = OrgName::parse("  Acme Corp ").unwrap();
        assert_eq!(n.as_str(), "Acme Corp");
    }

    #[test]
    fn unicode_letters_are_kept() {
        assert_eq!(OrgName::parse("Café Noir").unwrap().slug(), "café_noir");
        assert_eq!(
            OrgName::parse("日本 株式会社").unwrap().slug(),
            "日本_株式会社"
        );
    }

    #[test]
    fn refused_names_say_why() {
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            ("!!!---", "letter or digit"),
            ("Acme\u{0}Corp", "control"),
            ("Acme\nCorp", "control"),
            ("$$$", "letter or digit"),
        ];
        for (name, why) in cases {
            let err = OrgName::parse(name).unwrap_err();
            assert!(err.message.contains(why), "{name:?}: {}", err.message);
        }
        assert!(OrgName::parse(&"a".repeat(101)).is_err());
        assert!(OrgName::parse(&"a".repeat(100)).is_ok());
        // 100 characters, but 300 bytes once a slug: longer than a collection name may be.
        assert!(OrgName::parse(&"日".repeat(100)).is_err());
    }

    #[test]
    fn collection_names_are_safe_everywhere() {
        for name in [
            "system.users",
            "a$b",
            "../../etc",
            "x\"; DROP TABLE admins; --",
            ".hidden",
        ] {
            let c = OrgName::parse(name).unwrap().collection_name();
            assert!(c.starts_with("org_"));
            assert!(!c.contains(['$', '.', '"', '\0', ';', ' ', '/']), "{c}");
            assert!(is_tenant_collection(&c));
        }
    }
}
