//! Bytes → parse: never panics; whatever parses prints back to the same model; reading the runs
//! of `-A` lines on threads (`parse/parallel.rs`) gives the same ruleset or the same error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sidecar_model::parse::{parse_with, Options, Tuning};
use sidecar_model::{parse, print_ruleset};

fuzz_target!(|data: &[u8]| {
    // Small inputs are read one line at a time by default; here every run goes to threads.
    let threads = Options {
        tuning: Tuning {
            threads: 2,
            min_run_bytes: 1,
        },
        ..Options::default()
    };
    let one = parse("fuzz", data);
    match (&one, parse_with("fuzz", data, &threads)) {
        (Ok(a), Ok(b)) => assert!(a.ruleset == b.ruleset && a.format == b.format),
        (Err(a), Err(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}")),
        (a, b) => panic!("one line at a time: {a:?}\non threads: {b:?}"),
    }
    if let Ok(parsed) = one {
        let text = print_ruleset(&parsed.ruleset);
        let again = parse("printed", text.as_bytes()).expect("the canonical print parses");
        assert_eq!(
            again.ruleset, parsed.ruleset,
            "parse(print(r)) != r\n{text}"
        );
    }
});
