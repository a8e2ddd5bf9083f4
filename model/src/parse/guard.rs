//! What an input may cost before it is parsed into values.
//!
//! serde_yaml_ng expands every alias into a copy of its anchor while it
//! deserializes, so a 1 MiB "billion laughs" document of a few anchors and
//! many aliases becomes gigabytes. Kubernetes manifests do not need anchors,
//! so they are refused outright: this pass reads the input as a stream of
//! YAML *events* (yaml-rust2's parser, which never expands an alias) and
//! stops at the first anchor or alias, at the document past the cap, or at a
//! syntax error. Its cost is linear in the input, which is itself capped.

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::Marker;

use crate::analyze::{Diagnostic, Severity};

/// The most one input (a file, a request body) may hold.
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;
/// The most documents one input may hold.
pub const MAX_DOCUMENTS: usize = 1_000;

/// How much of an input may be read as values: its first `documents`
/// documents, and why not the rest.
pub(super) struct Admitted {
    pub documents: usize,
    pub refused: Option<Diagnostic>,
}

pub(super) fn admit(source: &str, text: &str) -> Admitted {
    if text.len() > MAX_INPUT_BYTES {
        return Admitted {
            documents: 0,
            refused: Some(error(
                source,
                format!(
                    "the input is {} bytes; at most {} MiB is read from one input. \
                     Split it into several files.",
                    text.len(),
                    MAX_INPUT_BYTES / (1024 * 1024)
                ),
            )),
        };
    }
    let mut parser = Parser::new_from_str(text);
    // Documents whose every event was read without a problem.
    let mut complete = 0;
    let mut current = 0;
    loop {
        let (event, mark) = match parser.next_token() {
            Ok(next) => next,
            // yaml-rust2 checks an alias's anchor before it yields the alias.
            Err(err) if err.info().contains("unknown anchor") => {
                let mark = *err.marker();
                return Admitted {
                    documents: complete,
                    refused: Some(refusal(source, text, current, "an alias", mark)),
                };
            }
            Err(err) => {
                let mark = err.marker();
                return Admitted {
                    documents: complete,
                    refused: Some(error(
                        source,
                        format!(
                            "YAML syntax error at line {} column {}: {}. Fix the YAML there \
                             (indentation, a missing `:` or an unclosed quote are the usual \
                             causes); documents after it were not read.",
                            mark.line(),
                            mark.col() + 1,
                            err.info()
                        ),
                    )),
                };
            }
        };
        let anchored = match event {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                current += 1;
                if current > MAX_DOCUMENTS {
                    return Admitted {
                        documents: complete,
                        refused: Some(error(
                            source,
                            format!(
                                "the input has more than {MAX_DOCUMENTS} documents; documents \
                                 from line {} on were not read. Split it into several files.",
                                mark.line()
                            ),
                        )),
                    };
                }
                false
            }
            Event::DocumentEnd => {
                complete = current;
                false
            }
            Event::Alias(_) => true,
            Event::Scalar(_, _, anchor, _)
            | Event::SequenceStart(anchor, _)
            | Event::MappingStart(anchor, _) => anchor != 0,
            _ => false,
        };
        if anchored {
            let what = match event {
                Event::Alias(_) => "an alias",
                _ => "an anchor",
            };
            return Admitted {
                documents: complete,
                refused: Some(refusal(source, text, current, what, mark)),
            };
        }
    }
    Admitted {
        documents: current,
        refused: None,
    }
}

/// `&name` or `*name` as written at `index` or before it on its line (the
/// parser marks an anchored node where its content starts), for the message.
fn name_at(text: &str, index: usize) -> Option<&str> {
    let line_start = text.get(..index)?.rfind('\n').map_or(0, |i| i + 1);
    let start = if text[index..].starts_with(['&', '*']) {
        index
    } else {
        text[line_start..index].rfind(['&', '*'])? + line_start
    };
    let name = &text[start..];
    let end = name[1..]
        .find(|c: char| c.is_whitespace() || ",[]{}".contains(c))
        .map_or(name.len(), |i| i + 1);
    (end <= 64).then(|| &name[..end])
}

fn refusal(source: &str, text: &str, document: usize, what: &str, mark: Marker) -> Diagnostic {
    let name = name_at(text, mark.index())
        .map(|n| format!(" `{n}`"))
        .unwrap_or_default();
    error(
        source,
        format!(
            "document {document} has {what}{name} at line {}: expand the alias; anchors and \
             aliases are not accepted (Kubernetes manifests do not need them). This document \
             and those after it were not read.",
            mark.line()
        ),
    )
}

fn error(source: &str, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        resource: source.to_string(),
        path: String::new(),
        message,
    }
}
