//! Kiali's graph find/hide language: an expression such as
//! `app = reviews AND version != v1 OR %httperr > 5` selects nodes and
//! edges; the graph page highlights what *find* selects and takes out what
//! *hide* selects. Pure, so it is tested natively.
//!
//! - Operands (see [`operand`]): node `name`, `app`, `version`,
//!   `namespace`/`ns`, `workload`/`wl`, `service`/`svc`, `node`, `httpin`,
//!   `httpout`; edge `responsetime`/`rt`, `%httptraffic`, `protocol`; both
//!   `rps`/`http`, `%httperr`; flags `sidecar`, `trafficsource`/`root`,
//!   `healthy`, `degraded`, `failure`, `idle` (nodes), `mtls`, `traffic`
//!   (edges), negated with `!` (`!sidecar`).
//! - Operators `= != < > <= >= ^= $= *= !^= !$= !*=`, or Kiali's words
//!   `contains`, `startswith`, `endswith`, `not`, `has`, `is`.
//! - `AND` (`and`, `&&`) binds tighter than `OR` (`or`, `||`); one AND
//!   clause is about nodes or about edges, not both (as in Kiali).
//!
//! Errors name the token they are about and carry its byte range.

mod eval;
mod lex;
mod operand;
mod parse;

pub use eval::{Selected, hide, select};
pub use parse::{Expr, parse};

/// Why an expression was refused, and where: `input[start..end]` is the token.
#[derive(Clone, Debug, PartialEq)]
pub struct FindError {
    pub message: String,
    pub start: usize,
    pub end: usize,
}

impl FindError {
    fn new(message: String, start: usize, end: usize) -> FindError {
        FindError {
            message,
            start,
            end,
        }
    }
}

impl std::fmt::Display for FindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
