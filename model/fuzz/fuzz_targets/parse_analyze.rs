//! Parse arbitrary bytes as Istio YAML, analyze what parsed, compile a
//! router and route a request through it, and print it back: none of it may
//! panic, and what prints must parse again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loupe_model::route::Router;
use loupe_model::{Request, analyze, parse_documents, to_yaml};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_documents("fuzz.yaml", text);
    let _ = analyze(&parsed.resources);

    let router = Router::new(&parsed.resources);
    let mut request = Request::default();
    request.request.host = Some("reviews:9080".into());
    request.request.path = Some("/api/v1?x=1".into());
    let _ = router.route(&request, None);
    let _ = router.route(&request, Some("istio-system/gateway"));

    let printed = to_yaml(&parsed.resources);
    let again = parse_documents("printed.yaml", &printed);
    assert_eq!(again.resources, parsed.resources, "print then parse changed the resources");
});
