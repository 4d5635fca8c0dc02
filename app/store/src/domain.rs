//! Values validated once at the edge (forms, API, CLI); inside, the types are trusted.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A validation failure naming the field it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let email = raw.trim().to_lowercase();
        let invalid = |m: &str| Err(Invalid::new("email", m));
        if email.is_empty() {
            return invalid("is required");
        }
        if email.len() > 254 {
            return invalid("is longer than 254 characters");
        }
        let Some((local, domain)) = email.split_once('@') else {
            return invalid("must look like name@example.com");
        };
        if local.is_empty()
            || domain.is_empty()
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return invalid("must look like name@example.com");
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) || domain.contains('@') {
            return invalid("must not contain spaces or a second @");
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An organisation's display name, unique across the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantName(String);

impl TenantName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(Invalid::new("tenant_name", "is required"));
        }
        if name.chars().count() > 80 {
            return Err(Invalid::new("tenant_name", "is longer than 80 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(Invalid::new(
                "tenant_name",
                "must not contain control characters",
            ));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A person's display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(Invalid::new("name", "is required"));
        }
        if name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(Invalid::new(
                "name",
                "must be at most 100 printable characters",
            ));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password as chosen by a user (existing ones are only ever verified).
#[derive(Clone)]
pub struct NewPassword(String);

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(..)")
    }
}

impl NewPassword {
    pub const MIN_CHARS: usize = 10;

    pub fn parse(raw: &str, field: &'static str) -> Result<Self, Invalid> {
        let count = raw.chars().count();
        if count < Self::MIN_CHARS {
            return Err(Invalid::new(
                field,
                format!("must be at least {} characters", Self::MIN_CHARS),
            ));
        }
        if count > 256 {
            return Err(Invalid::new(field, "must be at most 256 characters"));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Admin, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw.trim() {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            _ => Err(Invalid::new("role", "must be owner, admin or viewer")),
        }
    }

    /// Whether this role may change the tenant's configuration.
    pub fn can_write(self) -> bool {
        self >= Role::Admin
    }

    /// Whether this role may manage users and roles.
    pub fn can_manage_users(self) -> bool {
        self == Role::Owner
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.com",
            "ann@localhost",
            "a b@x.com",
            "a@b@c.com",
            "ann@.com",
        ] {
            let err = Email::parse(bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad}");
        }
    }

    #[test]
    fn passwords_need_ten_characters() {
        assert_eq!(
            NewPassword::parse("short", "password").unwrap_err().field,
            "password"
        );
        assert!(NewPassword::parse("long enough!", "password").is_ok());
        assert_eq!(
            format!("{:?}", NewPassword::parse("long enough!", "p").unwrap()),
            "NewPassword(..)"
        );
    }

    #[test]
    fn roles_order_by_power() {
        assert!(Role::Owner.can_manage_users() && Role::Owner.can_write());
        assert!(!Role::Admin.can_manage_users() && Role::Admin.can_write());
        assert!(!Role::Viewer.can_write());
        assert_eq!(Role::parse("admin").unwrap(), Role::Admin);
        assert_eq!(Role::parse("root").unwrap_err().field, "role");
        assert!(TenantName::parse("  ").is_err());
    }
}

/// A connector's name: `[a-z0-9_]+`, unique per tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorName(String);

impl ConnectorName {
    pub const MAX_CHARS: usize = 63;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(Invalid::new("name", "is required"));
        }
        if name.len() > Self::MAX_CHARS {
            return Err(Invalid::new(
                "name",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
        {
            return Err(Invalid::new(
                "name",
                format!(
                    "may contain only lower-case letters a-z, digits 0-9 and _ (found {bad:?})"
                ),
            ));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How Sluice reaches a connector's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reach {
    /// Sluice connects itself.
    Direct,
    /// The on-premise gateway agent runs the work and reports back.
    Gateway,
}

impl Reach {
    pub fn as_str(self) -> &'static str {
        match self {
            Reach::Direct => "direct",
            Reach::Gateway => "gateway",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw.trim() {
            "" | "direct" => Ok(Reach::Direct),
            "gateway" => Ok(Reach::Gateway),
            _ => Err(Invalid::new("reach", "must be direct or gateway")),
        }
    }
}

#[cfg(test)]
mod connector_name_tests {
    use super::*;

    #[test]
    fn connector_names_are_lower_snake_case() {
        assert_eq!(
            ConnectorName::parse(" billing_db2 ").unwrap().as_str(),
            "billing_db2"
        );
        for bad in ["", "Billing", "billing-db", "bill db", "ü", &"a".repeat(64)] {
            assert_eq!(
                ConnectorName::parse(bad).unwrap_err().field,
                "name",
                "{bad}"
            );
        }
        assert_eq!(Reach::parse("").unwrap(), Reach::Direct);
        assert!(Reach::parse("carrier pigeon").is_err());
    }
}
