//! OTLP/HTTP JSON bodies through the collector's decoding and row conversion.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loupe_collector::otlp::limits::SpanLimits;
use loupe_collector::otlp::span_row::convert;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<ExportTraceServiceRequest>(data) {
        let _ = convert(&request, &SpanLimits::default());
    }
});
