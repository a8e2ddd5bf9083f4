//! The console's config body (`PUT /api/config/...`, `loupe apply`): any
//! bytes as YAML through parsing, the alias guard and analysis.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = loupe_model::parse::parse_documents("body.yaml", text);
    let _ = loupe_model::analyze(&parsed.resources);
});
