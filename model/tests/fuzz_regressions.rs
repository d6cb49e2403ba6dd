//! Inputs the fuzzers found, each with its root cause. Every one must now hold the parser
//! target's property: no panic, and whatever parses prints back to the same model.

#![cfg(test)]

mod common;

use std::path::Path;

use sidecar_model::parse;

/// (file under `tests/fuzz_regressions/`, root cause)
const CASES: &[(&str, &str)] = &[
    (
        "set-flags-look-like-t-option.bin",
        "command form accepted `--match-set NAME -dtsj`, whose restore-form print iptables-restore refuses as a `-t` option",
    ),
    (
        "unknown-module-args-before-p.bin",
        "an unknown module's arguments took `--dport` when `-p tcp` came later; the print puts `-p` first, so the split differed",
    ),
    (
        "module-name-with-space.bin",
        "a quoted match name with a trailing space was kept, and printed unquoted it lost the space",
    ),
    (
        "unknown-module-trailing-bang.bin",
        "a `!` ending the rule was taken into an unknown module's verbatim arguments; the print puts `-j` after them, and `! -j` does not parse (now: `!` at the end of the rule negates nothing)",
    ),
    (
        "unknown-module-bang-bang.bin",
        "after the trailing-`!` fix, `-m tcpN I ISTUT ! ! -f` still took the first `!` into the unknown module's arguments (it was followed by a `!`, not an option), so the print ended the rule with `!` (now: a `!` followed by `!` ends the arguments, and `!` given twice is refused)",
    ),
    (
        "option-of-a-later-module.bin",
        "an unknown target's verbatim arguments took `--gid-owner` because `-m owner` came later in the rule; the print puts every match first, so owner took it back (now: options of modules loaded anywhere in the rule end verbatim arguments, and an option before its module is refused, as iptables refuses it)",
    ),
    (
        "nft-unclosed-brace.bin",
        "an nft rule with a `{` never closed ran to the end of the input and was kept verbatim as one unknown expression, whose print does not parse (now: refused, `{` is never closed)",
    ),
    (
        "nft-statements-then-verbatim.bin",
        "an nft rule whose statements (not one of iptables' targets) were followed by words nft does not know kept those words twice: once as an unknown match and once in the verbatim target, so its print read back with them doubled",
    ),
    (
        "nft-counter-in-verbatim-statements.bin",
        "a `counter` (or `comment`) between statements that are kept verbatim (`jump x counter accept`) was both in the verbatim text and a part of its own, so the print had it twice",
    ),
    (
        "nft-rule-begins-with-type.bin",
        "an nft rule kept verbatim that began with `type` printed, in the block form, as a chain's `type … hook …` declaration (now: a rule cannot begin with a word of a chain's declarations)",
    ),
    (
        "nft-comment-before-verbatim.bin",
        "an nft rule's comment written before a part kept verbatim printed last, as nft prints comments, and read back inside the verbatim part (now: printed before it)",
    ),
    (
        "nft-empty-name.bin",
        "an nft table named by an empty string (`add table inet \"\"`) printed as `table inet  {`, which does not parse (now: a table's or chain's name must be one the print writes back as itself)",
    ),
    (
        "nft-table-order-across-families.bin",
        "nft tables printed per family (inet and ip first, ip6 after), so an ip6 table created before an inet one came back after it, and tables without base chains took other places (now: `NftTable::seq`, the order of creation, which nft lists in)",
    ),
    (
        "nft-empty-user-name.bin",
        "`skuid \"\"` took the empty string as a user name and printed it bare (`meta skuid `), so the next token became the name when read back (now: a name is a bare word; anything else is kept verbatim)",
    ),
    (
        "nft-carriage-return-in-word.bin",
        "a word ending in `\\r\\r` before the newline kept one `\\r` (only the line's last is its ending), printed it at the end of a line, and read back without it (now: `\\r`, `\\v` and `\\f` separate as blanks do)",
    ),
    (
        "nft-backslash-before-comment.bin",
        "a word ending in `\\\\` before a comment (`foo\\\\#x`, found by the nft target) was kept verbatim and printed last on its line, where a backslash continues the line, so the print read back otherwise (now: a word ending in `\\\\` is refused)",
    ),
    (
        "nft-jump-to-empty-name.bin",
        "`jump \"\"` (found by the nft target) took the empty string as the chain, printed it as nothing, so the next word became the chain when read back (now: a jump's chain is a name the printer writes back, and must exist in the table, as nft requires)",
    ),
    (
        "nft-comment-brace.bin",
        "`comment{\"prefix\": {…}}` (found by the nft target) took the `{` as the comment, printed it quoted, and left the rest of the rule's braces unbalanced in the block form, so the print did not read back (now: a comment is a string or a word; `comment {` is refused, as nft refuses it)",
    ),
];

#[test]
fn fuzz_regressions_hold() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    for (file, cause) in CASES {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        if let Ok(p) = parse(file, &bytes) {
            common::round_trip(file, &p.ruleset).unwrap_or_else(|e| panic!("{e}\n({cause})"));
        }
    }
    // Every file is listed, so none is kept without its cause.
    let n = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(
        n,
        CASES.len(),
        "files in tests/fuzz_regressions without an entry in CASES"
    );
}
