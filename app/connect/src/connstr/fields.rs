//! Mapping `key=value` settings onto [`ConnectionParams`]. ODBC strings, SQL
//! Server JDBC properties and URL query strings share one vocabulary here, so a
//! key means the same thing whichever format carried it.

use super::authority::{
    first_of_list, non_empty, parse_host_port, parse_optional_port, parse_port,
    split_first_top_level,
};
use super::tls::TlsSignals;
use super::{ConnectionParams, OracleTarget, ParseError, oracle, strip_prefix_ignore_case};
use crate::kind::DbKind;

/// A connection string being read: the parameters so far plus the TLS
/// settings, which are only resolved at the end.
pub(super) struct Draft {
    pub(super) params: ConnectionParams,
    pub(super) tls: TlsSignals,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Server,
    Port,
    Database,
    User,
    Password,
    InstanceName,
    Sid,
    ServiceName,
    Driver,
    Other,
}

/// Keys are compared ignoring case, spaces, `_` and `-` (`User ID`, `userId`, `user_id`).
fn classify(key: &str) -> Field {
    let normalized: String = key
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect();
    match normalized.as_str() {
        "server" | "servername" | "host" | "hostname" | "datasource" | "address" | "addr"
        | "networkaddress" | "dbq" => Field::Server,
        "port" | "portnumber" => Field::Port,
        "database" | "databasename" | "dbname" | "db" | "initialcatalog" => Field::Database,
        "user" | "username" | "uid" | "userid" => Field::User,
        "password" | "pwd" => Field::Password,
        "instancename" | "instance" => Field::InstanceName,
        "sid" => Field::Sid,
        "servicename" => Field::ServiceName,
        "driver" => Field::Driver,
        _ => Field::Other,
    }
}

pub(super) fn is_driver_key(key: &str) -> bool {
    classify(key) == Field::Driver
}

impl Draft {
    pub(super) fn new(kind: DbKind) -> Self {
        Draft {
            params: ConnectionParams::new(kind),
            tls: TlsSignals::default(),
        }
    }

    /// Applies one setting; unknown keys are kept in `options` as written.
    pub(super) fn apply(&mut self, key: &str, value: &str) -> Result<(), ParseError> {
        let is_sqlite = self.params.kind == DbKind::Sqlite;
        match classify(key) {
            Field::Server | Field::Database if is_sqlite => {
                self.params.path = non_empty(value.to_owned());
            }
            Field::Server => self.apply_server(key, value)?,
            Field::Port if value.is_empty() => {}
            Field::Port => self.params.port = Some(parse_port(value)?),
            Field::Database => self.set_database(value),
            Field::User => self.params.username = non_empty(value.to_owned()),
            Field::Password => self.params.password = non_empty(value.to_owned()),
            Field::InstanceName => self.set_instance_name(value),
            Field::Sid => self.set_oracle_target(OracleTarget::Sid(value.to_owned())),
            Field::ServiceName => {
                self.set_oracle_target(OracleTarget::ServiceName(value.to_owned()));
            }
            // Already used to choose the kind.
            Field::Driver => {}
            Field::Other => {
                if !self.tls.absorb(key, value)? {
                    self.params.options.insert(key.to_owned(), value.to_owned());
                }
            }
        }
        Ok(())
    }

    /// The database name; for Oracle it is the service name.
    pub(super) fn set_database(&mut self, name: &str) {
        if name.is_empty() {
            return;
        }
        if self.params.kind == DbKind::Oracle {
            self.set_oracle_target(OracleTarget::ServiceName(name.to_owned()));
        } else {
            self.params.database = Some(name.to_owned());
        }
    }

    pub(super) fn set_oracle_target(&mut self, target: OracleTarget) {
        if target.name().is_empty() {
            return;
        }
        self.params.database = Some(target.name().to_owned());
        self.params.oracle_service = Some(target);
    }

    pub(super) fn set_instance_name(&mut self, name: &str) {
        if !name.is_empty() {
            self.params
                .options
                .insert("instanceName".to_owned(), name.to_owned());
        }
    }

    pub(super) fn set_host_port(&mut self, host: String, port: Option<u16>) {
        self.params.host = Some(host);
        if port.is_some() {
            self.params.port = port;
        }
    }

    /// A server value in any of its spellings: `tcp:host,1433`,
    /// `host\instance:port`, `host:port`, `h1,h2` (first wins), or for Oracle
    /// an EZConnect target.
    pub(super) fn apply_server(&mut self, key: &str, value: &str) -> Result<(), ParseError> {
        let value = strip_prefix_ignore_case(value, "tcp:")
            .unwrap_or(value)
            .trim();
        if value.is_empty() {
            return Err(ParseError::new(key, "is empty; give a host name"));
        }
        if self.params.kind == DbKind::Oracle {
            return oracle::apply_target(self, value);
        }
        let (first, comma_port) = split_comma_port(value);
        let (host_port, instance) = match first.split_once('\\') {
            Some((host_port, instance)) => (host_port, Some(instance)),
            None => (first, None),
        };
        let (host, port) = parse_host_port(local_host_alias(host_port.trim()))?;
        self.set_host_port(host, port);
        if let Some(instance) = instance {
            self.apply_instance_and_port(instance)?;
        }
        if let Some(port) = comma_port {
            self.params.port = Some(parse_port(port)?);
        }
        Ok(())
    }

    /// `instance[:port]`, as in SQL Server's `host\instance:port`.
    fn apply_instance_and_port(&mut self, text: &str) -> Result<(), ParseError> {
        let (instance, port) = text.split_once(':').unwrap_or((text, ""));
        self.set_instance_name(instance.trim());
        if let Some(port) = parse_optional_port(port)? {
            self.params.port = Some(port);
        }
        Ok(())
    }

    /// Resolves TLS and checks that the essentials are present; `host_part`
    /// is how this format calls its host (`host` or `Server`).
    pub(super) fn finish(mut self, host_part: &str) -> Result<ConnectionParams, ParseError> {
        let kind = self.params.kind;
        self.params.tls = self.tls.resolve(kind, &mut self.params.options);
        if kind.is_networked() && self.params.host.is_none() {
            return Err(ParseError::new(
                host_part,
                "is missing; the string must name the database server",
            ));
        }
        if !kind.is_networked() && self.params.path.is_none() {
            return Err(ParseError::new(
                "path",
                "is missing; give the SQLite file, e.g. sqlite:data/app.db or sqlite::memory:",
            ));
        }
        Ok(self.params)
    }
}

/// `host,1433` is SQL Server's way to give a port, while `h1,h2` lists
/// hosts (of which the first is used).
fn split_comma_port(value: &str) -> (&str, Option<&str>) {
    let (first, next) = split_first_top_level(value, ',');
    let port = next
        .map(|next| first_of_list(next).trim())
        .filter(|next| !next.is_empty() && next.bytes().all(|b| b.is_ascii_digit()));
    (first, port)
}

/// SQL Server tools write the local machine as `.` or `(local)`.
fn local_host_alias(host: &str) -> &str {
    if host == "." || host.eq_ignore_ascii_case("(local)") {
        "localhost"
    } else {
        host
    }
}
