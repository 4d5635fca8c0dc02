//! A message's body as the inbox page shows it: at most [`PREVIEW_BYTES`], indented
//! only when the indented text fits. Indenting is never done on more than that, so a
//! deeply nested body costs the page nothing however large it is.

use std::io::{self, Write};

/// Bytes of one message shown on the page; the rest is behind a download link.
pub const PREVIEW_BYTES: usize = 8 * 1024;

/// Characters of a body loaded to build its preview (enough for [`PREVIEW_BYTES`]).
pub const PREVIEW_CHARS: i32 = PREVIEW_BYTES as i32;

pub struct Preview {
    pub text: String,
    /// Whether `text` is only the start of the body.
    pub truncated: bool,
}

/// `head` is the start of the body (the whole body when `complete`).
pub fn preview(head: &str, complete: bool) -> Preview {
    if complete
        && head.len() <= PREVIEW_BYTES
        && let Some(pretty) = indented_within(head, PREVIEW_BYTES)
    {
        return Preview {
            text: pretty,
            truncated: false,
        };
    }
    let cut = floor_char_boundary(head, PREVIEW_BYTES);
    Preview {
        text: head[..cut].to_string(),
        truncated: !complete || cut < head.len(),
    }
}

/// The body indented, or `None` when that takes more than `cap` bytes (or it is not JSON).
fn indented_within(body: &str, cap: usize) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let mut out = CappedWriter {
        bytes: Vec::new(),
        cap,
    };
    serde_json::to_writer_pretty(&mut out, &value).ok()?;
    String::from_utf8(out.bytes).ok()
}

/// Fails the write that would take it past `cap` bytes, which stops the serialiser.
struct CappedWriter {
    bytes: Vec<u8>,
    cap: usize,
}

impl Write for CappedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > self.cap {
            return Err(io::Error::other("preview cap reached"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn floor_char_boundary(text: &str, at: usize) -> usize {
    if at >= text.len() {
        return text.len();
    }
    (0..=at)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bodies_are_indented_whole() {
        let shown = preview(r#"{"a":[1,2]}"#, true);
        assert!(!shown.truncated);
        assert!(shown.text.contains("\n  \"a\": [\n"));
    }

    #[test]
    fn bodies_whose_indented_form_would_not_fit_are_cut_not_indented() {
        // 6 KiB of input, twice that once indented.
        let nested = format!("[{}[]]", "[],".repeat(2000));
        let shown = preview(&nested, true);
        assert!(shown.text.len() <= PREVIEW_BYTES);
        assert_eq!(shown.text, nested);
        assert!(!shown.truncated);
    }

    #[test]
    fn long_or_partial_bodies_are_cut_on_a_character_boundary() {
        let long = format!("\"{}\"", "é".repeat(PREVIEW_BYTES));
        let shown = preview(&long, true);
        assert!(shown.truncated);
        assert!(shown.text.len() <= PREVIEW_BYTES);
        assert!(preview("[1,", false).truncated);
    }
}
