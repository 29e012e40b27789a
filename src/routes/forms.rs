//! Request bodies parsed into domain values, once, by `TryFrom`: a handler gets every field
//! parsed, or one 422 that names every field that failed (not only the first).

use super::admin::{ChangePasswordRequest, LoginRequest, RefreshRequest};
use super::orgs::{CreateOrgRequest, UpdateOrgRequest};
use crate::domain::{Email, Invalid, LoginPassword, OrgName, Password};
use crate::error::{ApiError, FieldError};

/// Collects the failures of a body's fields.
pub(super) struct Fields(Vec<FieldError>);

impl Fields {
    pub(super) fn new() -> Self {
        Self(Vec::new())
    }

    /// The parsed value of body field `name`, or `None` with its failure recorded.
    pub(super) fn take<T>(&mut self, name: &str, parsed: Result<T, Invalid>) -> Option<T> {
        parsed
            .map_err(|e| {
                self.0
                    .push(FieldError::new(&["body", name], e.kind, e.message))
            })
            .ok()
    }

    /// The form, if every field parsed (then no failure was recorded: a field is `None`
    /// exactly when its failure is); otherwise the 422 naming each failure.
    pub(super) fn finish<T>(self, form: Option<T>) -> Result<T, ApiError> {
        form.ok_or(ApiError::Validation(self.0))
    }
}

/// `POST /org/create`, parsed.
#[derive(Debug)]
pub struct NewOrgForm {
    pub name: OrgName,
    pub email: Email,
    pub password: Password,
}

impl TryFrom<CreateOrgRequest> for NewOrgForm {
    type Error = ApiError;

    fn try_from(body: CreateOrgRequest) -> Result<Self, ApiError> {
        let mut fields = Fields::new();
        let name = fields.take("organization_name", OrgName::parse(&body.organization_name));
        let email = fields.take("email", Email::parse(&body.email));
        let password = fields.take("password", Password::parse(&body.password));
        let form = (|| {
            Some(Self {
                name: name?,
                email: email?,
                password: password?,
            })
        })();
        fields.finish(form)
    }
}

/// `PUT /org/update`, parsed: the new name and the caller's credentials.
#[derive(Debug)]
pub struct RenameForm {
    pub name: OrgName,
    pub email: Email,
    pub password: LoginPassword,
}

impl TryFrom<UpdateOrgRequest> for RenameForm {
    type Error = ApiError;

    fn try_from(body: UpdateOrgRequest) -> Result<Self, ApiError> {
        let mut fields = Fields::new();
        let name = fields.take("organization_name", OrgName::parse(&body.organization_name));
        let email = fields.take("email", Email::parse(&body.email));
        let password = fields.take("password", LoginPassword::parse(&body.password));
        let form = (|| {
            Some(Self {
                name: name?,
                email: email?,
                password: password?,
            })
        })();
        fields.finish(form)
    }
}

/// `POST /admin/login`, parsed.
#[derive(Debug)]
pub struct LoginForm {
    pub email: Email,
    pub password: LoginPassword,
    /// The organization to log in to, when the account has several.
    pub organization: Option<OrgName>,
}

impl TryFrom<LoginRequest> for LoginForm {
    type Error = ApiError;

    fn try_from(body: LoginRequest) -> Result<Self, ApiError> {
        let mut fields = Fields::new();
        let email = fields.take("email", Email::parse(&body.email));
        let password = fields.take("password", LoginPassword::parse(&body.password));
        let organization = match &body.organization_name {
            None => Some(None),
            Some(name) => fields
                .take("organization_name", OrgName::parse(name))
                .map(Some),
        };
        let form = (|| {
            Some(Self {
                email: email?,
                password: password?,
                organization: organization?,
            })
        })();
        fields.finish(form)
    }
}

/// `POST /admin/refresh`, checked against its documented shape: 1 to 256 characters, counted
/// as characters (the document's `maxLength` counts characters; a byte count turned 256
/// non-ASCII characters into a 422 the document does not allow). Whether it is a live token is
/// the store's question, answered with 401.
#[derive(Debug)]
pub struct RefreshForm {
    pub token: String,
}

/// The longest refresh token accepted, in characters (ours are 68).
const MAX_REFRESH_TOKEN_CHARS: usize = 256;

impl TryFrom<RefreshRequest> for RefreshForm {
    type Error = ApiError;

    fn try_from(body: RefreshRequest) -> Result<Self, ApiError> {
        let chars = body.refresh_token.chars().count();
        if (1..=MAX_REFRESH_TOKEN_CHARS).contains(&chars) {
            Ok(Self {
                token: body.refresh_token,
            })
        } else {
            Err(ApiError::field(
                &["body", "refresh_token"],
                "value_error",
                "refresh_token must be a token from /admin/login",
            ))
        }
    }
}

/// `PUT /admin/password`, parsed.
#[derive(Debug)]
pub struct PasswordChangeForm {
    pub current: LoginPassword,
    pub new: Password,
}

impl TryFrom<ChangePasswordRequest> for PasswordChangeForm {
    type Error = ApiError;

    fn try_from(body: ChangePasswordRequest) -> Result<Self, ApiError> {
        let mut fields = Fields::new();
        let current = fields.take(
            "current_password",
            LoginPassword::parse(&body.current_password),
        );
        let new = fields.take("new_password", Password::parse(&body.new_password));
        let form = (|| {
            Some(Self {
                current: current?,
                new: new?,
            })
        })();
        fields.finish(form)
    }
}

/// The `loc` of every field a 422 names, joined by dots (`body.email`), in order: what the
/// forms' tests compare.
#[cfg(test)]
pub(super) fn failed_locs(e: ApiError) -> Vec<String> {
    match e {
        ApiError::Validation(errors) => errors
            .iter()
            .map(|f| {
                f.loc
                    .iter()
                    .map(|l| l.as_str().unwrap_or("").to_owned())
                    .collect::<Vec<_>>()
                    .join(".")
            })
            .collect(),
        other => panic!("not a 422: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `loc` of every field a 422 names, in order.
    fn failed_fields(e: ApiError) -> Vec<String> {
        match e {
            ApiError::Validation(errors) => errors
                .iter()
                .map(|f| {
                    assert_eq!(f.loc[0], "body");
                    f.loc[1].as_str().unwrap().to_owned()
                })
                .collect(),
            other => panic!("not a 422: {other:?}"),
        }
    }

    fn create(name: &str, email: &str, password: &str) -> Result<NewOrgForm, ApiError> {
        NewOrgForm::try_from(CreateOrgRequest {
            organization_name: name.into(),
            email: email.into(),
            password: password.into(),
        })
    }

    #[test]
    fn a_valid_create_parses_every_field() {
        let form = create("Acme Corp", "Admin@Acme.com", "SecurePass123!").unwrap();
        assert_eq!(form.name.slug(), "acme_corp");
        assert_eq!(form.email.as_str(), "admin@acme.com");
    }

    #[test]
    fn every_bad_field_is_named_once() {
        let all = create("", "nope", "short").unwrap_err();
        assert_eq!(
            failed_fields(all),
            ["organization_name", "email", "password"]
        );
        let one = create("Acme", "a@acme.com", "short").unwrap_err();
        assert_eq!(failed_fields(one), ["password"]);
        let first = create("\u{0}", "a@acme.com", "SecurePass123!").unwrap_err();
        assert_eq!(failed_fields(first), ["organization_name"]);
    }

    #[test]
    fn a_rename_takes_any_current_password_but_not_a_bad_name() {
        let rename = |name: &str, password: &str| {
            RenameForm::try_from(UpdateOrgRequest {
                organization_name: name.into(),
                email: "a@acme.com".into(),
                password: password.into(),
            })
        };
        assert!(
            rename("New Name", "x").is_ok(),
            "a short current password is not judged"
        );
        assert_eq!(
            failed_fields(rename("", "").unwrap_err()),
            ["organization_name", "password"]
        );
        let bad_email = RenameForm::try_from(UpdateOrgRequest {
            organization_name: "Ok".into(),
            email: "nope".into(),
            password: "x".into(),
        });
        assert_eq!(failed_fields(bad_email.unwrap_err()), ["email"]);
    }

    #[test]
    fn refresh_tokens_are_one_to_256_characters_not_bytes() {
        let refresh = |token: String| {
            RefreshForm::try_from(RefreshRequest {
                refresh_token: token,
            })
        };
        assert_eq!(refresh("x".into()).unwrap().token, "x");
        assert!(
            refresh("é".repeat(256)).is_ok(),
            "256 characters, 512 bytes"
        );
        assert_eq!(
            failed_fields(refresh("é".repeat(257)).unwrap_err()),
            ["refresh_token"]
        );
        assert_eq!(
            failed_fields(refresh("x".repeat(257)).unwrap_err()),
            ["refresh_token"]
        );
        assert_eq!(
            failed_fields(refresh(String::new()).unwrap_err()),
            ["refresh_token"]
        );
    }

    #[test]
    fn logins_and_password_changes_name_their_fields() {
        let login = |email: &str, password: &str| {
            LoginForm::try_from(LoginRequest {
                email: email.into(),
                password: password.into(),
                organization_name: None,
            })
        };
        let login_to = |org: &str| {
            LoginForm::try_from(LoginRequest {
                email: "a@acme.com".into(),
                password: "x".into(),
                organization_name: Some(org.into()),
            })
        };
        assert_eq!(
            login_to("Acme Corp").unwrap().organization.unwrap().slug(),
            "acme_corp"
        );
        assert!(login("a@acme.com", "x").unwrap().organization.is_none());
        assert_eq!(
            failed_fields(login_to("").unwrap_err()),
            ["organization_name"]
        );
        assert_eq!(
            login("A@Acme.com", "x").unwrap().email.as_str(),
            "a@acme.com"
        );
        assert_eq!(
            failed_fields(login("nope", "").unwrap_err()),
            ["email", "password"]
        );
        assert_eq!(
            failed_fields(login("a@acme.com", "").unwrap_err()),
            ["password"]
        );

        let change = |current: &str, new: &str| {
            PasswordChangeForm::try_from(ChangePasswordRequest {
                current_password: current.into(),
                new_password: new.into(),
            })
        };
        assert!(change("old", "NewSecurePass456!").is_ok());
        assert_eq!(
            failed_fields(change("", "short").unwrap_err()),
            ["current_password", "new_password"]
        );
        assert_eq!(
            failed_fields(change("old", "short").unwrap_err()),
            ["new_password"]
        );
    }
}
