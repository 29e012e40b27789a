//! `POST /org/api-keys` parsed into domain values, once (see `forms.rs`).

use super::api_keys::CreateKeyRequest;
use super::forms::Fields;
use crate::domain::{key_days, key_name, key_role, MemberRole};
use crate::error::ApiError;

/// A new key's name, role and lifetime, parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyForm {
    pub name: String,
    pub role: MemberRole,
    /// Days it works; `None`: until revoked.
    pub days: Option<i64>,
}

impl TryFrom<CreateKeyRequest> for KeyForm {
    type Error = ApiError;

    fn try_from(body: CreateKeyRequest) -> Result<Self, ApiError> {
        let mut fields = Fields::new();
        let name = fields.take("name", key_name(&body.name));
        let role = fields.take("role", key_role(&body.role));
        let days = fields.take("expires_in_days", key_days(body.expires_in_days));
        let form = (|| {
            Some(Self {
                name: name?,
                role: role?,
                days: days?,
            })
        })();
        fields.finish(form)
    }
}

#[cfg(test)]
mod tests {
    use super::super::forms::failed_locs as failed;
    use super::*;

    fn form(name: &str, role: &str, days: Option<i64>) -> Result<KeyForm, ApiError> {
        KeyForm::try_from(CreateKeyRequest {
            name: name.into(),
            role: role.into(),
            expires_in_days: days,
        })
    }

    #[test]
    fn every_bad_field_is_named() {
        assert_eq!(
            form(" deploy ", "viewer", Some(30)).unwrap(),
            KeyForm {
                name: "deploy".into(),
                role: MemberRole::Viewer,
                days: Some(30)
            }
        );
        assert_eq!(form("d", "member", None).unwrap().days, None);
        assert_eq!(
            failed(form("", "owner", Some(0)).unwrap_err()),
            ["body.name", "body.role", "body.expires_in_days"]
        );
        assert_eq!(failed(form("d", "admin", None).unwrap_err()), ["body.role"]);
        assert_eq!(
            failed(form("d", "viewer", Some(3651)).unwrap_err()),
            ["body.expires_in_days"]
        );
    }
}
