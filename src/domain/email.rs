//! Admin email addresses.

use validator::ValidateEmail;

use super::Invalid;

/// Longest address accepted (RFC 5321's path limit).
pub const MAX_EMAIL_BYTES: usize = 254;

/// A syntactically valid email, lower-cased: addresses compare case-insensitively, so the
/// service stores and indexes one form only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Trims, lower-cases and checks the address.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(Invalid::new("missing", "email must not be empty"));
        }
        if email.len() > MAX_EMAIL_BYTES {
            return Err(Invalid::new(
                "string_too_long",
                format!("email must be at most {MAX_EMAIL_BYTES} bytes"),
            ));
        }
        if email.chars().any(char::is_control) || !email.validate_email() {
            return Err(Invalid::new(
                "value_error",
                "email is not a valid email address",
            ));
        }
        Ok(Self(email))
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized() {
        assert_eq!(
            Email::parse(" Admin@Acme.COM ").unwrap().as_str(),
            "admin@acme.com"
        );
    }

    #[test]
    fn emails_may_be_254_bytes_and_no_more() {
        let local = "a".repeat(64);
        // `len` bytes of domain: labels of at most 51 characters, then ".com".
        let domain = |len: usize| {
            let mut d = format!("{}.", "d".repeat(50)).repeat(6)[..len - 4].to_owned();
            if d.ends_with('.') {
                d.pop();
                d.push('d');
            }
            format!("{d}.com")
        };
        let at_limit = format!("{local}@{}", domain(254 - 65));
        assert_eq!(at_limit.len(), 254);
        assert_eq!(Email::parse(&at_limit).unwrap().as_str(), at_limit);
        let over = format!("{local}@{}", domain(255 - 65));
        assert_eq!(over.len(), 255);
        let err = Email::parse(&over).unwrap_err();
        assert!(err.message.contains("at most 254 bytes"), "{}", err.message);
    }

    #[test]
    fn bad_emails_are_refused() {
        for bad in ["", "plain", "a@", "@b.com", "a b@c.com", "a@b\u{0}.com"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }
}
