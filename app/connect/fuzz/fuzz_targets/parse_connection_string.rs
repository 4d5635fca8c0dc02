#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_connect::{DbKind, parse_connection_string};

// Any UTF-8 text, with and without each kind hint, must parse or fail cleanly;
// a panic is the bug. Whatever parses must also render its redacted URL.
fuzz_target!(|input: &str| {
    let hints = std::iter::once(None).chain(DbKind::ALL.into_iter().map(Some));
    for hint in hints {
        if let Ok(params) = parse_connection_string(input, hint) {
            let _ = params.to_url_redacted();
            let _ = format!("{params:?}");
        }
    }
});
