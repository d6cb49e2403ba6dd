//! Bytes → parse: never panics; whatever parses prints back to the same model.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sidecar_model::{parse, print_ruleset};

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = parse("fuzz", data) {
        let text = print_ruleset(&parsed.ruleset);
        let again = parse("printed", text.as_bytes()).expect("the canonical print parses");
        assert_eq!(
            again.ruleset, parsed.ruleset,
            "parse(print(r)) != r\n{text}"
        );
    }
});
