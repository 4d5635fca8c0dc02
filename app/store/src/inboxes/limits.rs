//! What an inbox accepts and keeps: the size and nesting of one message, how many
//! messages and bytes one inbox holds, and how long they stay. The same limits
//! apply to POSTs on the public URL and to rows a command delivers.

/// The size of one message: the public URL's body limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxLimits {
    /// Bytes of one message.
    pub max_body_bytes: usize,
    /// Levels of nested arrays and objects in one message.
    pub max_depth: usize,
    /// Messages one inbox holds.
    pub max_messages: i64,
    /// Bytes all of one inbox's messages hold together.
    pub max_bytes: i64,
    /// Housekeeping removes messages older than this many days…
    pub retention_days: i64,
    /// …and all but the newest this many of each inbox.
    pub retention_messages: i64,
}

impl Default for InboxLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_depth: 32,
            max_messages: 1000,
            max_bytes: 64 * 1024 * 1024,
            retention_days: 7,
            retention_messages: 500,
        }
    }
}

/// Why an inbox would not take a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboxRefusal {
    #[error("is {size} bytes; an inbox message may be at most {max} bytes")]
    BodyTooLarge { size: usize, max: usize },
    #[error("nests arrays and objects deeper than {max} levels")]
    TooDeep { max: usize },
    #[error(
        "the inbox is full: it keeps at most {max} messages; delete it or wait for retention to remove old ones"
    )]
    TooManyMessages { max: i64 },
    #[error(
        "the inbox is full: its messages may total at most {max} bytes (it holds {stored}, this one is {size}); delete it or wait for retention to remove old ones"
    )]
    TooManyBytes { max: i64, stored: i64, size: i64 },
}

impl InboxRefusal {
    /// The limit's name, as API clients see it in `error.limit`.
    pub fn limit(&self) -> &'static str {
        match self {
            Self::BodyTooLarge { .. } => "max_body_bytes",
            Self::TooDeep { .. } => "max_depth",
            Self::TooManyMessages { .. } => "max_messages",
            Self::TooManyBytes { .. } => "max_bytes",
        }
    }

    /// Whether the message itself is at fault (rather than the inbox being full).
    pub fn is_about_the_body(&self) -> bool {
        matches!(self, Self::BodyTooLarge { .. } | Self::TooDeep { .. })
    }
}

impl InboxLimits {
    /// The checks that need only the message: its size, then its nesting.
    pub fn check_body(&self, body: &[u8]) -> Result<(), InboxRefusal> {
        if body.len() > self.max_body_bytes {
            return Err(InboxRefusal::BodyTooLarge {
                size: body.len(),
                max: self.max_body_bytes,
            });
        }
        if nests_deeper_than(body, self.max_depth) {
            return Err(InboxRefusal::TooDeep {
                max: self.max_depth,
            });
        }
        Ok(())
    }

    /// Whether an inbox holding `messages` messages of `bytes` bytes has room for
    /// one more of `size` bytes.
    pub(crate) fn check_room(
        &self,
        messages: i64,
        bytes: i64,
        size: i64,
    ) -> Result<(), InboxRefusal> {
        if messages >= self.max_messages {
            return Err(InboxRefusal::TooManyMessages {
                max: self.max_messages,
            });
        }
        if bytes + size > self.max_bytes {
            return Err(InboxRefusal::TooManyBytes {
                max: self.max_bytes,
                stored: bytes,
                size,
            });
        }
        Ok(())
    }
}

/// Whether a JSON text nests arrays and objects deeper than `max`, found by one pass
/// over its bytes: nothing is parsed or allocated, so a hostile body costs no more
/// than its length. Brackets inside strings do not count; malformed JSON is left
/// for the parser to report.
pub fn nests_deeper_than(json: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn depth_counts_arrays_and_objects_but_not_brackets_in_strings() {
        assert!(!nests_deeper_than(nested(32).as_bytes(), 32));
        assert!(nests_deeper_than(nested(33).as_bytes(), 32));
        assert!(!nests_deeper_than(br#"{"a":[{"b":1}]}"#, 3));
        assert!(nests_deeper_than(br#"{"a":[{"b":1}]}"#, 2));
        assert!(!nests_deeper_than(br#"["[[[[", "\"[[[", "\\"]"#, 1));
        assert!(!nests_deeper_than(b"[[],[],[]]", 2));
    }

    #[test]
    fn body_checks_name_their_limit() {
        let limits = InboxLimits {
            max_body_bytes: 10,
            max_depth: 2,
            ..InboxLimits::default()
        };
        assert_eq!(limits.check_body(b"[[]]"), Ok(()));
        assert_eq!(
            limits.check_body(b"[[[]]]").unwrap_err().limit(),
            "max_depth"
        );
        assert_eq!(
            limits.check_body(b"\"0123456789\"").unwrap_err().limit(),
            "max_body_bytes"
        );
    }

    #[test]
    fn room_counts_messages_then_bytes() {
        let limits = InboxLimits {
            max_messages: 2,
            max_bytes: 100,
            ..InboxLimits::default()
        };
        assert_eq!(limits.check_room(1, 50, 50), Ok(()));
        assert_eq!(
            limits.check_room(2, 0, 1).unwrap_err().limit(),
            "max_messages"
        );
        assert_eq!(
            limits.check_room(1, 60, 41).unwrap_err().limit(),
            "max_bytes"
        );
    }
}
