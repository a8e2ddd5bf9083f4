//! OTLP/gRPC and OTLP/HTTP protobuf bodies through the collector's
//! decoding and row conversion, with the collector's own limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loupe_collector::otlp::limits::SpanLimits;
use loupe_collector::otlp::span_row::convert;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = ExportTraceServiceRequest::decode(data) {
        let _ = convert(&request, &SpanLimits::default());
    }
});
