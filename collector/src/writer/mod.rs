//! The path from the receivers' queue to Postgres: the bounded [`queue`],
//! COPY text encoding ([`copy_text`]), the batching span writer ([`spans`])
//! that also keeps `trace_summaries` current, and drop accounting ([`drops`]).

pub mod copy_text;
pub mod drops;
pub mod queue;
pub mod spans;
