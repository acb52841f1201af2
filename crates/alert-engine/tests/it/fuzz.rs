//! The parser never panics: arbitrary text and soups of the language's own
//! pieces either parse or give an error whose position lies in the input.

use pantau_alert_engine::lang::parse;
use proptest::prelude::*;

const PIECES: &[&str] = &[
    "cpu",
    "check_up",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    "=",
    "==",
    "!=",
    "!",
    "<",
    "<=",
    ">",
    ">=",
    "and",
    "or",
    "not",
    "for",
    "5m",
    "1h30m",
    "0s",
    "80",
    "1e3",
    "1.5",
    ".",
    "\"x\"",
    "'y'",
    "\"",
    "target=\"api\"",
    "avg_over_time",
    "rate",
    "count_over_time",
    " ",
    "é",
    "#",
    "\\",
    "9999999999999999999999h",
];

fn check(src: &str) {
    match parse(src) {
        Ok(_) => {}
        Err(e) => {
            assert!(e.offset <= src.len(), "offset {} beyond {:?}", e.offset, src);
            assert!(
                e.column >= 1 && e.column <= src.chars().count() + 1,
                "column {} in {src:?}",
                e.column
            );
            assert!(!e.reason.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(src in "\\PC{0,80}") {
        check(&src);
    }

    #[test]
    fn soups_of_tokens_never_panic(parts in proptest::collection::vec(proptest::sample::select(PIECES), 0..24)) {
        check(&parts.concat());
        check(&parts.join(" "));
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for depth in [65, 1_000, 2_000] {
        check(&"(".repeat(depth));
        check(&"not ".repeat(depth));
        check(&format!("{}a{}", "(".repeat(depth), ")".repeat(depth)));
    }
}
