//! The command form as submitted, all text, read into a [`CommandDraft`]: the
//! batch size as a number and the params as a JSON object.

use serde_json::Value;
use sluice_store::commands::{Callback, Command};
use sluice_store::domain::Invalid;

use crate::input::blank_to_none;
use crate::service::commands::{CallbackChoice, CommandDraft, MAX_BATCH_SIZE};

/// Command form fields, as the form shows and submits them.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct CommandFields {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub sql: String,
    /// `url` or `inbox`.
    #[serde(default)]
    pub callback_kind: String,
    #[serde(default)]
    pub callback_url: String,
    #[serde(default)]
    pub callback_inbox_id: String,
    #[serde(default)]
    pub last_field: String,
    #[serde(default)]
    pub last_value: String,
    #[serde(default)]
    pub schedule: String,
    #[serde(default)]
    pub timezone: String,
    #[serde(default)]
    pub batch_size: String,
    /// JSON object, for dynamic commands.
    #[serde(default)]
    pub params: String,
}

impl CommandFields {
    /// A stored command, for its edit form.
    pub fn of(command: &Command) -> Self {
        let s = &command.settings;
        let (kind, url, inbox) = match &s.callback {
            Callback::Url(url) => ("url", url.clone(), String::new()),
            Callback::Inbox(inbox) => ("inbox", String::new(), inbox.to_string()),
        };
        Self {
            name: s.name.clone(),
            sql: s.sql.clone(),
            callback_kind: kind.into(),
            callback_url: url,
            callback_inbox_id: inbox,
            last_field: s.last_field.clone().unwrap_or_default(),
            last_value: command.last_value.clone().unwrap_or_default(),
            schedule: s.schedule.clone().unwrap_or_default(),
            timezone: s.timezone.clone(),
            batch_size: s.batch_size.to_string(),
            params: s.params.clone().unwrap_or_default(),
        }
    }

    /// The typed draft, and what did not even parse (batch size, params: left
    /// out of the draft) so the form can show it with the rest.
    pub fn draft(&self) -> (CommandDraft, Vec<Invalid>) {
        let mut errors = Vec::new();
        let batch_size = match self.batch_size.trim() {
            "" => None,
            raw => match raw.parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    errors.push(Invalid::new(
                        "batch_size",
                        format!("must be a whole number from 1 to {MAX_BATCH_SIZE}"),
                    ));
                    None
                }
            },
        };
        let params = match blank_to_none(&self.params) {
            None => None,
            Some(raw) => match serde_json::from_str::<Value>(&raw) {
                Ok(Value::Object(map)) => Some(map),
                Ok(_) => {
                    errors.push(Invalid::new("params", "must be a JSON object"));
                    None
                }
                Err(e) => {
                    errors.push(Invalid::new("params", format!("is not valid JSON: {e}")));
                    None
                }
            },
        };
        let wants_inbox = self.callback_kind == "inbox"
            || (self.callback_kind.is_empty() && !self.callback_inbox_id.trim().is_empty());
        let draft = CommandDraft {
            name: self.name.clone(),
            sql: self.sql.clone(),
            callback: if wants_inbox {
                CallbackChoice::Inbox(self.callback_inbox_id.clone())
            } else {
                CallbackChoice::Url(self.callback_url.clone())
            },
            last_field: self.last_field.clone(),
            last_value: self.last_value.clone(),
            schedule: self.schedule.clone(),
            timezone: self.timezone.clone(),
            batch_size,
            params,
        };
        (draft, errors)
    }
}
