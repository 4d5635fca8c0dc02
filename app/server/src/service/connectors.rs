//! Connectors: the typed input both edges build ([`ConnectorDraft`] →
//! [`ConnectorInput`]), and every change to a connector — create, update, delete,
//! test, gateway key rotation — with its pools and its audit entry.

use sluice_connect::{Database, DbKind, TlsMode, check_host_syntax, parse_connection_string};
use sluice_store::connectors::{Connector, ConnectorSecrets, ConnectorSettings, SecretsChange};
use sluice_store::domain::{ConnectorName, Invalid, Reach};
use sluice_store::ids::{ConnectorId, TenantId};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::error::AppError;
use crate::input::{blank_to_none, keep};
use crate::service::Actor;
use crate::state::AppState;

pub use sluice_jobs::databases::{Unavailable, resolve_sqlite_path, tenant_sqlite_dir};

type Options = BTreeMap<String, String>;

/// Driver options, checked and split into plain ones (shown back) and secret
/// ones (sealed with the password, never shown).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConnectorOptions {
    pub plain: Options,
    pub secret: Options,
}

/// An option the API or a connection string sent that cannot be kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct BadOption {
    pub key: String,
    pub message: &'static str,
}

/// Option names whose values are secrets: stored sealed with the password.
fn is_secret_option(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "pwd", "secret", "token", "passphrase"]
        .iter()
        .any(|s| key.contains(s))
}

fn is_option_name(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

impl ConnectorOptions {
    fn insert(&mut self, key: &str, value: &str) {
        let target = if is_secret_option(key) {
            &mut self.secret
        } else {
            &mut self.plain
        };
        target.insert(key.to_string(), value.trim().to_string());
    }

    /// Options given as a map (the API, a connection string). A value must be one
    /// line: the pages edit options as `key=value` lines, and a line break inside
    /// a value would come back from them as a second option.
    pub fn from_map(map: &Options) -> Result<Self, BadOption> {
        let mut options = Self::default();
        for (key, value) in map {
            let key = key.trim();
            let bad = |message| BadOption {
                key: key.to_string(),
                message,
            };
            if !is_option_name(key) {
                return Err(bad(
                    "is not an option name (letters, digits, '_', '-' and '.')",
                ));
            }
            if value.chars().any(char::is_control) {
                return Err(bad(
                    "must be one line: line breaks and other control characters are not allowed",
                ));
            }
            options.insert(key, value);
        }
        Ok(options)
    }

    /// `key=value` lines (the pages' form). The error names the line.
    pub fn from_lines(text: &str) -> Result<Self, Invalid> {
        let mut options = Self::default();
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
            if !is_option_name(key) {
                return Err(Invalid::new(
                    "options",
                    format!("line {}: {key:?} is not an option name", number + 1),
                ));
            }
            options.insert(key, value);
        }
        Ok(options)
    }
}

/// Connector settings as a client sent them: numbers and options already typed;
/// the rest is checked together by [`ConnectorDraft::validate`] so a form can show
/// every mistake at once.
#[derive(Debug, Default, Clone)]
pub struct ConnectorDraft {
    pub name: String,
    pub description: String,
    pub kind: String,
    pub reach: String,
    pub server: String,
    pub port: Option<u16>,
    pub database: String,
    pub username: String,
    /// `None` keeps the stored password on an update.
    pub password: Option<String>,
    pub ssl_mode: String,
    pub options: ConnectorOptions,
    pub path: String,
}

impl ConnectorDraft {
    /// A stored connector's settings, as the base of an edit (no secrets).
    pub fn of(connector: &Connector) -> Self {
        let s = &connector.settings;
        Self {
            name: s.name.as_str().into(),
            description: s.description.clone(),
            kind: s.kind.clone(),
            reach: s.reach.as_str().into(),
            server: s.host.clone().unwrap_or_default(),
            port: s.port,
            database: s.database.clone().unwrap_or_default(),
            username: s.username.clone().unwrap_or_default(),
            password: None,
            ssl_mode: s.tls_mode.clone(),
            options: ConnectorOptions {
                plain: s.options.clone(),
                secret: Options::new(),
            },
            path: s.path.clone().unwrap_or_default(),
        }
    }

    /// Fills the connection from a pasted connection string, keeping name,
    /// description and reach (and a password already given). The error names
    /// the part of the string that is wrong.
    pub fn import(&mut self, connection_string: &str) -> Result<(), Invalid> {
        let hint = DbKind::parse(self.kind.trim());
        let params = parse_connection_string(connection_string, hint)
            .map_err(|e| Invalid::new("connection_string", e.to_string()))?;
        self.kind = params.kind.as_str().to_string();
        self.server = params.host.clone().unwrap_or_default();
        self.port = params.port;
        self.database = params.database.clone().unwrap_or_default();
        self.username = params.username.clone().unwrap_or_default();
        self.ssl_mode = params.tls.as_str().to_string();
        self.path = params.path.clone().unwrap_or_default();
        self.options = ConnectorOptions::from_map(&params.options)
            .map_err(|e| Invalid::new("connection_string", format!("option {e}")))?;
        if self.password.is_none() {
            self.password = params.password.clone();
        }
        Ok(())
    }

    /// Checks everything, one message per bad field. A SQLite path must name a
    /// file in `sqlite_dir`, the tenant's own directory.
    pub fn validate(&self, sqlite_dir: &Path) -> Result<ConnectorInput, Vec<Invalid>> {
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
        if self.port == Some(0) {
            errors.push(Invalid::new("port", "0 is not a port number (1-65535)"));
        }
        if self.description.chars().count() > 500 {
            errors.push(Invalid::new(
                "description",
                "must be at most 500 characters",
            ));
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
                    errors.push(Invalid::new("username", "is required"));
                }
                if kind == DbKind::Oracle && blank_to_none(&self.database).is_none() {
                    errors.push(Invalid::new(
                        "database",
                        "is required for Oracle: the service name or SID",
                    ));
                }
                None
            }
            None => None,
        };
        let (Some(name), Some(kind), Some(reach), Some(tls)) = (name, kind, reach, tls) else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let network = kind != DbKind::Sqlite;
        let settings = ConnectorSettings {
            name,
            description: self.description.trim().to_string(),
            kind: kind.as_str().to_string(),
            reach,
            host: network.then(|| blank_to_none(&self.server)).flatten(),
            port: if network { self.port } else { None },
            database: network.then(|| blank_to_none(&self.database)).flatten(),
            username: network.then(|| blank_to_none(&self.username)).flatten(),
            tls_mode: tls.unwrap_or(kind.default_tls()).as_str().to_string(),
            options: self.options.plain.clone(),
            path,
        };
        Ok(ConnectorInput {
            settings,
            password: self.password.clone().filter(|p| !p.is_empty()),
            secret_options: self.options.secret.clone(),
        })
    }
}

/// Connector settings that passed validation: what the service functions take.
#[derive(Debug, Clone)]
pub struct ConnectorInput {
    pub settings: ConnectorSettings,
    pub password: Option<String>,
    pub secret_options: Options,
}

impl ConnectorInput {
    fn new_secrets(&self) -> ConnectorSecrets {
        ConnectorSecrets {
            password: self.password.clone(),
            options: self.secret_options.clone(),
        }
    }

    /// On an edit no password keeps the stored one, and secret options are never
    /// shown, so submitted ones are merged into the stored ones.
    fn edited_secrets(
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

/// A connector of `tenant`; an id that does not parse is as unknown as another
/// tenant's.
pub async fn find(
    state: &AppState,
    tenant: &TenantId,
    raw_id: &str,
) -> Result<Connector, AppError> {
    let id = ConnectorId::parse(raw_id).ok_or(AppError::NotFound)?;
    Ok(state.store.connector(tenant, &id).await?)
}

/// Creates a connector; a gateway one also gets its key, returned once.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    input: &ConnectorInput,
) -> Result<(Connector, Option<String>), AppError> {
    let settings = &input.settings;
    let event = actor.event("connector.create", settings.name.as_str(), &settings.kind);
    Ok(state
        .store
        .create_connector_audited(&actor.tenant, settings, &input.new_secrets(), Some(&event))
        .await?)
}

/// Replaces a connector's settings; switching to gateway reach issues a key,
/// returned once.
pub async fn update(
    state: &AppState,
    actor: &Actor,
    existing: &Connector,
    input: &ConnectorInput,
) -> Result<(Connector, Option<String>), AppError> {
    let secrets = input.edited_secrets(state, existing)?;
    let event = actor.event("connector.update", input.settings.name.as_str(), "");
    Ok(state
        .store
        .update_connector_audited(
            &actor.tenant,
            &existing.id,
            &input.settings,
            secrets,
            Some(&event),
        )
        .await?)
}

/// Deletes a connector with its commands and runs, and closes its pool.
pub async fn delete(
    state: &AppState,
    actor: &Actor,
    connector: &Connector,
) -> Result<(), AppError> {
    let event = actor.event(
        "connector.delete",
        connector.settings.name.as_str(),
        &connector.settings.kind,
    );
    state
        .store
        .delete_connector_audited(&actor.tenant, &connector.id, Some(&event))
        .await?;
    state.databases.forget(connector.id.as_str()).await;
    Ok(())
}

/// Issues a new gateway key (the old one stops working); returned once.
pub async fn rotate_gateway_key(
    state: &AppState,
    actor: &Actor,
    connector: &Connector,
) -> Result<String, AppError> {
    if connector.settings.reach != Reach::Gateway {
        return Err(AppError::BadRequest(
            "only gateway connectors have a key".into(),
        ));
    }
    let key = state
        .store
        .rotate_gateway_key(&actor.tenant, &connector.id)
        .await?;
    actor
        .record(
            &state.store,
            "connector.gateway_key_rotate",
            connector.settings.name.as_str(),
            "",
        )
        .await?;
    Ok(key)
}

/// What "Test connection" found.
pub enum TestOutcome {
    Connected {
        server_version: String,
        latency_ms: u64,
    },
    Failed {
        message: String,
        /// `unreachable`, `authentication`, `unknown_database`, `tls`, `timeout`, …
        category: &'static str,
    },
}

/// Connects to the connector's database and reports how it went.
pub async fn test(state: &AppState, connector: &Connector) -> TestOutcome {
    match open_database(state, connector).await {
        Err(unavailable) => TestOutcome::Failed {
            message: unavailable.message(),
            category: unavailable.category(),
        },
        Ok(db) => match db.test().await {
            Ok(report) => TestOutcome::Connected {
                server_version: report.server_version,
                latency_ms: report.latency_ms,
            },
            Err(e) => TestOutcome::Failed {
                message: e.to_string(),
                category: e.category(),
            },
        },
    }
}

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
        let options =
            ConnectorOptions::from_lines("applicationName=sluice\n\nsslpassword = hush\n").unwrap();
        assert_eq!(
            options.plain.get("applicationName").map(String::as_str),
            Some("sluice")
        );
        assert_eq!(
            options.secret.get("sslpassword").map(String::as_str),
            Some("hush")
        );
        assert_eq!(
            ConnectorOptions::from_lines("a=1\nnonsense")
                .unwrap_err()
                .message,
            "line 2: expected key=value"
        );
        assert!(
            ConnectorOptions::from_lines("bad key=1")
                .unwrap_err()
                .message
                .contains("line 1")
        );
    }

    #[test]
    fn a_mapped_option_value_stays_one_option_or_is_refused_by_name() {
        let map = |k: &str, v: &str| Options::from([(k.to_string(), v.to_string())]);
        let refused = ConnectorOptions::from_map(&map("applicationName", "a\nb=c")).unwrap_err();
        assert_eq!(refused.key, "applicationName");
        assert!(ConnectorOptions::from_map(&map("bad key", "1")).is_err());
        let kept = ConnectorOptions::from_map(&map("applicationName", "a=b")).unwrap();
        assert_eq!(kept.plain, map("applicationName", "a=b"));
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
}
