//! nft input: every nft golden of Istio's corpus parses, and its canonical print is what the
//! kernel holds: the script is loaded with `nft -f` into a scratch network namespace and `nft
//! list ruleset` must print exactly what `sidecar-verify parse` prints. The print also reads back
//! as the same ruleset, kernel or not.
//!
//! User and group names (`skgid java`) are replaced by ids in the input before both sides read
//! it, as the node that runs the script resolves them; a script naming a set it does not create
//! (`ip daddr @istio-inpod-probes-v4`: the CNI agent creates it) is node-dependent and only
//! parsed. Runs the kernel side whenever the machine can create namespaces and has `nft`; there
//! `nft -j list ruleset` of each loaded golden must read as the same ruleset and print as `nft
//! list ruleset` does.

#![cfg(test)]

use sidecar_model::{parse, print_ruleset, Format};
use sidecar_verify::corpus::{istio_dir, istio_nft_files};
use sidecar_verify::netns::{unavailable, Netns};

/// `text` with every non-numeric `skuid`/`skgid` value replaced by an id (60000 and up, one per
/// name), as a node whose passwd/group databases hold those names would load it.
fn resolve_names(text: &str) -> String {
    let mut names: Vec<String> = Vec::new();
    let mut out = String::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        let mut fixed: Vec<String> = Vec::new();
        for (i, w) in words.iter().enumerate() {
            let after_key = (1..=2).any(|back| {
                i.checked_sub(back)
                    .and_then(|j| words.get(j))
                    .is_some_and(|k| *k == "skuid" || *k == "skgid")
                    && (back == 1 || words.get(i - 1) == Some(&"!="))
            });
            if after_key && *w != "!=" && !w.chars().all(|c| c.is_ascii_digit()) {
                let n = match names.iter().position(|x| x == w) {
                    Some(n) => n,
                    None => {
                        names.push(w.to_string());
                        names.len() - 1
                    }
                };
                fixed.push((60000 + n).to_string());
            } else {
                fixed.push(w.to_string());
            }
        }
        out.push_str(&fixed.join(" "));
        out.push('\n');
    }
    out
}

#[test]
fn names_are_resolved_in_place() {
    assert_eq!(
        resolve_names("add rule inet t c skgid != java skgid != 202 skuid ftp counter return"),
        "add rule inet t c skgid != 60000 skgid != 202 skuid 60001 counter return\n"
    );
}

#[test]
fn every_istio_nft_golden_parses_and_prints_as_nft_lists_it() {
    let Some(dir) = istio_dir() else {
        println!("skipping: Istio's corpus (../shared/corpus/istio) is not here");
        return;
    };
    let files = istio_nft_files(&dir);
    assert_eq!(files.len(), 42, "INDEX.md lists 42 nft goldens");
    let kernel = match unavailable() {
        Some(why) => {
            println!("the kernel side skips: {why}");
            false
        }
        None => true,
    };
    let (mut same, mut node_dependent, mut json_same) = (0, 0, 0);
    let mut failures = Vec::new();
    for file in &files {
        let text = resolve_names(&std::fs::read_to_string(dir.join(file)).unwrap());
        let parsed = match parse(file, text.as_bytes()) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{file}: does not parse: {e}"));
                continue;
            }
        };
        assert_eq!(parsed.format, Format::Nft, "{file}");
        let ours = print_ruleset(&parsed.ruleset);
        let again =
            parse("printed", ours.as_bytes()).unwrap_or_else(|e| panic!("{file}: {e}\n{ours}"));
        if again.ruleset != parsed.ruleset {
            failures.push(format!(
                "{file}: the print reads back as another ruleset:\n{ours}"
            ));
        }
        if !kernel {
            continue;
        }
        let ns = Netns::create("nftprint").expect("create namespace");
        let out = ns
            .exec("nft", &["-f", "-"], text.as_bytes())
            .expect("run nft");
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if text.contains(" @") && err.contains("No such file or directory") {
                node_dependent += 1;
                continue;
            }
            failures.push(format!("{file}: nft refuses it: {err}"));
            continue;
        }
        let listed = ns
            .exec("nft", &["list", "ruleset"], b"")
            .expect("run nft list");
        let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
        if listed == ours {
            same += 1;
        } else {
            failures.push(format!(
                "{file}: differs\n--- nft list ruleset\n{listed}--- ours\n{ours}"
            ));
        }
        // The same tables as `nft -j list ruleset` prints them: the same ruleset, printed
        // byte-identical to nft's text listing.
        let json = ns
            .exec("nft", &["-j", "list", "ruleset"], b"")
            .expect("run nft -j list");
        match parse("json", &json.stdout) {
            Err(e) => failures.push(format!("{file}: nft -j list ruleset does not parse: {e}")),
            Ok(j) => {
                assert_eq!(j.format, Format::NftJson, "{file}");
                let printed = print_ruleset(&j.ruleset);
                if j.ruleset != parsed.ruleset {
                    failures.push(format!("{file}: the JSON listing reads as another ruleset"));
                } else if printed != listed {
                    failures.push(format!(
                        "{file}: the JSON listing prints otherwise\n--- nft list ruleset\n{listed}--- ours from JSON\n{printed}"
                    ));
                } else {
                    json_same += 1;
                }
            }
        }
    }
    println!(
        "nft goldens: {} parsed, {same} printed byte-identical to `nft list ruleset`, {node_dependent} name a set the node creates; {json_same} read from `nft -j list ruleset` as the same ruleset, printed byte-identical",
        files.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    if kernel {
        assert_eq!(same + node_dependent, files.len());
        assert_eq!(json_same, same);
    }
}
