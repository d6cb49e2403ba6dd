//! The shape of the house, checked (docs/architecture.md): no source file over 1,000 lines, Z3
//! only in `verify`, and the modules of `verify` depend on each other in one direction, without
//! a cycle: `check` and `diff` on the proofs and the encoding but never on each other (`mutate`
//! on `diff` and the proofs, never on `check`), the
//! renderers on the results but never on the command that built them, the encoding on nothing
//! above it.

#![cfg(test)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file below `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The code of a file without its comments (line comments and doc comments).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules of `verify` a piece of code names through `crate::`, including the
/// names inside `use crate::{a, b::c}`.
fn crate_refs(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            out.insert(ident(rest));
            continue;
        };
        // The group's items, split at its top-level commas; each names a module first.
        let mut depth = 0;
        let mut item = String::new();
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.insert(ident(&item));
                    item.clear();
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        out.insert(ident(&item));
    }
    out.remove("");
    out
}

/// The module of `verify/src` a file belongs to: its first path component, without `.rs`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Which of verify's modules each module names.
fn verify_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join("verify/src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in rust_files(&src) {
        let m = module_of(&src, &f);
        let refs = crate_refs(&code(&std::fs::read_to_string(&f).unwrap()));
        let entry = graph.entry(m.clone()).or_default();
        entry.extend(refs.into_iter().filter(|r| *r != m));
    }
    graph
}

/// A cycle through `graph`, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut c = path[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for next in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_source_file_is_over_a_thousand_lines() {
    let mut long = Vec::new();
    let mut n = 0;
    for dir in ["model/src", "verify/src"] {
        for f in rust_files(&root().join(dir)) {
            n += 1;
            let lines = std::fs::read_to_string(&f).unwrap().lines().count();
            if lines > 1000 {
                long.push(format!("{} ({lines} lines)", f.display()));
            }
        }
    }
    assert!(n > 50, "only {n} source files found");
    assert!(long.is_empty(), "over 1,000 lines: {long:?}");
}

#[test]
fn z3_stays_out_of_the_model() {
    let manifest = std::fs::read_to_string(root().join("model/Cargo.toml")).unwrap();
    assert!(!manifest.contains("z3"), "model/Cargo.toml names z3");
    for f in rust_files(&root().join("model/src")) {
        let text = code(&std::fs::read_to_string(&f).unwrap());
        assert!(!text.contains("z3::"), "{} uses z3", f.display());
    }
}

#[test]
fn verify_modules_depend_one_way() {
    let graph = verify_graph();
    // The graph is read at all: these edges exist today.
    for (from, to) in [
        ("check", "prove"),
        ("diff", "prove"),
        ("prove", "smt"),
        ("report", "results"),
        ("mutate", "diff"),
        ("mutate", "prove"),
    ] {
        assert!(
            graph.get(from).is_some_and(|s| s.contains(to)),
            "expected `{from}` to use `{to}`; the graph read: {graph:#?}"
        );
    }
    let forbidden: &[(&str, &[&str])] = &[
        ("check", &["diff", "mutate", "report", "cli"]),
        ("diff", &["check", "mutate", "report", "cli"]),
        // `mutate` runs `diff` and `prove` on each mutant; it is no renderer and no edge.
        ("mutate", &["check", "report", "cli"]),
        ("prove", &["check", "diff", "mutate", "report", "cli"]),
        (
            "results",
            &["check", "diff", "mutate", "prove", "report", "cli"],
        ),
        ("report", &["check", "diff", "mutate", "prove", "cli"]),
        (
            "invariants",
            &[
                "check", "diff", "mutate", "prove", "report", "results", "cli",
            ],
        ),
        (
            "smt",
            &[
                "check",
                "diff",
                "mutate",
                "prove",
                "report",
                "results",
                "invariants",
                "cli",
            ],
        ),
        (
            "kernel",
            &["check", "diff", "mutate", "prove", "report", "cli"],
        ),
    ];
    let mut bad = Vec::new();
    for (from, tos) in forbidden {
        for to in *tos {
            if graph.get(*from).is_some_and(|s| s.contains(*to)) {
                bad.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(bad.is_empty(), "forbidden dependencies: {bad:?}");
    assert_eq!(cycle(&graph), None, "a cycle between verify's modules");
}

#[test]
fn the_graph_reader_sees_groups_and_cycles() {
    let refs =
        crate_refs("use crate::{check::{self, A}, smt, report::text::diff};\nx(crate::diff::y)");
    assert_eq!(
        refs.into_iter().collect::<Vec<_>>(),
        ["check", "diff", "report", "smt"]
    );
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert_eq!(cycle(&g), None);
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        cycle(&g),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

/// The README's section `heading` (up to the next heading of any level).
fn readme_section(heading: &str) -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README.md has no `{heading}`"));
    let body = &readme[start + heading.len() + 2..];
    let end = body.find("\n#").unwrap_or(body.len());
    body[..end].to_string()
}

/// The forms `section` does not lead a bullet with (`` - `restore`: ``).
fn forms_missing(section: &str) -> Vec<String> {
    sidecar_model::Format::ALL
        .iter()
        .map(|f| {
            serde_json::to_string(f)
                .unwrap()
                .trim_matches('"')
                .to_string()
        })
        .filter(|name| !section.contains(&format!("\n- `{name}`: ")))
        .collect()
}

/// Every input form the parser reads has its bullet in the README's "Input forms", led by its
/// name (the `formats!` list of model/src/parse/mod.rs is the one list of forms).
#[test]
fn the_readme_names_every_input_form() {
    let section = readme_section("### Input forms");
    assert_eq!(forms_missing(&section), Vec::<String>::new());
    // The check sees a form left out.
    let without = section.replace("\n- `commands`: ", "\n- ");
    assert_eq!(forms_missing(&without), ["commands"]);
}

/// The README's `--profile` paragraph names every built-in profile, in the table's order.
#[test]
fn the_readme_names_every_builtin_profile() {
    let names: Vec<&str> = sidecar_model::profile::BUILTIN
        .iter()
        .map(|b| b.name)
        .collect();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let want = format!("`--profile {}|FILE`", names.join("|"));
    assert!(readme.contains(&want), "README.md does not say {want}");
}

/// The invariants that no ruleset of `corpus/broken/` is expected to violate.
fn never_broken(violated: &BTreeSet<String>) -> Vec<&'static str> {
    sidecar_verify::invariants::ALL
        .iter()
        .map(|id| id.name())
        .filter(|n| !violated.contains(*n))
        .collect()
}

/// Every invariant of the catalog has a broken ruleset in `corpus/broken/` that must violate it
/// (verify/tests/check.rs proves each against the TOML beside it), so none can be added that
/// nothing shows failing.
#[test]
fn every_invariant_has_a_ruleset_that_breaks_it() {
    let mut violated = BTreeSet::new();
    let dir = root().join("corpus/broken");
    for f in std::fs::read_dir(&dir).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let v: toml::Value = toml::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            for id in v
                .get("violated")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
            {
                violated.insert(id.as_str().unwrap().to_string());
            }
        }
    }
    assert_eq!(never_broken(&violated), Vec::<&str>::new());
    // The check sees an invariant no ruleset breaks.
    violated.remove("metrics-bypass");
    assert_eq!(never_broken(&violated), ["metrics-bypass"]);
}
