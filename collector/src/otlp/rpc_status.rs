//! `google.rpc.Status` and `google.rpc.RetryInfo`, the shapes OTLP uses to
//! explain a failure: in an OTLP/HTTP error body, and (RetryInfo) in the
//! `grpc-status-details-bin` of a throttled gRPC call so that SDKs retry.

use std::time::Duration;

use prost::Message;

#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    #[serde(skip)]
    pub details: Vec<ProtoAny>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoAny {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// gRPC code numbers used here (google.rpc.Code).
pub const CODE_INVALID_ARGUMENT: i32 = 3;
pub const CODE_RESOURCE_EXHAUSTED: i32 = 8;
pub const CODE_UNAVAILABLE: i32 = 14;

/// A Status carrying a RetryInfo of `delay`, encoded (what goes into
/// `grpc-status-details-bin`).
pub fn retry_status_bytes(code: i32, message: &str, delay: Duration) -> Vec<u8> {
    let retry = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: delay.as_secs() as i64,
            nanos: delay.subsec_nanos() as i32,
        }),
    };
    RpcStatus {
        code,
        message: message.to_string(),
        details: vec![ProtoAny {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
            value: retry.encode_to_vec(),
        }],
    }
    .encode_to_vec()
}
