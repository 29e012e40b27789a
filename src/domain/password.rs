//! Passwords, checked against bcrypt's limits before they are hashed.

use std::fmt;

use super::Invalid;

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// bcrypt reads at most 72 bytes; anything longer would be silently truncated, so it is refused.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// The 3,000 most common passwords of at least 8 characters (zxcvbn's frequency list, MIT;
/// see assets/common-passwords.LICENSE), lower-case, one per line.
static COMMON: &str = include_str!("../../assets/common-passwords.txt");

fn is_common(password: &str) -> bool {
    use std::collections::HashSet;
    use std::sync::OnceLock;
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON.lines().collect())
        .contains(password.to_lowercase().as_str())
}

/// A new password: 8 characters to 72 bytes, not one of the 3,000 most common. `Debug` never
/// prints it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Checks the length rules (no trimming: spaces are part of a password).
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        check_max(raw)?;
        if raw.chars().count() < MIN_PASSWORD_CHARS {
            return Err(Invalid::new(
                "string_too_short",
                format!("password must be at least {MIN_PASSWORD_CHARS} characters"),
            ));
        }
        if is_common(raw) {
            return Err(Invalid::new(
                "value_error",
                "password is one of the most common passwords; choose another",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The password, for the hasher only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The same password offered to be checked against a stored hash (a new password meets
    /// every rule a login password does).
    pub fn as_login(&self) -> LoginPassword {
        LoginPassword(self.0.clone())
    }
}

/// A password offered at login or re-authentication: only bcrypt's 72-byte limit applies
/// (a longer one could only "match" through truncation).
#[derive(Clone)]
pub struct LoginPassword(String);

impl LoginPassword {
    /// Checks that the password is non-empty and within bcrypt's limit.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() {
            return Err(Invalid::new("missing", "password must not be empty"));
        }
        check_max(raw)?;
        Ok(Self(raw.to_owned()))
    }

    /// The password, for the verifier only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

fn check_max(raw: &str) -> Result<(), Invalid> {
    if raw.len() > MAX_PASSWORD_BYTES {
        return Err(Invalid::new(
            "string_too_long",
            format!("password must be at most {MAX_PASSWORD_BYTES} bytes (bcrypt's limit)"),
        ));
    }
    if raw.contains('\0') {
        return Err(Invalid::new(
            "value_error",
            "password must not contain NUL characters",
        ));
    }
    Ok(())
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

impl fmt::Debug for LoginPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LoginPassword([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_rules() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("kq8#Lm2x").is_ok());
        assert!(Password::parse("12345678").is_err(), "common");
        assert!(Password::parse("PassWord1").is_err(), "common, in any case");
        assert!(Password::parse(&"p".repeat(72)).is_ok());
        assert!(Password::parse(&"p".repeat(73)).is_err());
        // 25 three-byte characters: 25 characters but 75 bytes.
        assert!(Password::parse(&"€".repeat(25)).is_err());
        assert!(LoginPassword::parse("").is_err());
        assert!(LoginPassword::parse(&"p".repeat(73)).is_err());
    }

    #[test]
    fn debug_hides_the_password() {
        let p = Password::parse("hunter2hunter2").unwrap();
        assert_eq!(format!("{p:?}"), "Password([redacted])");
        assert_eq!(format!("{:?}", p.as_login()), "LoginPassword([redacted])");
        assert_eq!(p.as_login().expose(), "hunter2hunter2");
    }
}
