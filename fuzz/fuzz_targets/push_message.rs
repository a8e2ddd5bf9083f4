//! The push stream's messages from a proxy (Hello, ACK, NACK) as the
//! control plane reads them: decode, then the Hello checks it runs before
//! trusting anything (sizes, shape).
#![no_main]

use libfuzzer_sys::fuzz_target;
use loupe_control::authn::claims;
use loupe_control::registry::Workload;
use loupe_push::ProxyMessage;
use loupe_push::proxy_message::Message;
use prost::Message as _;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = ProxyMessage::decode(data) else {
        return;
    };
    if let Some(Message::Hello(hello)) = message.message
        && claims::check_sizes(&hello).is_ok()
    {
        let _ = Workload::from_hello(hello);
    }
});
