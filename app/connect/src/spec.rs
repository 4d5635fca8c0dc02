//! The parameters each kind of connector asks for, for forms and the API.

use serde::Serialize;

use crate::kind::{DbKind, TlsMode};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionSpec {
    pub kind: DbKind,
    pub params: Vec<ParamSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParamSpec {
    pub name: &'static str,
    /// `"string"`, `"integer"`, `"password"` or `"enum"`.
    #[serde(rename = "type")]
    pub r#type: &'static str,
    pub required: bool,
    /// The allowed values of an `"enum"`.
    pub values: Option<&'static [&'static str]>,
}

const SSL_MODES: [&str; 4] = [
    TlsMode::Disabled.as_str(),
    TlsMode::Preferred.as_str(),
    TlsMode::Required.as_str(),
    TlsMode::VerifyFull.as_str(),
];

const fn param(name: &'static str, r#type: &'static str, required: bool) -> ParamSpec {
    ParamSpec {
        name,
        r#type,
        required,
        values: None,
    }
}

fn network_params(database_required: bool) -> Vec<ParamSpec> {
    vec![
        param("server", "string", true),
        param("port", "integer", false),
        param("database", "string", database_required),
        param("username", "string", true),
        param("password", "password", false),
        ParamSpec {
            values: Some(&SSL_MODES),
            ..param("sslMode", "enum", false)
        },
    ]
}

/// One spec per kind, in [`DbKind::ALL`] order.
pub fn connection_specs() -> Vec<ConnectionSpec> {
    DbKind::ALL
        .into_iter()
        .map(|kind| ConnectionSpec {
            kind,
            params: match kind {
                DbKind::Sqlite => vec![param("path", "string", true)],
                // Oracle needs a service name or SID; the others have a default database.
                DbKind::Oracle => network_params(true),
                _ => network_params(false),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_spec_with_the_agreed_names() {
        let specs = connection_specs();
        assert_eq!(specs.len(), 6);
        for spec in &specs {
            let names: Vec<_> = spec.params.iter().map(|p| p.name).collect();
            if spec.kind == DbKind::Sqlite {
                assert_eq!(names, ["path"]);
            } else {
                assert_eq!(
                    names,
                    [
                        "server", "port", "database", "username", "password", "sslMode"
                    ]
                );
            }
        }
    }

    #[test]
    fn serializes_type_and_enum_values() {
        let specs = connection_specs();
        let json = serde_json::to_value(&specs[0]).expect("serialize");
        assert_eq!(json["kind"], "postgres");
        assert_eq!(json["params"][0]["type"], "string");
        assert_eq!(json["params"][4]["type"], "password");
        assert_eq!(
            json["params"][5]["values"],
            serde_json::json!(["disabled", "preferred", "required", "verify-full"])
        );
        assert_eq!(json["params"][0]["values"], serde_json::Value::Null);
    }
}
