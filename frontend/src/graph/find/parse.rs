//! From tokens to an expression: OR of AND clauses (AND binds tighter, as
//! in Kiali), each criterion an operand with an operator and a value, or a
//! flag. Kiali's mnemonics are read too: `has`/`is` before a flag, `not`
//! for `!`, `contains`/`startswith`/`endswith` for `*=`/`^=`/`$=`.

use super::FindError;
use super::lex::{Kind, Op, Token, tokenize};
use super::operand::{self, Field, Flag, Target};

#[derive(Clone, Debug, PartialEq)]
pub enum Criterion {
    Text { field: Field, op: Op, value: String },
    Number { field: Field, op: Op, value: f64 },
    Flag { flag: Flag, negated: bool },
}

/// Criteria that all hold, about nodes or about edges.
#[derive(Clone, Debug, PartialEq)]
pub struct Clause {
    pub criteria: Vec<Criterion>,
    pub target: Target,
}

/// Clauses of which any holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub clauses: Vec<Clause>,
}

/// The expression in `input`; `None` when it is blank.
pub fn parse(input: &str) -> Result<Option<Expr>, FindError> {
    let tokens = tokenize(input)?;
    if tokens.is_empty() {
        return Ok(None);
    }
    let mut p = Parser {
        input,
        tokens: &tokens,
        at: 0,
    };
    let mut clauses = vec![p.clause()?];
    while let Some(t) = p.peek() {
        match t.kind {
            Kind::Or => {
                p.at += 1;
                p.expect_more(t)?;
                clauses.push(p.clause()?);
            }
            _ => return Err(p.error_at(t, "expected AND or OR before")),
        }
    }
    Ok(Some(Expr { clauses }))
}

struct Parser<'a> {
    input: &'a str,
    tokens: &'a [Token],
    at: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<&'a Token> {
        let t = self.tokens.get(self.at);
        self.at += 1;
        t
    }

    fn error_at(&self, t: &Token, what: &str) -> FindError {
        FindError::new(format!("{what} [{}]", t.text(self.input)), t.start, t.end)
    }

    /// After `t` (a conjunction or an operator) something must follow.
    fn expect_more(&self, t: &Token) -> Result<(), FindError> {
        if self.peek().is_none() {
            return Err(self.error_at(t, "nothing follows"));
        }
        Ok(())
    }

    fn clause(&mut self) -> Result<Clause, FindError> {
        let mut criteria = Vec::new();
        // The first operand that fixed the clause's target, for the error.
        let mut fixed: Option<(Target, &'a Token)> = None;
        loop {
            let (criterion, target, operand) = self.criterion()?;
            if target != Target::Both {
                match fixed {
                    Some((t, first)) if t != target => {
                        return Err(FindError::new(
                            format!(
                                "cannot AND {} operand [{}] with {} operand [{}]; use OR",
                                target_word(t),
                                first.text(self.input),
                                target_word(target),
                                operand.text(self.input)
                            ),
                            operand.start,
                            operand.end,
                        ));
                    }
                    Some(_) => {}
                    None => fixed = Some((target, operand)),
                }
            }
            criteria.push(criterion);
            match self.peek() {
                Some(t) if t.kind == Kind::And => {
                    self.at += 1;
                    self.expect_more(t)?;
                }
                _ => break,
            }
        }
        Ok(Clause {
            criteria,
            target: fixed.map_or(Target::Both, |(t, _)| t),
        })
    }

    /// One criterion, its target, and the operand's token.
    fn criterion(&mut self) -> Result<(Criterion, Target, &'a Token), FindError> {
        let mut negated = false;
        let mut prefix: Option<&Token> = None;
        // `!`, `not`, `has`, `is`, `!has`: only before a flag.
        while let Some(t) = self.peek() {
            match &t.kind {
                Kind::Not => negated = !negated,
                Kind::Word(w) if w.eq_ignore_ascii_case("not") => negated = !negated,
                Kind::Word(w) if w.eq_ignore_ascii_case("has") || w.eq_ignore_ascii_case("is") => {}
                _ => break,
            }
            prefix.get_or_insert(t);
            self.at += 1;
        }
        let Some(t) = self.next() else {
            let last = self.tokens.last().expect("parse() saw tokens");
            return Err(self.error_at(last, "an operand must follow"));
        };
        let name = match &t.kind {
            Kind::Word(w) => w.as_str(),
            Kind::Quoted(_) => return Err(self.error_at(t, "expected an operand, not the value")),
            Kind::Op(_) => return Err(self.error_at(t, "expected an operand before")),
            Kind::And | Kind::Or | Kind::Not => {
                return Err(self.error_at(t, "expected an operand, found"));
            }
        };
        let Some(operand) = operand::lookup(name) else {
            return Err(FindError::new(
                format!(
                    "unknown operand [{name}]; operands: {}",
                    operand::all_names()
                ),
                t.start,
                t.end,
            ));
        };
        if let operand::Kind::Flag(flag) = operand.kind {
            if let Some(next) = self.peek()
                && !matches!(next.kind, Kind::And | Kind::Or)
            {
                return Err(FindError::new(
                    format!("[{name}] is a flag and takes no value: write {name} or !{name}"),
                    next.start,
                    next.end,
                ));
            }
            return Ok((Criterion::Flag { flag, negated }, operand.target, t));
        }
        if let Some(p) = prefix {
            return Err(FindError::new(
                format!(
                    "[{}] only goes before a flag such as !sidecar; [{name}] needs an operator, e.g. {name} != …",
                    p.text(self.input)
                ),
                p.start,
                p.end,
            ));
        }
        let op = self.operator(t, name)?;
        let Some(v) = self.next() else {
            let last = self.tokens.last().expect("parse() saw tokens");
            return Err(self.error_at(last, "a value must follow"));
        };
        let value = match &v.kind {
            Kind::Word(w) => w.clone(),
            Kind::Quoted(q) => q.clone(),
            _ => return Err(self.error_at(v, &format!("expected a value for [{name}], found"))),
        };
        let criterion = match operand.kind {
            operand::Kind::Text(field) => {
                if matches!(op, Op::Lt | Op::Gt | Op::Le | Op::Ge) {
                    return Err(FindError::new(
                        format!(
                            "[{}] compares numbers, but [{name}] is text; use = != ^= $= *=",
                            op.as_str()
                        ),
                        t.end,
                        v.start,
                    ));
                }
                Criterion::Text { field, op, value }
            }
            operand::Kind::Number(field) => {
                if matches!(
                    op,
                    Op::StartsWith
                        | Op::EndsWith
                        | Op::Contains
                        | Op::NotStartsWith
                        | Op::NotEndsWith
                        | Op::NotContains
                ) {
                    return Err(FindError::new(
                        format!(
                            "[{}] compares text, but [{name}] is a number; use = != < > <= >=",
                            op.as_str()
                        ),
                        t.end,
                        v.start,
                    ));
                }
                let number = value.parse::<f64>().ok().filter(|n| n.is_finite());
                let Some(value) = number else {
                    return Err(self.error_at(
                        v,
                        &format!("[{name}] is a number (use . for decimals), not"),
                    ));
                };
                Criterion::Number { field, op, value }
            }
            operand::Kind::Flag(_) => unreachable!("flags returned above"),
        };
        Ok((criterion, operand.target, t))
    }

    /// The operator after `operand`: a symbol, or Kiali's words for it.
    fn operator(&mut self, operand: &Token, name: &str) -> Result<Op, FindError> {
        let mut negated = false;
        loop {
            let Some(t) = self.next() else {
                return Err(FindError::new(
                    format!("[{name}] needs an operator and a value, e.g. {name}=…"),
                    operand.start,
                    operand.end,
                ));
            };
            let op = match &t.kind {
                Kind::Op(op) => Some(*op),
                Kind::Not => {
                    negated = !negated;
                    None
                }
                Kind::Word(w) => match w.to_ascii_lowercase().as_str() {
                    "not" => {
                        negated = !negated;
                        None
                    }
                    "contains" => Some(Op::Contains),
                    "startswith" => Some(Op::StartsWith),
                    "endswith" => Some(Op::EndsWith),
                    _ => {
                        return Err(self
                            .error_at(t, &format!("expected an operator after [{name}], found")));
                    }
                },
                _ => {
                    return Err(
                        self.error_at(t, &format!("expected an operator after [{name}], found"))
                    );
                }
            };
            let Some(op) = op else { continue };
            if !negated {
                return Ok(op);
            }
            return op
                .negated()
                .ok_or_else(|| self.error_at(t, "[not] cannot negate the operator"));
        }
    }
}

fn target_word(t: Target) -> &'static str {
    match t {
        Target::Node => "node",
        Target::Edge => "edge",
        Target::Both => "node-or-edge",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(input: &str) -> Criterion {
        let e = parse(input).unwrap().unwrap();
        assert_eq!(e.clauses.len(), 1);
        assert_eq!(e.clauses[0].criteria.len(), 1);
        e.clauses[0].criteria[0].clone()
    }

    fn text(field: Field, op: Op, value: &str) -> Criterion {
        Criterion::Text {
            field,
            op,
            value: value.into(),
        }
    }

    fn err(input: &str) -> FindError {
        match parse(input) {
            Err(e) => e,
            Ok(e) => panic!("{input:?} parsed as {e:?}"),
        }
    }

    #[test]
    fn every_operator_parses() {
        for (s, op) in [
            ("=", Op::Eq),
            ("!=", Op::Ne),
            ("^=", Op::StartsWith),
            ("$=", Op::EndsWith),
            ("*=", Op::Contains),
            ("!^=", Op::NotStartsWith),
            ("!$=", Op::NotEndsWith),
            ("!*=", Op::NotContains),
        ] {
            assert_eq!(one(&format!("app {s} rev")), text(Field::App, op, "rev"));
        }
        for (s, op) in [
            ("<", Op::Lt),
            (">", Op::Gt),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("!=", Op::Ne),
        ] {
            assert_eq!(
                one(&format!("rps{s}2.5")),
                Criterion::Number {
                    field: Field::Rps,
                    op,
                    value: 2.5
                }
            );
        }
    }

    #[test]
    fn kiali_mnemonics_read_as_operators() {
        assert_eq!(
            one("name contains rev"),
            text(Field::Name, Op::Contains, "rev")
        );
        assert_eq!(
            one("name not contains rev"),
            text(Field::Name, Op::NotContains, "rev")
        );
        assert_eq!(
            one("app !startswith pro"),
            text(Field::App, Op::NotStartsWith, "pro")
        );
        assert_eq!(
            one("app endswith page"),
            text(Field::App, Op::EndsWith, "page")
        );
        assert_eq!(
            one("!has sidecar"),
            Criterion::Flag {
                flag: Flag::Sidecar,
                negated: true
            }
        );
        assert_eq!(
            one("is healthy"),
            Criterion::Flag {
                flag: Flag::Healthy,
                negated: false
            }
        );
        assert_eq!(
            one("not mtls"),
            Criterion::Flag {
                flag: Flag::Mtls,
                negated: true
            }
        );
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let e = parse("app=reviews and version=v2 or protocol=grpc || %httperr > 5 && rt > 100")
            .unwrap()
            .unwrap();
        let shape: Vec<(usize, Target)> = e
            .clauses
            .iter()
            .map(|c| (c.criteria.len(), c.target))
            .collect();
        assert_eq!(
            shape,
            [(2, Target::Node), (1, Target::Edge), (2, Target::Edge)]
        );
    }

    #[test]
    fn operands_for_both_take_the_clause_target_or_select_both() {
        let e = parse("%httperr > 1").unwrap().unwrap();
        assert_eq!(e.clauses[0].target, Target::Both);
        let e = parse("degraded and ns = default").unwrap().unwrap();
        assert_eq!(e.clauses[0].target, Target::Node);
    }

    #[test]
    fn blank_is_no_expression_and_quotes_keep_spaces() {
        assert_eq!(parse("   ").unwrap(), None);
        assert_eq!(one(r#"app = "my app""#), text(Field::App, Op::Eq, "my app"));
    }

    #[test]
    fn unknown_operand_is_named_with_its_position() {
        let e = err("app=x and pods > 3");
        assert!(
            e.message.contains("unknown operand [pods]"),
            "{}",
            e.message
        );
        assert_eq!((e.start, e.end), (10, 14));
    }

    #[test]
    fn numbers_are_checked() {
        let e = err("rps > fast");
        assert!(e.message.contains("not [fast]"), "{}", e.message);
        assert_eq!(e.start, 6);
        assert!(err("rt > 1,5").message.contains("[1,5]"));
    }

    #[test]
    fn operators_must_fit_the_operand() {
        assert!(err("app > 3").message.contains("[>] compares numbers"));
        assert!(err("rps *= 3").message.contains("[*=] compares text"));
        assert!(err("sidecar = yes").message.contains("[sidecar] is a flag"));
        assert!(
            err("!app=x")
                .message
                .contains("[!] only goes before a flag")
        );
        assert!(
            err("app = x = y")
                .message
                .contains("expected AND or OR before [=]")
        );
    }

    #[test]
    fn missing_parts_are_named() {
        assert!(err("app").message.contains("[app] needs an operator"));
        assert!(err("app =").message.contains("a value must follow [=]"));
        assert!(err("app = x and").message.contains("nothing follows [and]"));
        assert!(err("app = x ||").message.contains("nothing follows [||]"));
        assert!(
            err("and app = x")
                .message
                .contains("expected an operand, found [and]")
        );
        assert!(
            err("app is x")
                .message
                .contains("expected an operator after [app], found [is]")
        );
    }

    #[test]
    fn node_and_edge_operands_cannot_be_anded() {
        let e = err("app = reviews AND protocol = http");
        assert!(
            e.message
                .contains("cannot AND node operand [app] with edge operand [protocol]"),
            "{}",
            e.message
        );
        assert_eq!(e.start, 18);
        // With OR they can.
        assert_eq!(
            parse("app = reviews OR protocol = http")
                .unwrap()
                .unwrap()
                .clauses
                .len(),
            2
        );
    }
}
