//! The save/restore front end: `iptables-save` output and iptables-restore input, the way mesh
//! generators write it (`*nat` or `* nat` blocks ended by `COMMIT`, `:CHAIN POLICY [p:b]`
//! declarations, `[p:b]` rule counters, then the iptables commands `-N`, `-P`, `-A`, `-I`).

use super::iptables::{self, looks_like_table_option};
use super::lex::Token;
use super::loader::{FrontEnd, Line, Loader};
use crate::ast::*;
use crate::error::ParseError;

/// Reads iptables-restore lines.
pub(super) struct Restore;

impl FrontEnd for Restore {
    fn line<'t>(&mut self, loader: &mut Loader<'t>, line: &Line<'t>) -> Result<(), ParseError> {
        let trimmed = line.text.trim_start();
        let lead = line.indent();
        if let Some(rest) = trimmed.strip_prefix('*') {
            let name = rest.trim();
            let start = lead + 1 + (rest.len() - rest.trim_start().len());
            let name = Token {
                text: name.into(),
                start,
                end: start + name.len(),
            };
            return loader.begin_table(line, &name);
        }
        if trimmed.trim_end() == "COMMIT" {
            return loader.commit(line);
        }
        let Some((family, kind)) = loader.open_table() else {
            let what = if trimmed.starts_with(':') {
                "chain"
            } else {
                "rule"
            };
            return Err(line
                .error_line(format!("{what} before any table"))
                .with_help("start the table first with a line such as `*nat`"));
        };
        let mut buf = loader.take_tokens();
        let done = if trimmed.starts_with(':') {
            chain_decl(loader, line, lead + 1, (family, kind), &mut buf)
        } else {
            rule_line(loader, line, family, kind, &mut buf)
        };
        loader.put_tokens(buf);
        done
    }
}

/// A command line of the open table (`-A`, `-I`, `-N`, `-P`, `[p:b]` counters before), its
/// arguments split into `buf`.
fn rule_line<'t>(
    loader: &mut Loader<'t>,
    line: &Line<'t>,
    family: Family,
    kind: TableKind,
    buf: &mut Vec<Token<'t>>,
) -> Result<(), ParseError> {
    iptables::tokens_into(line, 0, buf)?;
    let mut toks = buf.as_slice();
    let mut counters = None;
    if let Some(first) = toks.first() {
        if first.text.starts_with('[') {
            counters = Some(iptables::counters(line, first)?);
            toks = toks.get(1..).unwrap_or(&[]);
        }
    }
    if let Some(t) = toks.iter().find(|t| looks_like_table_option(&t.text)) {
        return Err(line
            .error_at(t, "`-t` cannot be used in iptables-restore input")
            .with_help("the table is set by the `*table` line"));
    }
    iptables::command(loader, line, family, kind, toks, counters)
}

const DECLARATION: &str = "expected `:NAME POLICY [PACKETS:BYTES]`";

/// `:NAME POLICY [PACKETS:BYTES]`, its name from byte `at` on.
fn chain_decl<'t>(
    loader: &mut Loader<'t>,
    line: &Line<'t>,
    at: usize,
    (family, kind): (Family, TableKind),
    toks: &mut Vec<Token<'t>>,
) -> Result<(), ParseError> {
    iptables::tokens_into(line, at, toks)?;
    let Some(name) = toks.first() else {
        return Err(line
            .error(at - 1, line.text.len(), "chain declaration without a name")
            .with_help(DECLARATION));
    };
    iptables::check_chain_name(line, name)?;
    let policy_tok = toks.get(1).ok_or_else(|| {
        line.error_at(name, format!("chain `{}` has no policy", name.text))
            .with_help(format!("{DECLARATION}, POLICY `-` for a user chain"))
    })?;
    let counters = match toks.get(2) {
        Some(c) => iptables::counters(line, c)?,
        None => Counters::default(),
    };
    if let Some(extra) = toks.get(3) {
        return Err(line.error_at(
            extra,
            format!("unexpected `{}` after the chain's counters", extra.text),
        ));
    }
    let builtin = kind.builtin_chains().iter().any(|h| h.name() == name.text);
    let policy = match policy_tok.text.as_str() {
        "ACCEPT" => Some(Policy::Accept),
        "DROP" => Some(Policy::Drop),
        "-" if !builtin => None,
        other => {
            return Err(line
                .error_at(
                    policy_tok,
                    format!("bad policy `{other}` for chain `{}`", name.text),
                )
                .with_help(if builtin {
                    "a built-in chain's policy is ACCEPT or DROP"
                } else {
                    "a user chain's policy is `-`"
                }));
        }
    };
    loader.declare_chain(family, kind, &name.text, policy, counters);
    Ok(())
}
