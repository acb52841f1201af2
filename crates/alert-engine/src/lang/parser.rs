//! A Pratt parser over the tokens of [`super::lexer`].

use super::lexer::{Spanned, Tok, lex};
use super::{CmpOp, Expr, MAX_DEPTH, MAX_LEN, Matcher, ParseError, RangeFn, RuleExpr, Selector};

/// Parses a rule expression such as `check_up{target="api"} == 0 for 1m`.
pub fn parse(src: &str) -> Result<RuleExpr, ParseError> {
    if src.len() > MAX_LEN {
        return Err(ParseError::new(
            src,
            0,
            format!(
                "the expression is {} bytes long; at most {MAX_LEN} are allowed",
                src.len()
            ),
        ));
    }
    let toks = lex(src)?;
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        depth: 0,
    };
    if p.peek() == &Tok::Eof {
        return Err(p.err_here("the expression is empty"));
    }
    let cond = p.expr(0)?;
    let hold = if p.peek() == &Tok::For {
        p.bump();
        let at = p.peek_at();
        match p.bump() {
            Tok::Duration(d) => Some(d),
            other => {
                return Err(p.err_at(
                    at,
                    format!("expected a duration such as 5m after `for`, found {}", other.describe()),
                ));
            }
        }
    } else {
        None
    };
    if p.peek() != &Tok::Eof {
        let found = p.peek().describe();
        return Err(p.err_here(format!(
            "unexpected {found}: expected `and`, `or`, a comparison, `for` or the end"
        )));
    }
    Ok(RuleExpr { cond, hold })
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Spanned>,
    pos: usize,
    depth: usize,
}

const BP_OR: u8 = 1;
const BP_AND: u8 = 2;
const BP_NOT: u8 = 3;
const BP_CMP: u8 = 4;

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].tok
    }

    fn peek_at(&self) -> usize {
        self.toks[self.pos.min(self.toks.len() - 1)].at
    }

    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn err_at(&self, at: usize, reason: impl Into<String>) -> ParseError {
        ParseError::new(self.src, at, reason)
    }

    fn err_here(&self, reason: impl Into<String>) -> ParseError {
        self.err_at(self.peek_at(), reason)
    }

    fn expect(&mut self, want: &Tok, what: &str) -> Result<(), ParseError> {
        if self.peek() == want {
            self.bump();
            Ok(())
        } else {
            let found = self.peek().describe();
            Err(self.err_here(format!("expected {what}, found {found}")))
        }
    }

    fn expr(&mut self, min_bp: u8) -> Result<Expr, ParseError> {
        let mut lhs = self.prefix()?;
        loop {
            let op_at = self.peek_at();
            let (bp, op) = match self.peek() {
                Tok::Or => (BP_OR, None),
                Tok::And => (BP_AND, None),
                Tok::EqEq => (BP_CMP, Some(CmpOp::Eq)),
                Tok::Ne => (BP_CMP, Some(CmpOp::Ne)),
                Tok::Lt => (BP_CMP, Some(CmpOp::Lt)),
                Tok::Le => (BP_CMP, Some(CmpOp::Le)),
                Tok::Gt => (BP_CMP, Some(CmpOp::Gt)),
                Tok::Ge => (BP_CMP, Some(CmpOp::Ge)),
                Tok::Eq => {
                    return Err(self.err_here("`=` only matches labels inside `{ }`; compare values with `==`"));
                }
                _ => break,
            };
            if bp < min_bp {
                break;
            }
            let tok = self.bump();
            match op {
                None => {
                    let rhs = self.expr(bp + 1)?;
                    lhs = if tok == Tok::And {
                        Expr::And(Box::new(lhs), Box::new(rhs))
                    } else {
                        Expr::Or(Box::new(lhs), Box::new(rhs))
                    };
                }
                Some(op) => {
                    if !is_operand(&lhs) {
                        return Err(self.err_at(
                            op_at,
                            format!(
                                "the left side of `{op}` must be a number, a string or a metric; comparisons cannot be chained, combine them with `and`"
                            ),
                        ));
                    }
                    let rhs_at = self.peek_at();
                    let rhs = self.expr(BP_CMP + 1)?;
                    if !is_operand(&rhs) {
                        return Err(
                            self.err_at(rhs_at, format!("expected a number, a string or a metric after `{op}`"))
                        );
                    }
                    let is_str = |e: &Expr| matches!(e, Expr::Str(_));
                    if !op.is_equality() && (is_str(&lhs) || is_str(&rhs)) {
                        return Err(self.err_at(
                            op_at,
                            format!("strings can only be compared with `==` or `!=`, not `{op}`"),
                        ));
                    }
                    lhs = Expr::Compare {
                        op,
                        lhs: Box::new(lhs),
                        rhs: Box::new(rhs),
                    };
                }
            }
        }
        Ok(lhs)
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err_here(format!("the expression nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn prefix(&mut self) -> Result<Expr, ParseError> {
        let at = self.peek_at();
        match self.bump() {
            Tok::Not => {
                self.enter()?;
                let e = self.expr(BP_NOT)?;
                self.depth -= 1;
                Ok(Expr::Not(Box::new(e)))
            }
            Tok::LParen => {
                self.enter()?;
                let e = self.expr(0)?;
                let col = ParseError::new(self.src, at, "").column;
                self.expect(&Tok::RParen, &format!("`)` to close the `(` at column {col}"))?;
                self.depth -= 1;
                Ok(e)
            }
            Tok::Number(n) => Ok(Expr::Number(n)),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Ident(name) => {
                if self.peek() == &Tok::LParen {
                    self.range_call(&name, at)
                } else {
                    Ok(Expr::Selector(self.selector_rest(name)?))
                }
            }
            Tok::Duration(_) => Err(self.err_at(
                at,
                "a duration belongs after `for` or inside `[ ]`, such as avg_over_time(x[5m])",
            )),
            Tok::Eof => Err(self.err_at(at, "expected a condition, found the end of the expression")),
            other => Err(self.err_at(
                at,
                format!(
                    "expected a number, a string, a metric, `not` or `(`, found {}",
                    other.describe()
                ),
            )),
        }
    }

    fn range_call(&mut self, name: &str, at: usize) -> Result<Expr, ParseError> {
        let func = RangeFn::from_name(name).ok_or_else(|| {
            self.err_at(
                at,
                format!(
                    "unknown function `{name}`: use avg_over_time, min_over_time, max_over_time, sum_over_time, count_over_time or rate"
                ),
            )
        })?;
        self.bump(); // (
        let sel_at = self.peek_at();
        let selector = match self.bump() {
            Tok::Ident(metric) => self.selector_rest(metric)?,
            other => {
                return Err(self.err_at(
                    sel_at,
                    format!("expected a metric name inside `{name}(`, found {}", other.describe()),
                ));
            }
        };
        self.expect(&Tok::LBracket, "`[` and a range such as [5m] after the metric")?;
        let d_at = self.peek_at();
        let range = match self.bump() {
            Tok::Duration(d) if !d.is_zero() => d,
            Tok::Duration(_) => return Err(self.err_at(d_at, "the range must be longer than zero")),
            other => {
                return Err(self.err_at(
                    d_at,
                    format!("expected a range such as 5m inside `[ ]`, found {}", other.describe()),
                ));
            }
        };
        self.expect(&Tok::RBracket, "`]` after the range")?;
        self.expect(&Tok::RParen, &format!("`)` to close `{name}(`"))?;
        Ok(Expr::Range { func, selector, range })
    }

    fn selector_rest(&mut self, name: String) -> Result<Selector, ParseError> {
        let mut matchers = Vec::new();
        if self.peek() == &Tok::LBrace {
            self.bump();
            loop {
                let at = self.peek_at();
                let label = match self.bump() {
                    Tok::RBrace => break,
                    Tok::Ident(l) => l,
                    other => {
                        return Err(
                            self.err_at(at, format!("expected a label name or `}}`, found {}", other.describe()))
                        );
                    }
                };
                let op_at = self.peek_at();
                let equal = match self.bump() {
                    Tok::Eq => true,
                    Tok::Ne => false,
                    Tok::EqEq => return Err(self.err_at(op_at, "label matchers use `=`, not `==`")),
                    other => {
                        return Err(self.err_at(
                            op_at,
                            format!(
                                "expected `=` or `!=` after the label `{label}`, found {}",
                                other.describe()
                            ),
                        ));
                    }
                };
                let v_at = self.peek_at();
                let value = match self.bump() {
                    Tok::Str(v) => v,
                    other => {
                        return Err(self.err_at(
                            v_at,
                            format!(
                                "expected a quoted value for the label `{label}`, found {}",
                                other.describe()
                            ),
                        ));
                    }
                };
                matchers.push(Matcher { label, equal, value });
                match self.peek() {
                    Tok::Comma => {
                        self.bump();
                    }
                    Tok::RBrace => {}
                    other => {
                        let found = other.describe();
                        return Err(self.err_here(format!("expected `,` or `}}` after a label matcher, found {found}")));
                    }
                }
            }
        }
        Ok(Selector { name, matchers })
    }
}

fn is_operand(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Number(_) | Expr::Str(_) | Expr::Selector(_) | Expr::Range { .. }
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ok(s: &str) -> RuleExpr {
        parse(s).unwrap_or_else(|e| panic!("`{s}` should parse: {e}"))
    }

    fn err(s: &str) -> ParseError {
        parse(s).expect_err(s)
    }

    fn sel(name: &str, m: &[(&str, &str)]) -> Expr {
        Expr::Selector(Selector {
            name: name.into(),
            matchers: m
                .iter()
                .map(|(l, v)| Matcher {
                    label: (*l).into(),
                    equal: true,
                    value: (*v).into(),
                })
                .collect(),
        })
    }

    fn cmp(op: CmpOp, lhs: Expr, rhs: Expr) -> Expr {
        Expr::Compare {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        }
    }

    #[test]
    fn the_issue_examples_parse() {
        let r = ok("cpu_usage > 80 for 5m");
        assert_eq!(r.cond, cmp(CmpOp::Gt, sel("cpu_usage", &[]), Expr::Number(80.0)));
        assert_eq!(r.hold, Some(Duration::from_secs(300)));
        assert_eq!(ok("disk_usage > 90").hold, None);
        let r = ok(r#"avg_over_time(check_duration_ms{target="api"}[5m]) > 2000"#);
        assert!(matches!(
            r.cond,
            Expr::Compare { lhs, .. } if matches!(&*lhs, Expr::Range { func: RangeFn::Avg, range, .. } if *range == Duration::from_secs(300))
        ));
        let r = ok(r#"check_up{target="api"} == 0 for 1m"#);
        assert_eq!(
            r.cond,
            cmp(CmpOp::Eq, sel("check_up", &[("target", "api")]), Expr::Number(0.0))
        );
        let r = ok(r#"health{component="database"} == "unhealthy""#);
        assert_eq!(
            r.cond,
            cmp(
                CmpOp::Eq,
                sel("health", &[("component", "database")]),
                Expr::Str("unhealthy".into())
            )
        );
        let r = ok(r#"interface_up{router="core1", interface="ether1"} == 0"#);
        assert_eq!(r.metric_names(), ["interface_up"]);
        ok("cert_expiry_days < 14");
        ok(r#"consensus{target="web"} == "DOWN""#);
        ok("router_reboot");
        ok("rate(if_in_octets[5m]) >= 1e6 and not maintenance or count_over_time(reboot[1h]) > 2");
    }

    #[test]
    fn precedence_is_or_and_not_compare() {
        let r = ok("a or b and not c > 1");
        let Expr::Or(lhs, rhs) = r.cond else {
            panic!("or at the top")
        };
        assert_eq!(*lhs, sel("a", &[]));
        let Expr::And(b, not) = *rhs else {
            panic!("and under or")
        };
        assert_eq!(*b, sel("b", &[]));
        assert_eq!(
            *not,
            Expr::Not(Box::new(cmp(CmpOp::Gt, sel("c", &[]), Expr::Number(1.0))))
        );
        let r = ok("(a or b) and c");
        assert!(matches!(r.cond, Expr::And(..)));
        assert_eq!(ok("a and b or c").metric_names(), ["a", "b", "c"]);
    }

    #[test]
    fn malformed_input_names_position_and_reason() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 1, "empty"),
            ("   ", 4, "empty"),
            ("cpu >", 6, "found the end"),
            ("cpu > > 3", 7, "expected a number, a string, a metric"),
            ("cpu = 3", 5, "compare values with `==`"),
            ("a > 1 > 2", 7, "cannot be chained"),
            (r#"a{x=="y"} > 1"#, 4, "use `=`, not `==`"),
            ("a{x=y} > 1", 5, "expected a quoted value for the label `x`"),
            (r#"a{x="y" z="w"}"#, 9, "expected `,` or `}`"),
            ("a > 1 for", 10, "expected a duration such as 5m after `for`"),
            ("a > 1 for 5", 11, "expected a duration"),
            ("a > 1 for 5m and b", 14, "unexpected `and`"),
            ("avg(a[5m]) > 1", 1, "unknown function `avg`"),
            ("avg_over_time(a) > 1", 16, "expected `[` and a range"),
            ("avg_over_time(a[0s]) > 1", 17, "longer than zero"),
            ("avg_over_time(a[5m] > 1", 21, "`)` to close `avg_over_time(`"),
            ("(a > 1", 7, "`)` to close the `(` at column 1"),
            (
                r#"h == "x" or s > "y""#,
                15,
                "strings can only be compared with `==` or `!=`",
            ),
            ("a > 5m", 5, "a duration belongs after `for`"),
            ("a > 1.5m", 5, "whole numbers with units"),
            ("(a and b) > 1", 11, "left side of `>`"),
            ("a > not b", 5, "expected a number, a string or a metric after `>`"),
            ("a ) b", 3, "unexpected `)`"),
            ("é > 1", 1, "unexpected character `é`"),
            ("a > 1 and é", 11, "unexpected character `é`"),
        ];
        for (src, column, reason) in cases {
            let e = err(src);
            assert!(
                e.column == *column && e.reason.contains(reason),
                "`{src}`: got column {} `{}`, wanted column {column} containing `{reason}`",
                e.column,
                e.reason
            );
        }
    }

    #[test]
    fn limits_hold() {
        let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert!(err(&deep).reason.contains("deeper than 64"));
        let nots = format!("{}a", "not ".repeat(100));
        assert!(err(&nots).reason.contains("deeper than 64"));
        let long = format!("a > {}", "1".repeat(MAX_LEN));
        assert!(err(&long).reason.contains("at most 4096"));
        ok(&format!("{}a{}", "(".repeat(60), ")".repeat(60)));
    }
}
