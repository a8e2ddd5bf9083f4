//! Tokens of the find/hide language: words, quoted values, operators and
//! the conjunctions, each with the byte range it came from so an error can
//! name (and point at) the token it is about.

use super::FindError;

/// A comparison, spelled as in Kiali (`contains` is `*=`, `!startswith` is `!^=`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    StartsWith,
    EndsWith,
    Contains,
    NotStartsWith,
    NotEndsWith,
    NotContains,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Ge => ">=",
            Op::StartsWith => "^=",
            Op::EndsWith => "$=",
            Op::Contains => "*=",
            Op::NotStartsWith => "!^=",
            Op::NotEndsWith => "!$=",
            Op::NotContains => "!*=",
        }
    }

    /// The negated form of a text operator (`not contains` is `!*=`).
    pub fn negated(self) -> Option<Op> {
        match self {
            Op::StartsWith => Some(Op::NotStartsWith),
            Op::EndsWith => Some(Op::NotEndsWith),
            Op::Contains => Some(Op::NotContains),
            Op::Eq => Some(Op::Ne),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// An operand, a value, or a mnemonic (`has`, `is`, `not`, `contains`, …).
    Word(String),
    /// A `"quoted value"`: never read as a keyword.
    Quoted(String),
    Op(Op),
    /// `!` before a flag: `!sidecar`.
    Not,
    And,
    Or,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub kind: Kind,
    /// Byte range in the input.
    pub start: usize,
    pub end: usize,
}

impl Token {
    /// The token as the user typed it.
    pub fn text<'a>(&self, input: &'a str) -> &'a str {
        &input[self.start..self.end]
    }
}

/// Operators, longest first so `!*=` is not read as `!` then `*=`.
const OPERATORS: [(&str, Option<Op>); 15] = [
    ("!*=", Some(Op::NotContains)),
    ("!^=", Some(Op::NotStartsWith)),
    ("!$=", Some(Op::NotEndsWith)),
    ("*=", Some(Op::Contains)),
    ("^=", Some(Op::StartsWith)),
    ("$=", Some(Op::EndsWith)),
    ("!=", Some(Op::Ne)),
    (">=", Some(Op::Ge)),
    ("<=", Some(Op::Le)),
    ("&&", None),
    ("||", None),
    ("=", Some(Op::Eq)),
    ("<", Some(Op::Lt)),
    (">", Some(Op::Gt)),
    ("!", None),
];

fn is_operator_char(c: char) -> bool {
    matches!(c, '!' | '=' | '<' | '>' | '^' | '$' | '*' | '&' | '|')
}

pub fn tokenize(input: &str) -> Result<Vec<Token>, FindError> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < input.len() {
        let rest = &input[i..];
        let c = rest.chars().next().unwrap_or(' ');
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        if c == '"' || c == '\'' {
            let Some(close) = rest[1..].find(c) else {
                return Err(FindError::new(
                    format!("unclosed quote in [{rest}]"),
                    i,
                    input.len(),
                ));
            };
            let end = i + 1 + close + 1;
            tokens.push(Token {
                kind: Kind::Quoted(rest[1..1 + close].to_string()),
                start: i,
                end,
            });
            i = end;
            continue;
        }
        if let Some((text, op)) = OPERATORS.iter().find(|(text, _)| rest.starts_with(text)) {
            let kind = match (*text, op) {
                (_, Some(op)) => Kind::Op(*op),
                ("&&", None) => Kind::And,
                ("||", None) => Kind::Or,
                _ => Kind::Not,
            };
            tokens.push(Token {
                kind,
                start: i,
                end: i + text.len(),
            });
            i += text.len();
            continue;
        }
        if is_operator_char(c) {
            // `&` or `|` alone: half of a conjunction.
            return Err(FindError::new(
                format!("unexpected [{c}]; AND is `and` or `&&`, OR is `or` or `||`"),
                i,
                i + c.len_utf8(),
            ));
        }
        let len = rest
            .find(|c: char| c.is_whitespace() || is_operator_char(c) || c == '"' || c == '\'')
            .unwrap_or(rest.len());
        let word = &rest[..len];
        let kind = match word.to_ascii_lowercase().as_str() {
            "and" => Kind::And,
            "or" => Kind::Or,
            _ => Kind::Word(word.to_string()),
        };
        tokens.push(Token {
            kind,
            start: i,
            end: i + len,
        });
        i += len;
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Kind> {
        tokenize(s).unwrap().into_iter().map(|t| t.kind).collect()
    }

    fn word(s: &str) -> Kind {
        Kind::Word(s.into())
    }

    #[test]
    fn operators_are_read_longest_first_with_or_without_spaces() {
        assert_eq!(
            kinds("name!*=rev"),
            [word("name"), Kind::Op(Op::NotContains), word("rev")]
        );
        assert_eq!(
            kinds("rps >= 1.5"),
            [word("rps"), Kind::Op(Op::Ge), word("1.5")]
        );
        assert_eq!(kinds("!sidecar"), [Kind::Not, word("sidecar")]);
        assert_eq!(kinds("a != b"), [word("a"), Kind::Op(Op::Ne), word("b")]);
    }

    #[test]
    fn conjunctions_in_words_or_symbols_any_case() {
        assert_eq!(
            kinds("a AND b && c or d || e"),
            [
                word("a"),
                Kind::And,
                word("b"),
                Kind::And,
                word("c"),
                Kind::Or,
                word("d"),
                Kind::Or,
                word("e"),
            ]
        );
    }

    #[test]
    fn quoted_values_keep_spaces_and_are_not_keywords() {
        assert_eq!(
            kinds(r#"app = "and more""#),
            [
                word("app"),
                Kind::Op(Op::Eq),
                Kind::Quoted("and more".into())
            ]
        );
        let err = tokenize("app = \"open").unwrap_err();
        assert!(err.message.contains("unclosed quote"), "{}", err.message);
        assert_eq!(err.start, 6);
    }

    #[test]
    fn a_lone_ampersand_is_an_error_naming_it() {
        let err = tokenize("a & b").unwrap_err();
        assert!(err.message.contains("[&]"), "{}", err.message);
        assert_eq!((err.start, err.end), (2, 3));
    }

    #[test]
    fn tokens_remember_where_they_were() {
        let t = tokenize("  %httperr > 5").unwrap();
        assert_eq!(t[0].text("  %httperr > 5"), "%httperr");
        assert_eq!((t[1].start, t[1].end), (11, 12));
    }
}
