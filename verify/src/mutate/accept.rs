//! The acceptance file beside a ruleset (`RULES.mutate.toml`): survivors a reviewer has
//! accepted, each with a reason. An entry names its mutant by what does not move when other
//! rules are added or reordered: the chain, the operator, the rule's text and (optionally) the
//! edit in words, as the report prints them:
//!
//! ```toml
//! [[accept]]
//! chain = "ISTIO_OUTPUT"
//! operator = "delete-rule"
//! rule = "-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN"
//! # edit = "delete"            # only needed when the operator makes several mutants of the rule
//! reason = "…"
//! ```
//!
//! An entry that matches no mutant at all is stale (the rule changed) and refused, as is a file
//! that does not parse; both with the file, line and column.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sidecar_model::mutate::{Mutation, Operator};

/// One accepted survivor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acceptance {
    /// The chain of the rule.
    pub chain: String,
    /// The operator (`delete-rule`, `drop-negation`, …).
    pub operator: Operator,
    /// The rule's text before the edit, as `iptables-save` prints it.
    pub rule: String,
    /// The edit in words (the report's `edit`), when the operator makes several mutants of
    /// the rule; without it the entry accepts all of them.
    #[serde(default)]
    pub edit: Option<String>,
    /// Why this survivor is acceptable.
    pub reason: String,
    /// Where the entry starts in the file (line, column; 1-based).
    #[serde(skip)]
    pub at: (usize, usize),
}

impl Acceptance {
    /// Whether this entry names `m`.
    pub fn matches(&self, m: &Mutation) -> bool {
        self.chain == m.chain
            && self.operator == m.operator
            && self.rule == m.before
            && self.edit.as_ref().is_none_or(|c| *c == m.edit)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    accept: Vec<toml::Spanned<Acceptance>>,
}

/// A problem with the acceptance file, located.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", path.display())]
pub struct AcceptError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// The acceptance file of a ruleset at `rules`: `RULES.mutate.toml` beside it.
pub fn beside(rules: &Path) -> PathBuf {
    let mut name = rules.as_os_str().to_owned();
    name.push(".mutate.toml");
    PathBuf::from(name)
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Reads the acceptances of `text` (read from `path`).
pub fn parse(path: &Path, text: &str) -> Result<Vec<Acceptance>, AcceptError> {
    let err = |offset: usize, message: String| {
        let (line, column) = line_col(text, offset);
        AcceptError {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    };
    let file: File = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        err(at, e.message().to_string())
    })?;
    let mut out = Vec::new();
    for s in file.accept {
        let start = s.span().start;
        let mut a = s.into_inner();
        if a.reason.trim().is_empty() {
            return Err(err(start, "an accepted survivor needs a `reason`".into()));
        }
        a.at = line_col(text, start);
        out.push(a);
    }
    Ok(out)
}

/// Refuses an acceptance that matches none of `mutants` (stale: the rule or the operator
/// changed).
pub fn refuse_stale<'a>(
    path: &Path,
    accepts: &[Acceptance],
    mutants: impl Iterator<Item = &'a Mutation> + Clone,
) -> Result<(), AcceptError> {
    for a in accepts {
        if !mutants.clone().any(|m| a.matches(m)) {
            return Err(AcceptError {
                path: path.to_path_buf(),
                line: a.at.0,
                column: a.at.1,
                message: format!(
                    "stale acceptance: no mutant of the ruleset is `{}` of `{}`{} in chain `{}`",
                    a.operator.name(),
                    a.rule,
                    a.edit.as_ref().map_or(String::new(), |c| format!(" ({c})")),
                    a.chain
                ),
            });
        }
    }
    Ok(())
}
