//! Multi-document YAML → [`Resource`]s, and back.
//! (Skeleton: the model work fills this in.)

use crate::resource::{ParsedFile, Resource};

pub fn parse_documents(_source: &str, _text: &str) -> ParsedFile {
    ParsedFile::default()
}

pub fn to_yaml(_resources: &[Resource]) -> String {
    String::new()
}
