//! The command-form front end: one `iptables …` or `ip6tables …` command per line, as Istio up
//! to 1.23 printed them (`iptables -t nat -A OUTPUT …`). The program name gives the family, `-t`
//! the table; `-w` is ignored.

use super::iptables::{self, looks_like_table_option};
use super::lex::Token;
use super::loader::{table_kind, FrontEnd, Line, Loader};
use crate::ast::*;
use crate::error::ParseError;

/// Reads command lines.
pub(super) struct Commands;

impl FrontEnd for Commands {
    fn line<'t>(&mut self, loader: &mut Loader<'t>, line: &Line<'t>) -> Result<(), ParseError> {
        let toks = iptables::tokens(line, 0)?;
        let Some(prog) = toks.first() else {
            return Ok(());
        };
        let base = prog.text.rsplit('/').next().unwrap_or(&prog.text);
        let family = if base.starts_with("ip6tables") {
            Family::Ipv6
        } else {
            Family::Ipv4
        };
        // Pull out the table and the wait options; the rest is the command.
        let mut table = TableKind::Filter;
        let mut rest: Vec<Token> = Vec::new();
        let mut i = 1;
        while let Some(t) = toks.get(i) {
            match t.text.as_str() {
                "-t" | "--table" => {
                    let v = toks
                        .get(i + 1)
                        .ok_or_else(|| line.error_at(t, "option `-t` needs a value"))?;
                    table = table_kind(line, v)?;
                    i += 2;
                }
                "-w" | "--wait" | "-W" | "--wait-interval" => {
                    i += 1;
                    if toks
                        .get(i)
                        .is_some_and(|v| v.text.bytes().all(|b| b.is_ascii_digit()))
                    {
                        i += 1;
                    }
                }
                _ => {
                    rest.push(t.clone());
                    i += 1;
                }
            }
        }
        // iptables-restore refuses any argument that looks like `-t`; so do we here, so that
        // every ruleset we accept can be written in restore form.
        if let Some(t) = rest.iter().find(|t| looks_like_table_option(&t.text)) {
            return Err(line
                .error_at(t, format!("argument `{}` reads as a `-t` option", t.text))
                .with_help("give `-t TABLE` once, as its own argument"));
        }
        iptables::command(loader, line, family, table, &rest, None)
    }
}
