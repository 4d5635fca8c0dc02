//! The connector form as submitted, all text: read into a [`ConnectorDraft`] (the
//! port as a number, options from `key=value` lines), filled from a pasted
//! connection string, and carrying an imported password sealed between requests.

use serde::{Deserialize, Serialize};
use sluice_store::SecretKey;
use sluice_store::accounts::User;
use sluice_store::connectors::Connector;
use sluice_store::domain::Invalid;
use std::path::Path;

use crate::input::keep;
use crate::service::connectors::{ConnectorDraft, ConnectorInput, ConnectorOptions};

/// Connector form fields, as the form shows and submits them.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct ConnectorFields {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub reach: String,
    #[serde(default)]
    pub server: String,
    #[serde(default)]
    pub port: String,
    #[serde(default)]
    pub database: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub ssl_mode: String,
    /// `key=value` lines.
    #[serde(default)]
    pub options: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub connection_string: String,
    /// A password taken from an imported connection string, sealed for this form
    /// only (see [`ConnectorFields::seal_password`]), so a re-rendered form carries
    /// it without showing it.
    #[serde(default)]
    pub sealed_password: String,
}

const FORM_PASSWORD_PURPOSE: &str = "connector-form-password";
/// How long a form carrying an imported password may take to be saved.
const FORM_PASSWORD_LIFETIME_SECS: i64 = 3600;

#[derive(Serialize, Deserialize)]
struct FormPassword {
    password: String,
    expires: i64,
}

fn form_owner(user: &User) -> String {
    format!("{}/{}", user.tenant_id.as_str(), user.id.as_str())
}

fn option_lines(options: &ConnectorOptions) -> String {
    options
        .plain
        .iter()
        .chain(&options.secret)
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConnectorFields {
    /// The stored connector, for its edit form (no secrets).
    pub fn of(connector: &Connector) -> Self {
        let draft = ConnectorDraft::of(connector);
        let mut fields = Self::default();
        fields.fill(&draft);
        fields.name = draft.name;
        fields.description = draft.description;
        fields.reach = draft.reach;
        // The form names the file inside the tenant's directory.
        fields.path = draft
            .path
            .rsplit('/')
            .next()
            .unwrap_or(&draft.path)
            .to_string();
        fields
    }

    fn fill(&mut self, draft: &ConnectorDraft) {
        self.kind = draft.kind.clone();
        self.server = draft.server.clone();
        self.port = draft.port.map(|p| p.to_string()).unwrap_or_default();
        self.database = draft.database.clone();
        self.username = draft.username.clone();
        self.ssl_mode = draft.ssl_mode.clone();
        self.path = draft.path.clone();
        self.options = option_lines(&draft.options);
    }

    /// Fills the fields from the pasted connection string (keeping name,
    /// description and reach). The error names the part of the string that is wrong.
    pub fn import(&mut self) -> Result<(), Invalid> {
        let mut draft = ConnectorDraft {
            kind: self.kind.clone(),
            password: (!self.password.is_empty()).then(|| self.password.clone()),
            ..Default::default()
        };
        draft.import(&self.connection_string)?;
        self.fill(&draft);
        self.password = draft.password.unwrap_or_default();
        Ok(())
    }

    /// Moves the password into `sealed_password` (before the form is shown again).
    /// It is sealed for this purpose, for `user` alone and for a limited time: a
    /// stored credential (sealed for another purpose and owner) or another user's
    /// form value submitted here never opens, so the form is no decryption oracle.
    pub fn seal_password(&mut self, key: &SecretKey, user: &User) {
        if !self.password.is_empty() {
            let draft = FormPassword {
                password: std::mem::take(&mut self.password),
                expires: chrono::Utc::now().timestamp() + FORM_PASSWORD_LIFETIME_SECS,
            };
            let json = serde_json::to_string(&draft).unwrap_or_default();
            self.sealed_password = key.seal(FORM_PASSWORD_PURPOSE, &form_owner(user), &json);
        }
    }

    /// A typed password wins; otherwise the sealed one from an import is used.
    pub fn unseal_password(&mut self, key: &SecretKey, user: &User) -> Result<(), Invalid> {
        if self.password.is_empty() && !self.sealed_password.is_empty() {
            let unreadable = || {
                Invalid::new(
                    "password",
                    "the imported password could not be read back; type it again",
                )
            };
            let json = key
                .open(
                    FORM_PASSWORD_PURPOSE,
                    &form_owner(user),
                    &self.sealed_password,
                )
                .map_err(|_| unreadable())?;
            let draft: FormPassword = serde_json::from_str(&json).map_err(|_| unreadable())?;
            if draft.expires < chrono::Utc::now().timestamp() {
                return Err(unreadable());
            }
            self.password = draft.password;
        }
        self.sealed_password.clear();
        Ok(())
    }

    /// Reads the text fields into typed input, collecting one message per bad
    /// field. A blank password keeps the stored one on an edit.
    pub fn validate(&self, sqlite_dir: &Path) -> Result<ConnectorInput, Vec<Invalid>> {
        let mut errors = Vec::new();
        let port = keep(
            &mut errors,
            match self.port.trim() {
                "" => Ok(None),
                raw => raw
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .map(Some)
                    .ok_or_else(|| {
                        Invalid::new("port", format!("{raw:?} is not a port number (1-65535)"))
                    }),
            },
        );
        let options = keep(&mut errors, ConnectorOptions::from_lines(&self.options));
        let draft = ConnectorDraft {
            name: self.name.clone(),
            description: self.description.clone(),
            kind: self.kind.clone(),
            reach: self.reach.clone(),
            server: self.server.clone(),
            port: port.flatten(),
            database: self.database.clone(),
            username: self.username.clone(),
            password: (!self.password.is_empty()).then(|| self.password.clone()),
            ssl_mode: self.ssl_mode.clone(),
            options: options.clone().unwrap_or_default(),
            path: self.path.clone(),
        };
        match draft.validate(sqlite_dir) {
            Ok(input) if errors.is_empty() => Ok(input),
            Ok(_) => Err(errors),
            Err(more) => {
                errors.extend(more);
                Err(errors)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imported_strings_fill_the_fields_and_errors_name_the_part() {
        let mut fields = ConnectorFields {
            connection_string:
                "jdbc:mariadb://db.example.com:3307/billing?user=sluice&password=s3cret".into(),
            ..Default::default()
        };
        fields.import().unwrap();
        assert_eq!(
            (
                fields.kind.as_str(),
                fields.server.as_str(),
                fields.port.as_str()
            ),
            ("mariadb", "db.example.com", "3307")
        );
        assert_eq!(
            (
                fields.database.as_str(),
                fields.username.as_str(),
                fields.password.as_str()
            ),
            ("billing", "sluice", "s3cret")
        );
        let mut bad = ConnectorFields {
            connection_string: "jdbc:mysql://h:99999/db".into(),
            ..Default::default()
        };
        let err = bad.import().unwrap_err();
        assert_eq!(err.field, "connection_string");
        assert!(err.message.contains("port"), "{}", err.message);
    }
}
