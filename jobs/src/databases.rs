//! Opening a connector's database from its stored settings, for the web handlers
//! and the workers alike.

use sluice_connect::{ConnectError, ConnectionParams, Database, DbKind, Registry, TlsMode};
use sluice_store::Store;
use sluice_store::connectors::Connector;
use sluice_store::domain::{Invalid, Reach};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Resolves a SQLite connector's file inside `root`; it must exist and may not
/// escape the directory (no `..`, no absolute path elsewhere, no symlink out).
pub fn resolve_sqlite_path(root: &Path, raw: &str) -> Result<String, Invalid> {
    let invalid = |m: String| Invalid::new("path", m);
    let raw = raw
        .trim()
        .trim_start_matches("sqlite:")
        .trim_start_matches("//");
    if raw.is_empty() || raw == ":memory:" {
        return Err(invalid("must name a database file".into()));
    }
    let candidate = Path::new(raw);
    if candidate
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        return Err(invalid("may not contain '..'".into()));
    }
    let joined: PathBuf = if candidate.is_absolute() {
        candidate.to_path_buf()
    } else {
        root.join(candidate)
    };
    let root = root.canonicalize().map_err(|_| {
        invalid(format!(
            "the SQLite directory {} does not exist on the server",
            root.display()
        ))
    })?;
    let file = joined.canonicalize().map_err(|_| {
        invalid(format!(
            "{raw:?} does not exist in the SQLite directory {}",
            root.display()
        ))
    })?;
    if !file.starts_with(&root) {
        return Err(invalid(format!(
            "must be inside the SQLite directory {}",
            root.display()
        )));
    }
    if !file.is_file() {
        return Err(invalid(format!("{raw:?} is not a file")));
    }
    Ok(file.to_string_lossy().into_owned())
}

/// The driver's view of a stored connector, secrets decrypted.
pub fn connection_params(
    store: &Store,
    sqlite_root: &Path,
    connector: &Connector,
) -> Result<ConnectionParams, ConnectError> {
    let settings = &connector.settings;
    let config_error = |field: &str, message: String| ConnectError::Config {
        field: field.into(),
        message,
    };
    let kind = DbKind::parse(&settings.kind)
        .ok_or_else(|| config_error("kind", format!("unknown kind {:?}", settings.kind)))?;
    let secrets = connector
        .secrets(store)
        .map_err(|e| config_error("password", e.to_string()))?;
    let mut params = ConnectionParams::new(kind);
    params.host = settings.host.clone();
    params.port = settings.port;
    params.database = settings.database.clone();
    params.username = settings.username.clone();
    params.password = secrets.password;
    params.tls = TlsMode::parse(&settings.tls_mode).unwrap_or(TlsMode::Preferred);
    params.options = settings.options.clone();
    params.options.extend(secrets.options);
    if kind == DbKind::Sqlite {
        // Re-checked on every open: the directory may have changed since saving.
        let raw = settings.path.clone().unwrap_or_default();
        params.path = Some(
            resolve_sqlite_path(sqlite_root, &raw).map_err(|e| config_error("path", e.message))?,
        );
    }
    Ok(params)
}

/// Why a connector's database cannot be used from here.
#[derive(Debug)]
pub enum Unavailable {
    /// Reached through the gateway agent: Sluice does not connect itself.
    ThroughGateway,
    Failed(ConnectError),
}

impl Unavailable {
    pub fn message(&self) -> String {
        match self {
            Self::ThroughGateway => "This connector is reached through the gateway agent; Sluice does not connect to it directly.".into(),
            Self::Failed(e) => e.to_string(),
        }
    }

    pub fn category(&self) -> &'static str {
        match self {
            Self::ThroughGateway => "gateway",
            Self::Failed(e) => e.category(),
        }
    }
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

/// The (cached) pool of a direct connector's database.
pub async fn open_database(
    databases: &Registry,
    store: &Store,
    sqlite_root: &Path,
    connector: &Connector,
) -> Result<Arc<Database>, Unavailable> {
    if connector.settings.reach == Reach::Gateway {
        return Err(Unavailable::ThroughGateway);
    }
    databases
        .database(connector.id.as_str(), connector.version, || {
            connection_params(store, sqlite_root, connector)
        })
        .await
        .map_err(Unavailable::Failed)
}
