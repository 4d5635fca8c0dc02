//! The public URLs of inboxes and direct URLs. Their token is the only credential a
//! POST needs, so only callers who may change the tenant's state are shown it.

/// `{public_url}/hooks/{token}`.
pub fn hook_url(public_url: &str, token: &str) -> String {
    format!("{public_url}/hooks/{token}")
}

/// A callback URL as a reader who may not change anything sees it: one whose path is
/// a hook loses its token. Any host counts, since this instance may be reached under
/// several names.
pub fn without_hook_token(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) if parsed.path().starts_with("/hooks/") => {
            format!("{}/hooks/…", &parsed[..url::Position::BeforePath])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_callback_loses_its_token_and_others_stay() {
        assert_eq!(
            without_hook_token("https://sluice.example/hooks/hk_secret?x=1"),
            "https://sluice.example/hooks/…"
        );
        assert_eq!(
            without_hook_token("https://example.com/receive"),
            "https://example.com/receive"
        );
    }
}
