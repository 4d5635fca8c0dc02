//! Opening a connector's database from its stored settings, for the web handlers
//! and the workers alike.

use sluice_connect::{ConnectError, ConnectionParams, Database, DbKind, Registry, TlsMode};
use sluice_store::Store;
use sluice_store::connectors::Connector;
use sluice_store::domain::{Invalid, Reach};
use sluice_store::ids::TenantId;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// A tenant's own SQLite directory, `<root>/<tenant id>/`: its connectors open
/// files there and nowhere else, so no tenant can name another's file. Tenant ids
/// are `ten_<hex>`, a plain directory name.
pub fn tenant_sqlite_dir(root: &Path, tenant: &TenantId) -> PathBuf {
    root.join(tenant.as_str())
}

/// A SQLite connector's database file, found inside its tenant's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteFile {
    /// As stored and shown: relative to the tenant's directory, `/`-separated.
    pub relative: String,
    /// Canonical, for opening; never shown to the user.
    pub absolute: PathBuf,
}

/// Resolves a SQLite connector's path inside `dir` (its tenant's directory): it
/// must be relative, name an existing file, and not leave the directory (no
/// `..`, no symlink out). Messages never name `dir`: users do not see where the
/// server keeps files.
pub fn resolve_sqlite_path(dir: &Path, raw: &str) -> Result<SqliteFile, Invalid> {
    let invalid = |m: String| Invalid::new("path", m);
    let raw = raw
        .trim()
        .trim_start_matches("sqlite:")
        .trim_start_matches("//");
    if raw.is_empty() || raw == ":memory:" {
        return Err(invalid("must name a database file".into()));
    }
    let candidate = Path::new(raw);
    if candidate.is_absolute() || candidate.has_root() {
        return Err(invalid(
            "must be a file name relative to this organisation's SQLite directory, not an absolute path"
                .into(),
        ));
    }
    let mut parts = Vec::new();
    for component in candidate.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => return Err(invalid("may not contain '..'".into())),
            Component::RootDir | Component::Prefix(_) => {
                return Err(invalid("must be a relative file name".into()));
            }
        }
    }
    if parts.is_empty() {
        return Err(invalid("must name a database file".into()));
    }
    let relative = parts.join("/");
    // The folder's own name (the tenant id) tells the operator where to put the
    // file; the server's absolute path stays out of the message.
    let folder = dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let missing = || {
        invalid(format!(
            "{relative:?} does not exist in this organisation's SQLite directory \
             (the folder {folder}/ in the server's SQLite directory)"
        ))
    };
    let dir = dir.canonicalize().map_err(|_| missing())?;
    let absolute = dir.join(&relative).canonicalize().map_err(|_| missing())?;
    if !absolute.starts_with(&dir) {
        return Err(invalid(format!(
            "{relative:?} leads out of this organisation's SQLite directory"
        )));
    }
    if !absolute.is_file() {
        return Err(invalid(format!("{relative:?} is not a file")));
    }
    Ok(SqliteFile { relative, absolute })
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
    params.tls = TlsMode::parse(&settings.tls_mode).ok_or_else(|| {
        config_error(
            "sslMode",
            format!("unknown TLS mode {:?}", settings.tls_mode),
        )
    })?;
    params.options = settings.options.clone();
    params.options.extend(secrets.options);
    if kind == DbKind::Sqlite {
        // Re-checked on every open: the directory may have changed since saving.
        let raw = settings.path.clone().unwrap_or_default();
        let dir = tenant_sqlite_dir(sqlite_root, &connector.tenant_id);
        let file = resolve_sqlite_path(&dir, &raw).map_err(|e| config_error("path", e.message))?;
        params.path = Some(file.absolute.to_string_lossy().into_owned());
        params.path_label = Some(file.relative);
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
