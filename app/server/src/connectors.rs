//! Connector logic shared by the pages and the API: turning submitted fields or a
//! pasted connection string into validated settings, and opening a connector's
//! database from its stored settings.

use serde::{Deserialize, Serialize};
use sluice_connect::{Database, DbKind, TlsMode, check_host_syntax, parse_connection_string};
use sluice_store::SecretKey;
use sluice_store::accounts::User;
use sluice_store::connectors::{Connector, ConnectorSecrets, ConnectorSettings, SecretsChange};
use sluice_store::domain::{ConnectorName, Invalid, Reach};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::error::AppError;
use crate::input::{blank_to_none, keep};
use crate::state::AppState;

/// Connector fields as submitted (form or API), all still unvalidated text.
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

/// Option names whose values are secrets: stored sealed with the password.
fn is_secret_option(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "pwd", "secret", "token", "passphrase"]
        .iter()
        .any(|s| key.contains(s))
}

impl ConnectorFields {
    /// Fills the fields from a pasted connection string (keeping name, description
    /// and reach). The error names the part of the string that is wrong.
    pub fn import(&mut self) -> Result<(), Invalid> {
        let hint = DbKind::parse(self.kind.trim());
        let params = parse_connection_string(&self.connection_string, hint)
            .map_err(|e| Invalid::new("connection_string", e.to_string()))?;
        self.kind = params.kind.as_str().to_string();
        self.server = params.host.clone().unwrap_or_default();
        self.port = params.port.map(|p| p.to_string()).unwrap_or_default();
        self.database = params.database.clone().unwrap_or_default();
        self.username = params.username.clone().unwrap_or_default();
        self.ssl_mode = params.tls.as_str().to_string();
        self.path = params.path.clone().unwrap_or_default();
        self.options = params
            .options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n");
        if self.password.is_empty() {
            self.password = params.password.clone().unwrap_or_default();
        }
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

    /// Validates everything, collecting one message per bad field. A SQLite
    /// path must name a file in `sqlite_dir`, the tenant's own directory.
    pub fn validate(&self, sqlite_dir: &Path) -> Result<Validated, Vec<Invalid>> {
        let mut errors = Vec::new();
        let name = keep(&mut errors, ConnectorName::parse(&self.name));
        let kind = keep(
            &mut errors,
            DbKind::parse(self.kind.trim()).ok_or_else(|| {
                Invalid::new(
                    "kind",
                    "must be one of postgres, mysql, mariadb, sqlserver, oracle, sqlite",
                )
            }),
        );
        let reach = keep(&mut errors, Reach::parse(&self.reach));
        let tls = keep(
            &mut errors,
            match self.ssl_mode.trim() {
                "" => Ok(None),
                raw => TlsMode::parse(raw).map(Some).ok_or_else(|| {
                    Invalid::new(
                        "sslMode",
                        "must be disabled, preferred, required or verify-full",
                    )
                }),
            },
        );
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
        let options = keep(&mut errors, parse_options(&self.options));
        if self.description.chars().count() > 500 {
            keep(
                &mut errors,
                Err::<(), _>(Invalid::new(
                    "description",
                    "must be at most 500 characters",
                )),
            );
        }
        let path = match kind {
            Some(DbKind::Sqlite) => keep(
                &mut errors,
                match blank_to_none(&self.path) {
                    None => Err(Invalid::new(
                        "path",
                        "is required for SQLite: the database file's name",
                    )),
                    Some(raw) => resolve_sqlite_path(sqlite_dir, &raw).map(|f| Some(f.relative)),
                },
            )
            .flatten(),
            Some(kind) => {
                keep(
                    &mut errors,
                    check_host_syntax(self.server.trim())
                        .map_err(|message| Invalid::new("server", message)),
                );
                if blank_to_none(&self.username).is_none() {
                    keep(
                        &mut errors,
                        Err::<(), _>(Invalid::new("username", "is required")),
                    );
                }
                if kind == DbKind::Oracle && blank_to_none(&self.database).is_none() {
                    keep(
                        &mut errors,
                        Err::<(), _>(Invalid::new(
                            "database",
                            "is required for Oracle: the service name or SID",
                        )),
                    );
                }
                None
            }
            None => None,
        };
        let (
            Some(name),
            Some(kind),
            Some(reach),
            Some(tls),
            Some(port),
            Some((options, secret_options)),
        ) = (name, kind, reach, tls, port, options)
        else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let network = kind != DbKind::Sqlite;
        let default_tls = kind.default_tls();
        let settings = ConnectorSettings {
            name,
            description: self.description.trim().to_string(),
            kind: kind.as_str().to_string(),
            reach,
            host: network.then(|| blank_to_none(&self.server)).flatten(),
            port: if network { port } else { None },
            database: network.then(|| blank_to_none(&self.database)).flatten(),
            username: network.then(|| blank_to_none(&self.username)).flatten(),
            tls_mode: tls.unwrap_or(default_tls).as_str().to_string(),
            options,
            path,
        };
        let password = (!self.password.is_empty()).then(|| self.password.clone());
        Ok(Validated {
            settings,
            password,
            secret_options,
        })
    }
}

/// Submitted connector fields that passed validation.
pub struct Validated {
    pub settings: ConnectorSettings,
    pub password: Option<String>,
    pub secret_options: BTreeMap<String, String>,
}

impl Validated {
    pub fn new_secrets(&self) -> ConnectorSecrets {
        ConnectorSecrets {
            password: self.password.clone(),
            options: self.secret_options.clone(),
        }
    }

    /// On an edit a blank password keeps the stored one, and secret options are
    /// never shown, so submitted ones are merged into the stored ones.
    pub fn edited_secrets(
        &self,
        state: &AppState,
        existing: &Connector,
    ) -> Result<SecretsChange, AppError> {
        if self.password.is_none() && self.secret_options.is_empty() {
            return Ok(SecretsChange::Keep);
        }
        let mut secrets = existing.secrets(&state.store)?;
        if let Some(password) = &self.password {
            secrets.password = Some(password.clone());
        }
        secrets.options.extend(self.secret_options.clone());
        Ok(SecretsChange::Replace(secrets))
    }
}

type Options = BTreeMap<String, String>;

/// `key=value` lines → (plain options, secret options). The error names the line.
fn parse_options(text: &str) -> Result<(Options, Options), Invalid> {
    let mut plain = BTreeMap::new();
    let mut secret = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(Invalid::new(
                "options",
                format!("line {}: expected key=value", number + 1),
            ));
        };
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(Invalid::new(
                "options",
                format!("line {}: {key:?} is not an option name", number + 1),
            ));
        }
        let target = if is_secret_option(key) {
            &mut secret
        } else {
            &mut plain
        };
        target.insert(key.to_string(), value.trim().to_string());
    }
    Ok((plain, secret))
}

pub use sluice_jobs::databases::{Unavailable, resolve_sqlite_path, tenant_sqlite_dir};

/// The (cached) pool of a direct connector's database.
pub async fn open_database(
    state: &AppState,
    connector: &Connector,
) -> Result<Arc<Database>, Unavailable> {
    sluice_jobs::databases::open_database(
        &state.databases,
        &state.store,
        &state.sqlite_root,
        connector,
    )
    .await
}

impl From<Unavailable> for AppError {
    fn from(e: Unavailable) -> Self {
        match e {
            Unavailable::ThroughGateway => AppError::Conflict {
                field: "reach",
                message: e.message(),
            },
            Unavailable::Failed(_) => AppError::Upstream(e.message()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_secrets_and_name_bad_lines() {
        let (plain, secret) =
            parse_options("applicationName=sluice\n\nsslpassword = hush\n").unwrap();
        assert_eq!(
            plain.get("applicationName").map(String::as_str),
            Some("sluice")
        );
        assert_eq!(secret.get("sslpassword").map(String::as_str), Some("hush"));
        assert_eq!(
            parse_options("a=1\nnonsense").unwrap_err().message,
            "line 2: expected key=value"
        );
        assert!(
            parse_options("bad key=1")
                .unwrap_err()
                .message
                .contains("line 1")
        );
    }

    #[test]
    fn sqlite_paths_stay_inside_the_tenant_directory() {
        let dir = tempfile::tempdir().unwrap();
        let tenant = dir.path().join("ten_a");
        std::fs::create_dir_all(tenant.join("sub")).unwrap();
        std::fs::write(tenant.join("shop.db"), b"").unwrap();
        std::fs::write(tenant.join("sub/orders.db"), b"").unwrap();
        std::fs::write(dir.path().join("secret.db"), b"").unwrap();
        let shop = resolve_sqlite_path(&tenant, "./shop.db").unwrap();
        assert_eq!(shop.relative, "shop.db");
        assert!(shop.absolute.is_absolute() && shop.absolute.ends_with("shop.db"));
        assert_eq!(
            resolve_sqlite_path(&tenant, "sqlite:sub/orders.db")
                .unwrap()
                .relative,
            "sub/orders.db"
        );
        let shown = |raw: &str| resolve_sqlite_path(&tenant, raw).unwrap_err();
        assert_eq!(shown("../secret.db").field, "path");
        let outside = dir.path().join("secret.db");
        assert!(
            shown(outside.to_str().unwrap())
                .message
                .contains("absolute")
        );
        assert!(shown("missing.db").message.contains("does not exist"));
        assert!(resolve_sqlite_path(&tenant, ":memory:").is_err());
        assert!(
            resolve_sqlite_path(&dir.path().join("ten_never_created"), "shop.db").is_err(),
            "a tenant without a directory has no files"
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, tenant.join("link.db")).unwrap();
            assert!(shown("link.db").message.contains("leads out"));
        }
        let root = dir.path().to_str().unwrap();
        for raw in ["../secret.db", "missing.db", "link.db", "/etc/passwd", ""] {
            let message = resolve_sqlite_path(&tenant, raw).unwrap_err().message;
            assert!(!message.contains(root), "{message}");
        }
    }

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
