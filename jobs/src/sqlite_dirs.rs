//! Moves SQLite connectors saved before tenants had their own directories into
//! them. Such a connector stored its file's absolute path (or a path relative to
//! the shared root); afterwards it stores a path relative to `<root>/<tenant id>/`.
//! A file one tenant used is moved there; a file several tenants used is copied to
//! each (one tenant's later writes must not show in another's). Run at startup;
//! running it again changes nothing.

use sluice_store::Store;
use sluice_store::connectors::{Connector, SecretsChange};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::databases::{resolve_sqlite_path, tenant_sqlite_dir};

/// What [`move_into_tenant_dirs`] did, for the log and the tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Moved {
    /// Connectors whose file now lives in their tenant's directory.
    pub connectors: usize,
    /// Files left where they were: outside the root, or missing.
    pub left: usize,
}

/// SQLite's side files that carry committed data beside the database itself.
const SIDE_FILES: [&str; 2] = ["-wal", "-journal"];

pub async fn move_into_tenant_dirs(store: &Store, root: &Path) -> anyhow::Result<Moved> {
    let mut moved = Moved::default();
    let Ok(root) = root.canonicalize() else {
        return Ok(moved); // No root yet: nothing was ever saved in it.
    };
    let mut by_file: BTreeMap<PathBuf, Vec<(Connector, String)>> = BTreeMap::new();
    for connector in store.connectors_of_kind_in_every_tenant("sqlite").await? {
        let Some(path) = connector.settings.path.clone() else {
            continue;
        };
        let own_dir = tenant_sqlite_dir(&root, &connector.tenant_id);
        if !Path::new(&path).is_absolute() && resolve_sqlite_path(&own_dir, &path).is_ok() {
            continue; // Already in its tenant's directory.
        }
        match legacy_file(&root, &path) {
            Some((file, relative)) => by_file.entry(file).or_default().push((connector, relative)),
            None => {
                tracing::warn!(connector = %connector.id, tenant = %connector.tenant_id,
                    "SQLite connector's file is neither in its tenant's directory nor in the SQLite root; left as is");
                moved.left += 1;
            }
        }
    }
    for (file, users) in by_file {
        let tenants: std::collections::BTreeSet<_> =
            users.iter().map(|(c, _)| &c.tenant_id).collect();
        let shared = tenants.len() > 1;
        for (connector, relative) in &users {
            let target = tenant_sqlite_dir(&root, &connector.tenant_id).join(relative);
            if !target.exists() {
                place(&file, &target, shared)?;
                tracing::info!(connector = %connector.id, tenant = %connector.tenant_id,
                    from = %file.display(), to = %target.display(),
                    "{} a SQLite connector's file into its tenant's directory",
                    if shared { "copied" } else { "moved" });
            }
            let mut settings = connector.settings.clone();
            settings.path = Some(relative.clone());
            store
                .update_connector(
                    &connector.tenant_id,
                    &connector.id,
                    &settings,
                    SecretsChange::Keep,
                )
                .await?;
            moved.connectors += 1;
        }
    }
    Ok(moved)
}

/// A legacy path's existing file inside `root` (canonical), and its path relative
/// to the root, which the file keeps inside its tenant's directory.
fn legacy_file(root: &Path, path: &str) -> Option<(PathBuf, String)> {
    let file = root.join(path).canonicalize().ok()?;
    let relative = file.strip_prefix(root).ok()?;
    let relative = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    (file.is_file() && !relative.is_empty()).then_some((file, relative))
}

/// Moves (or, when `shared`, copies) a database file and its side files.
fn place(file: &Path, target: &Path, shared: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    let parent = target
        .parent()
        .context("a target inside a tenant directory")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let mut pairs = vec![(file.to_path_buf(), target.to_path_buf())];
    for suffix in SIDE_FILES {
        let side = with_suffix(file, suffix);
        if side.exists() {
            pairs.push((side, with_suffix(target, suffix)));
        }
    }
    for (from, to) in pairs {
        let done = if shared {
            std::fs::copy(&from, &to).map(|_| ())
        } else {
            std::fs::rename(&from, &to)
                .or_else(|_| std::fs::copy(&from, &to).and_then(|_| std::fs::remove_file(&from)))
        };
        done.with_context(|| format!("placing {} at {}", from.display(), to.display()))?;
    }
    Ok(())
}

fn with_suffix(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
