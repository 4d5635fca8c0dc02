use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("configuration: {0}")]
    Config(String),
    /// The store could not be reached in time (pool exhausted, database down or
    /// locked by another process): worth retrying shortly.
    #[error("control-plane store busy: {0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database: {0}")]
    Database(diesel::result::Error),
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    #[error("{field}: {message}")]
    Conflict {
        field: &'static str,
        message: String,
    },
    #[error("secret key: {0}")]
    Secret(String),
    /// The lease this work held expired or was taken over: the work must stop
    /// without writing anything more.
    #[error("lease on {resource} lost")]
    LeaseLost { resource: String },
    /// A stored value the code does not know (written by a newer version, or
    /// edited by hand): refused rather than read as some default.
    #[error("stored {what} {value:?} is not valid")]
    Corrupt { what: &'static str, value: String },
    /// An inbox would not take a message (too large, too deep, or full).
    #[error("{0}")]
    InboxRefused(#[from] crate::inboxes::InboxRefusal),
}

impl From<diesel::result::Error> for StoreError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::Error;
        match err {
            // SQLite's busy_timeout ran out (another process held the write lock),
            // or the PostgreSQL connection dropped: nothing the caller did wrong.
            Error::DatabaseError(_, ref info)
                if info.message().contains("database is locked")
                    || info.message().contains("database is busy") =>
            {
                Self::Unavailable(info.message().to_string())
            }
            Error::DatabaseError(diesel::result::DatabaseErrorKind::ClosedConnection, _)
            | Error::BrokenTransactionManager => Self::Unavailable(err.to_string()),
            other => Self::Database(other),
        }
    }
}

impl StoreError {
    pub(crate) fn not_found(entity: &'static str) -> Self {
        Self::NotFound { entity }
    }

    /// Maps a unique-constraint violation to a conflict on `field`, anything else as is.
    pub(crate) fn unique(
        field: &'static str,
        message: &str,
    ) -> impl FnOnce(diesel::result::Error) -> Self {
        let message = message.to_string();
        move |err| match err {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => Self::Conflict { field, message },
            other => other.into(),
        }
    }
}

impl StoreError {
    /// Maps a foreign-key violation (the parent row was deleted meanwhile) to
    /// "`entity` not found", anything else as is.
    pub(crate) fn parent_gone(entity: &'static str) -> impl FnOnce(diesel::result::Error) -> Self {
        move |err| match err {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _,
            ) => Self::not_found(entity),
            other => other.into(),
        }
    }
}

/// Maps diesel's "no row" onto our not-found for `entity`.
pub(crate) trait OptionalExt<T> {
    fn or_not_found(self, entity: &'static str) -> Result<T, StoreError>;
}

impl<T> OptionalExt<T> for Result<T, diesel::result::Error> {
    fn or_not_found(self, entity: &'static str) -> Result<T, StoreError> {
        match self {
            Ok(v) => Ok(v),
            Err(diesel::result::Error::NotFound) => Err(StoreError::not_found(entity)),
            Err(e) => Err(e.into()),
        }
    }
}
