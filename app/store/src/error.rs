use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("connection pool: {0}")]
    Pool(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    #[error("{field}: {message}")]
    Conflict {
        field: &'static str,
        message: String,
    },
    #[error("secret key: {0}")]
    Secret(String),
}

impl StoreError {
    pub(crate) fn pool(err: impl std::fmt::Display) -> Self {
        Self::Pool(err.to_string())
    }

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
            other => Self::Database(other),
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
            Err(e) => Err(StoreError::Database(e)),
        }
    }
}
