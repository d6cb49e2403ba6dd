//! Bytes → the nft readers (text, and JSON when the input is a JSON document), without format
//! detection, so every input exercises them: never panics; whatever parses prints back (in
//! `nft list ruleset`'s form) to the same model.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sidecar_model::nft;

fuzz_target!(|data: &[u8]| {
    // What `sidecar_model::parse` refuses before any reader sees it: invalid UTF-8, NUL bytes.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.contains('\0') {
        return;
    }
    let parsed = if nft::json::looks_like_json(text) {
        nft::json::parse("fuzz", text)
    } else {
        nft::parse("fuzz", text)
    };
    if let Ok(rs) = parsed {
        let printed = nft::print_nft(&rs);
        let again = nft::parse("printed", &printed).expect("the canonical print parses");
        assert_eq!(again, rs, "parse(print(r)) != r\n{printed}");
    }
});
