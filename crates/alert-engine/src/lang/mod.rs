//! The rule language: a lexer ([`lexer`]), a Pratt parser ([`parser`]) and
//! the syntax tree below.
//!
//! ```text
//! rule     := cond [ "for" DURATION ]
//! cond     := cond "or" cond | cond "and" cond | "not" cond | operand [ CMP operand ] | "(" cond ")"
//! operand  := NUMBER | STRING | selector | FUNC "(" selector "[" DURATION "]" ")"
//! selector := NAME [ "{" LABEL ("=" | "!=") STRING ("," ...)* "}" ]
//! CMP      := == != < <= > >=        FUNC := avg|min|max|sum|count_over_time, rate
//! ```
//! Precedence, loosest first: `or`, `and`, `not`, comparisons.

pub mod lexer;
pub mod parser;

use std::fmt;
use std::time::Duration;

pub use parser::parse;

/// Longest expression accepted, in bytes.
pub const MAX_LEN: usize = 4096;
/// Deepest nesting of parentheses and `not` accepted.
pub const MAX_DEPTH: usize = 64;

/// Why an expression does not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at column {column}: {reason}")]
pub struct ParseError {
    /// Byte offset into the expression.
    pub offset: usize,
    /// 1-based column (in characters).
    pub column: usize,
    pub reason: String,
}

impl ParseError {
    pub(crate) fn new(src: &str, offset: usize, reason: impl Into<String>) -> Self {
        let offset = offset.min(src.len());
        let column = src.char_indices().take_while(|(i, _)| *i < offset).count() + 1;
        Self {
            offset,
            column,
            reason: reason.into(),
        }
    }
}

/// A parsed rule: the condition and how long it must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleExpr {
    pub cond: Expr,
    /// `for <duration>` at the end of the expression.
    pub hold: Option<Duration>,
}

impl RuleExpr {
    /// Each metric the rule reads over a range, with the longest range.
    pub fn ranges(&self) -> Vec<(String, Duration)> {
        fn walk(e: &Expr, out: &mut Vec<(String, Duration)>) {
            match e {
                Expr::Range { selector, range, .. } => match out.iter_mut().find(|(n, _)| *n == selector.name) {
                    Some((_, r)) => *r = (*r).max(*range),
                    None => out.push((selector.name.clone(), *range)),
                },
                Expr::Compare { lhs, rhs, .. } | Expr::And(lhs, rhs) | Expr::Or(lhs, rhs) => {
                    walk(lhs, out);
                    walk(rhs, out);
                }
                Expr::Not(e) => walk(e, out),
                Expr::Number(_) | Expr::Str(_) | Expr::Selector(_) => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.cond, &mut out);
        out
    }

    /// The metric names the rule reads, for event-driven evaluation.
    pub fn metric_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.cond.collect_names(&mut out);
        out.dedup();
        out
    }
}

/// A node of the condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Number(f64),
    Str(String),
    /// The current value of every series matching.
    Selector(Selector),
    /// A function over each matching series' samples in the last `range`.
    Range {
        func: RangeFn,
        selector: Selector,
        range: Duration,
    },
    Compare {
        op: CmpOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

impl Expr {
    fn collect_names(&self, out: &mut Vec<String>) {
        match self {
            Expr::Number(_) | Expr::Str(_) => {}
            Expr::Selector(s) | Expr::Range { selector: s, .. } => {
                if !out.contains(&s.name) {
                    out.push(s.name.clone());
                }
            }
            Expr::Compare { lhs, rhs, .. } | Expr::And(lhs, rhs) | Expr::Or(lhs, rhs) => {
                lhs.collect_names(out);
                rhs.collect_names(out);
            }
            Expr::Not(e) => e.collect_names(out),
        }
    }
}

/// `name{label="v", other!="w"}`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub name: String,
    pub matchers: Vec<Matcher>,
}

/// One label matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    pub label: String,
    pub equal: bool,
    pub value: String,
}

impl Matcher {
    /// Whether a series with label value `v` (`None`: absent) matches; an
    /// absent label reads as the empty string, as in PromQL.
    pub fn matches(&self, v: Option<&str>) -> bool {
        (v.unwrap_or("") == self.value) == self.equal
    }
}

/// Functions over a range of samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeFn {
    Avg,
    Min,
    Max,
    Sum,
    Count,
    /// Per-second increase, counter resets handled.
    Rate,
}

impl RangeFn {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "avg_over_time" => Self::Avg,
            "min_over_time" => Self::Min,
            "max_over_time" => Self::Max,
            "sum_over_time" => Self::Sum,
            "count_over_time" => Self::Count,
            "rate" => Self::Rate,
            _ => return None,
        })
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn holds<T: PartialOrd + ?Sized>(self, a: &T, b: &T) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
        }
    }

    pub fn is_equality(self) -> bool {
        matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        })
    }
}
