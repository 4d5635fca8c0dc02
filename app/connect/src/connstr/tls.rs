//! Folding the many TLS spellings (sslmode, useSSL, encrypt, EncryptionMethod,
//! trustServerCertificate, …) into one [`TlsMode`].
//!
//! The settings are collected first and resolved once, because their meaning
//! depends on each other (`encrypt=true` alone is "required", with
//! `trustServerCertificate=false` it is "verify-full") and not on their order.

use std::collections::BTreeMap;

use super::{ParseError, quoted};
use crate::kind::{DbKind, TlsMode};

#[derive(Debug, Default)]
pub(super) struct TlsSignals {
    explicit: Option<TlsMode>,
    /// SQL Server `encrypt=strict` always validates, whatever else is said.
    strict: bool,
    use_ssl: Option<bool>,
    require_ssl: Option<bool>,
    verify_certificate: Option<bool>,
    trust_server_certificate: Option<bool>,
}

impl TlsSignals {
    /// Records `key=value` if it is a TLS setting; returns whether it was one.
    pub(super) fn absorb(&mut self, key: &str, value: &str) -> Result<bool, ParseError> {
        match normalize_key(key).as_str() {
            "sslmode" => self.explicit = Some(parse_tls_mode(key, value)?),
            "encrypt" => self.absorb_encrypt(key, value)?,
            "encryptionmethod" => self.explicit = Some(parse_encryption_method(key, value)?),
            "ssl" | "usessl" => self.use_ssl = parse_bool(key, value)?,
            "requiressl" => self.require_ssl = parse_bool(key, value)?,
            "verifyservercertificate" | "validateservercertificate" => {
                self.verify_certificate = parse_bool(key, value)?;
            }
            "trustservercertificate" => self.trust_server_certificate = parse_bool(key, value)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// A protocol that is TLS by definition (Oracle `tcps://`), unless a TLS
    /// setting says more.
    pub(super) fn require_by_default(&mut self) {
        self.explicit.get_or_insert(TlsMode::Required);
    }

    fn absorb_encrypt(&mut self, key: &str, value: &str) -> Result<(), ParseError> {
        if value.trim().eq_ignore_ascii_case("strict") {
            self.strict = true;
            self.explicit = Some(TlsMode::VerifyFull);
            return Ok(());
        }
        let mode = match value.trim().to_ascii_lowercase().as_str() {
            "" => return Ok(()),
            "true" | "yes" | "1" | "mandatory" => TlsMode::Required,
            "false" | "no" | "0" | "optional" => TlsMode::Disabled,
            _ => {
                return Err(ParseError::new(
                    key,
                    format!(
                        "{} is not one of true, false, yes, no, mandatory, optional, strict",
                        quoted(value)
                    ),
                ));
            }
        };
        self.explicit = Some(mode);
        Ok(())
    }

    /// The TLS mode these settings add up to; records a certificate-check
    /// waiver in `options` so that it is never lost silently.
    pub(super) fn resolve(&self, kind: DbKind, options: &mut BTreeMap<String, String>) -> TlsMode {
        if !kind.is_networked() {
            return TlsMode::Disabled;
        }
        if self.trust_server_certificate == Some(true) {
            options.insert("trustServerCertificate".to_owned(), "true".to_owned());
        }
        let mode = self
            .explicit
            .or_else(|| self.legacy_mode(kind))
            .unwrap_or(kind.default_tls());
        self.apply_certificate_checks(mode)
    }

    /// The boolean switches of older drivers (Connector/J's useSSL and
    /// requireSSL, pgjdbc's ssl), used when no mode is named.
    fn legacy_mode(&self, kind: DbKind) -> Option<TlsMode> {
        match (self.use_ssl, self.require_ssl) {
            (Some(false), _) => Some(TlsMode::Disabled),
            (_, Some(true)) => Some(TlsMode::Required),
            (Some(true), _) => Some(match kind {
                // pgjdbc's ssl=true and MariaDB Connector/J 3's useSsl=true verify the server.
                DbKind::Postgres | DbKind::Mariadb => TlsMode::VerifyFull,
                // MySQL Connector/J: useSSL alone is PREFERRED, with
                // verifyServerCertificate it is VERIFY_CA.
                _ if self.verify_certificate == Some(true) => TlsMode::VerifyFull,
                _ => TlsMode::Preferred,
            }),
            (None, _) => None,
        }
    }

    fn apply_certificate_checks(&self, mode: TlsMode) -> TlsMode {
        let check_asked =
            self.verify_certificate == Some(true) || self.trust_server_certificate == Some(false);
        let check_waived =
            self.verify_certificate == Some(false) || self.trust_server_certificate == Some(true);
        match mode {
            TlsMode::VerifyFull if check_waived && !self.strict => TlsMode::Required,
            TlsMode::Required if check_asked && !check_waived => TlsMode::VerifyFull,
            other => other,
        }
    }
}

/// `sslMode`, `ssl-mode`, `SSL Mode` and `ssl_mode` are the same setting.
fn normalize_key(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

fn parse_tls_mode(key: &str, value: &str) -> Result<TlsMode, ParseError> {
    TlsMode::parse(value).ok_or_else(|| {
        ParseError::new(
            key,
            format!(
                "{} is not a TLS mode; use disable, prefer, require, verify-ca or verify-full",
                quoted(value)
            ),
        )
    })
}

/// DataDirect/ODBC `EncryptionMethod`: 0 none, 1 SSL, 6 SSL if the server asks.
fn parse_encryption_method(key: &str, value: &str) -> Result<TlsMode, ParseError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "0" | "noencryption" => Ok(TlsMode::Disabled),
        "1" | "ssl" => Ok(TlsMode::Required),
        "6" | "requestssl" => Ok(TlsMode::Preferred),
        _ => Err(ParseError::new(
            key,
            format!(
                "{} is not 0 (no encryption), 1 (SSL) or 6 (request SSL)",
                quoted(value)
            ),
        )),
    }
}

/// An empty value says nothing, so it leaves the setting unset.
fn parse_bool(key: &str, value: &str) -> Result<Option<bool>, ParseError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "true" | "yes" | "1" | "on" => Ok(Some(true)),
        "false" | "no" | "0" | "off" => Ok(Some(false)),
        _ => Err(ParseError::new(
            key,
            format!("{} is not true or false", quoted(value)),
        )),
    }
}
