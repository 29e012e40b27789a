//! Organization names and the tenant collection name derived from them.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use super::Invalid;

/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest tenant collection name, in bytes. MongoDB caps a namespace (`db.collection`) at 255
/// bytes and FerretDB a collection name at 235; 120 leaves room for any `MASTER_DB_NAME` we accept.
pub const MAX_COLLECTION_BYTES: usize = 120;
/// Prefix of every tenant collection (never `system.`, never starting with `.` or `$`).
pub const COLLECTION_PREFIX: &str = "org_";

/// A valid organization name: the trimmed display name, its slug and its confusable skeleton.
///
/// Two names with the same slug are the same organization; so are two names whose slugs look
/// alike (`acme` in Latin letters and `аcme` with a Cyrillic `а`): their skeletons, in the sense
/// of Unicode TS #39, are equal. The stores index both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgName {
    display: String,
    slug: String,
    skeleton: String,
}

impl OrgName {
    /// Checks `raw` and trims it: at most 100 characters as sent (so that the OpenAPI
    /// document's `maxLength` is exactly the rule), no control, format or line/paragraph
    /// separator characters, and at least one letter or digit (a non-empty slug).
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let display = raw.trim();
        if display.is_empty() {
            return Err(Invalid::new(
                "string_too_short",
                "organization_name must not be empty",
            ));
        }
        if raw.chars().count() > MAX_NAME_CHARS {
            return Err(Invalid::new(
                "string_too_long",
                format!("organization_name must be at most {MAX_NAME_CHARS} characters"),
            ));
        }
        if display.chars().any(is_invisible_or_control) {
            return Err(Invalid::new(
                "value_error",
                "organization_name must not contain control, format (zero-width, bidirectional) or line/paragraph separator characters",
            ));
        }
        let slug = slugify(display);
        if slug.is_empty() {
            return Err(Invalid::new(
                "value_error",
                "organization_name must contain at least one letter or digit",
            ));
        }
        let skeleton = skeleton_of(&slug);
        Ok(Self {
            display: display.to_owned(),
            slug,
            skeleton,
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

    /// The slug's confusable skeleton (Unicode TS #39): names with equal skeletons look alike
    /// and count as the same organization.
    pub fn skeleton(&self) -> &str {
        &self.skeleton
    }

    /// The tenant collection (MongoDB) or table (embedded store): `org_<slug>`, at most
    /// [`MAX_COLLECTION_BYTES`] bytes. A slug too long for that (100 characters of a script
    /// that takes three or four bytes each) is cut at a character boundary and ended with the
    /// first 8 hex digits of its SHA-256, so every valid name has a valid, distinct collection.
    pub fn collection_name(&self) -> String {
        collection_for(&self.slug)
    }
}

/// The rule [`OrgName::parse`] applies, as a regular expression for the OpenAPI document: any
/// number of allowed characters around at least one that counts as a letter or digit, where
/// "allowed" and "letter or digit" are spelled out as explicit character ranges (computed once,
/// from the same functions `parse` uses), so a generator reading the document (schemathesis,
/// with Python's `re`, which has no `\p{…}` classes) agrees with the server character for
/// character. Length is the document's `maxLength`; look-alike names are a 409, not a pattern.
pub fn name_pattern() -> &'static str {
    static PATTERN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| {
        let forbidden = char_class(is_invisible_or_control);
        let letter_or_digit =
            char_class(|c| !is_invisible_or_control(c) && counts_as_alphanumeric(c));
        format!("^[^{forbidden}]*[{letter_or_digit}][^{forbidden}]*$")
    })
}

/// True when `c` alone gives a non-empty slug (it is, or normalizes to, a letter or digit).
fn counts_as_alphanumeric(c: char) -> bool {
    c.is_alphanumeric() || !slugify(c.encode_utf8(&mut [0; 4])).is_empty()
}

/// The characters for which `keep` holds, as the inside of a regex character class: ranges of
/// characters, with the class's own metacharacters escaped and the BMP outside printable ASCII
/// written `\uXXXX`.
fn char_class(keep: impl Fn(char) -> bool) -> String {
    fn literal(c: char, class: &mut String) {
        use std::fmt::Write;
        if matches!(c, '\\' | ']' | '[' | '^' | '-') {
            class.push('\\');
            class.push(c);
        } else if (' '..='~').contains(&c) || u32::from(c) > 0xFFFF {
            class.push(c);
        } else {
            // Every other character of the Basic Multilingual Plane as `\uXXXX`, which Python's
            // `re` and ECMAScript read alike: literal controls and separators in the document
            // crash some renderers (ReDoc's sampler in Chromium did).
            let _ = write!(class, "\\u{:04x}", u32::from(c));
        }
    }
    fn range(start: char, end: char, class: &mut String) {
        literal(start, class);
        if end != start {
            class.push('-');
            literal(end, class);
        }
    }
    let mut class = String::new();
    let mut run: Option<(char, char)> = None;
    for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
        if !keep(c) {
            continue;
        }
        run = match run {
            Some((start, end)) if u32::from(end) + 1 == u32::from(c) => Some((start, c)),
            Some((start, end)) => {
                range(start, end, &mut class);
                Some((c, c))
            }
            None => Some((c, c)),
        };
    }
    if let Some((start, end)) = run {
        range(start, end, &mut class);
    }
    class
}

/// The collection name of a slug (see [`OrgName::collection_name`]).
fn collection_for(slug: &str) -> String {
    const HASH_HEX: usize = 8;
    if COLLECTION_PREFIX.len() + slug.len() <= MAX_COLLECTION_BYTES {
        return format!("{COLLECTION_PREFIX}{slug}");
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(slug.as_bytes());
    let hash: String = digest
        .iter()
        .take(HASH_HEX / 2)
        .map(|b| format!("{b:02x}"))
        .collect();
    // Room for the prefix, a `_` and the hash.
    let room = MAX_COLLECTION_BYTES - COLLECTION_PREFIX.len() - 1 - HASH_HEX;
    let mut cut = room;
    while !slug.is_char_boundary(cut) {
        cut -= 1;
    }
    let head = slug[..cut].trim_end_matches('_');
    format!("{COLLECTION_PREFIX}{head}_{hash}")
}

/// Characters a name must not contain: controls (Cc, C1 included), format characters (Cf:
/// zero-width joiners and spaces, bidirectional overrides, soft hyphens) and the line and
/// paragraph separators (Zl, Zp). They are invisible or reorder what is shown, so two names
/// that print the same could differ. Ordinary spaces (Zs) stay allowed.
fn is_invisible_or_control(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// The TS #39 skeleton of a slug (what it looks like, whatever the script of each letter).
pub fn skeleton_of(slug: &str) -> String {
    unicode_security::confusable_detection::skeleton(slug).collect()
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
        // The limit is on the name as sent, spaces included (what the document's maxLength says).
        assert!(OrgName::parse(&format!("  {}", "a".repeat(99))).is_err());
        assert!(OrgName::parse(&format!(" {}", "a".repeat(99))).is_ok());
    }

    #[test]
    fn only_names_of_tenant_collections_count_as_tenant_collections() {
        for yes in ["org_acme", "org_acme_corp", "org_日本", "org_a1"] {
            assert!(is_tenant_collection(yes), "{yes}");
        }
        for no in [
            "organizations",
            "admins",
            "reservations",
            "org_",
            "org__acme",
            "org_acme_",
            "org_a$b",
            "org_a.b",
            "org_a b",
            "system.users",
            "Org_acme",
            "xorg_acme",
        ] {
            assert!(!is_tenant_collection(no), "{no}");
        }
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

    #[test]
    fn invisible_and_reordering_characters_are_refused() {
        for name in [
            "Acme\u{200B}Corp", // zero-width space (Cf)
            "Acme\u{200D}Corp", // zero-width joiner (Cf)
            "Acme\u{202E}proC", // right-to-left override (Cf)
            "Acme\u{2066}Corp", // left-to-right isolate (Cf)
            "Acme\u{00AD}Corp", // soft hyphen (Cf)
            "Acme\u{FEFF}Corp", // byte order mark (Cf)
            "Acme\u{2028}Corp", // line separator (Zl)
            "Acme\u{2029}Corp", // paragraph separator (Zp)
            "Acme\u{0085}Corp", // next line, a C1 control (Cc)
            "Acme\u{009F}Corp", // the last C1 control
            "Acme\u{7F}Corp",   // delete (Cc)
        ] {
            let err = OrgName::parse(name).unwrap_err();
            assert!(err.message.contains("format"), "{name:?}: {}", err.message);
        }
        // Spaces of other widths (Zs) are fine, and fold into the slug like any space.
        assert_eq!(
            OrgName::parse("Acme\u{00A0}Corp").unwrap().slug(),
            "acme_corp"
        );
        assert_eq!(
            OrgName::parse("日本\u{3000}株式会社").unwrap().slug(),
            "日本_株式会社"
        );
        // The characters just outside the C1 block are letters and symbols, not controls.
        assert!(OrgName::parse("Acme\u{00A1}Corp").is_ok());
        assert!(OrgName::parse("Acme\u{007E}Corp").is_ok());
    }

    #[test]
    fn look_alike_names_share_a_skeleton() {
        let latin = OrgName::parse("Acme Corp").unwrap();
        let cyrillic = OrgName::parse("\u{0410}cme Corp").unwrap(); // Cyrillic capital A
        assert_ne!(latin.slug(), cyrillic.slug());
        assert_eq!(latin.skeleton(), cyrillic.skeleton());
        let greek = OrgName::parse("\u{0391}cme Corp").unwrap(); // Greek capital alpha
        assert_eq!(latin.skeleton(), greek.skeleton());
        assert_ne!(
            latin.skeleton(),
            OrgName::parse("Acme Corq").unwrap().skeleton()
        );
        // TS #39 maps `m` to `rn`: "modern" and "rnodern" are one organization.
        assert_eq!(skeleton_of("acme_corp"), "acrne_corp");
        assert_eq!(skeleton_of("rnodern"), skeleton_of("modern"));
        assert_eq!(
            OrgName::parse("日本 株式会社").unwrap().skeleton(),
            skeleton_of("日本_株式会社")
        );
    }

    #[test]
    fn long_slugs_get_a_bounded_hashed_collection_name() {
        // 116 bytes of slug fit exactly; 117 do not.
        let fits = OrgName::parse(&"a".repeat(100)).unwrap();
        assert_eq!(fits.collection_name(), format!("org_{}", "a".repeat(100)));
        let edge = collection_for(&"b".repeat(116));
        assert_eq!(edge, format!("org_{}", "b".repeat(116)));
        assert_eq!(edge.len(), MAX_COLLECTION_BYTES);
        let over = collection_for(&"b".repeat(117));
        assert_eq!(over.len(), MAX_COLLECTION_BYTES);
        assert!(
            over.starts_with(&format!("org_{}_", "b".repeat(107))),
            "{over}"
        );
        // 100 three-byte characters: 300 bytes of slug, cut at a character boundary.
        let long = OrgName::parse(&"日".repeat(100)).unwrap();
        let c = long.collection_name();
        assert!(c.len() <= MAX_COLLECTION_BYTES, "{c}");
        assert!(c.starts_with(&format!("org_{}_", "日".repeat(35))), "{c}");
        assert!(is_tenant_collection(&c));
        // Distinct long slugs with the same beginning get distinct collections.
        let other = OrgName::parse(&format!("{}月", "日".repeat(99))).unwrap();
        assert_ne!(other.collection_name(), c);
        // The hash is the first 8 hex digits of the slug's SHA-256.
        assert_eq!(&over[over.len() - 8..], "00e8d625");
        // A cut that lands on a separator does not leave two in a row.
        let separated = collection_for(&format!("{}_{}", "c".repeat(106), "d".repeat(20)));
        assert!(!separated.contains("__"), "{separated}");
    }

    #[test]
    fn the_name_pattern_spells_out_the_rule() {
        let pattern = name_pattern();
        assert!(
            pattern.starts_with(r"^[^\u0000-\u001f\u007f-\u009f\u00ad"),
            "{}",
            &pattern[..40]
        );
        assert!(pattern.ends_with("]*$"));
        assert_eq!(
            char_class(|c| matches!(c, 'a'..='c' | 'e' | '-' | ']')),
            "\\-\\]a-ce"
        );
        assert_eq!(char_class(|c| c == '^' || c == '\\'), "\\\\\\^");
        // Outside printable ASCII: `\uXXXX` in the BMP, the character itself beyond it.
        assert_eq!(char_class(|c| c == '日' || c == '\u{a0}'), r"\u00a0\u65e5");
        assert_eq!(char_class(|c| c == '\u{1D400}'), "\u{1D400}");
        // The last character of the BMP is still escaped; the first beyond it is not.
        assert_eq!(char_class(|c| c == '\u{FFFF}'), r"\uffff");
        assert_eq!(char_class(|c| c == '\u{10000}'), "\u{10000}");
        // The class a name needs one of: visible letters and digits only.
        let letters = pattern
            .split("]*[")
            .nth(1)
            .and_then(|rest| rest.split("][^").next())
            .unwrap();
        assert!(letters.starts_with("0-9A-Za-z"), "{}", &letters[..20]);
        assert!(!letters.contains(['!', ' ', '_']), "{letters}");
        assert!(counts_as_alphanumeric('日'));
        assert!(counts_as_alphanumeric('\u{338F}'), "㎏ normalizes to kg");
        assert!(!counts_as_alphanumeric('!'));
        assert!(!counts_as_alphanumeric(' '));
    }
}
