//! The iptables syntax both iptables front ends share: a line split into arguments, and one
//! command (`-N`, `-P`, `-A`, `-I`) with its arguments, carried out on the [`Loader`]. The save
//! file's `-A CHAIN …` and the command form's `iptables -t nat -A CHAIN …` end up here alike.

use super::lex::{tokenize_into, Token};
use super::loader::{Line, Loader, Position};
use super::rule::{parse_rule_into, Expanded, RuleContext};
use crate::ast::*;
use crate::error::ParseError;

/// The arguments of `line` from byte `from` on, their spans counted from the line's start.
pub(super) fn tokens<'t>(line: &Line<'t>, from: usize) -> Result<Vec<Token<'t>>, ParseError> {
    let mut toks = Vec::new();
    tokens_into(line, from, &mut toks)?;
    Ok(toks)
}

/// [`tokens`] into `toks` (cleared first): the loader lends one vector to every line.
pub(super) fn tokens_into<'t>(
    line: &Line<'t>,
    from: usize,
    toks: &mut Vec<Token<'t>>,
) -> Result<(), ParseError> {
    let rest = line.text.get(from..).unwrap_or_default();
    tokenize_into(rest, toks).map_err(|e| line.error(from + e.at, from + e.at + 1, e.message))?;
    if from > 0 {
        for t in toks.iter_mut() {
            t.start += from;
            t.end += from;
        }
    }
    Ok(())
}

/// `[PACKETS:BYTES]`.
pub(super) fn counters(line: &Line<'_>, tok: &Token) -> Result<Counters, ParseError> {
    let parsed = (|| {
        let inner = tok.text.strip_prefix('[')?.strip_suffix(']')?;
        let (p, b) = inner.split_once(':')?;
        Some(Counters {
            packets: p.parse().ok()?,
            bytes: b.parse().ok()?,
        })
    })();
    parsed.ok_or_else(|| {
        line.error_at(tok, format!("invalid counters `{}`", tok.text))
            .with_help("expected [PACKETS:BYTES]")
    })
}

/// Checks a user chain name as iptables does.
pub(super) fn check_chain_name(line: &Line<'_>, name: &Token) -> Result<(), ParseError> {
    let n = name.text.as_str();
    let problem = if n.len() > 28 {
        format!("chain name `{n}` longer than 28 characters")
    } else if n.starts_with('-')
        || n.starts_with('!')
        || n.is_empty()
        || (!n
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\'))
            && n.chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\'' || c == '\\'))
    {
        format!("invalid chain name `{n}`")
    } else if matches!(n, "ACCEPT" | "DROP" | "RETURN" | "QUEUE") {
        format!("chain name `{n}` is reserved for a target")
    } else {
        return Ok(());
    };
    Err(line.error_at(name, problem))
}

/// What iptables-restore takes for a `-t` option: a single-dash argument containing `t`, or a
/// prefix of `--table` of at least `--t`.
pub(super) fn looks_like_table_option(s: &str) -> bool {
    match s.as_bytes() {
        [b'-', b'-', rest @ ..] => rest.first() == Some(&b't') && "--table".starts_with(s),
        [b'-', rest @ ..] => rest.contains(&b't'),
        _ => false,
    }
}

const COMMANDS_HELP: &str = "expected -A, -I, -N or -P";

/// One `-A`/`-I`/`-N`/`-P` command with its arguments, on table `kind` of `family`; `counters`
/// are the `[PACKETS:BYTES]` a save file puts before a rule.
pub(super) fn command(
    loader: &mut Loader<'_>,
    line: &Line<'_>,
    family: Family,
    kind: TableKind,
    toks: &[Token],
    counters: Option<Counters>,
) -> Result<(), ParseError> {
    let Some(cmd) = toks.first() else {
        return Err(line
            .error(0, line.text.len(), "line has no command")
            .with_help(COMMANDS_HELP));
    };
    let chain = || {
        toks.get(1)
            .ok_or_else(|| line.error_at(cmd, format!("`{}` needs a chain name", cmd.text)))
    };
    match cmd.text.as_str() {
        "-N" | "--new-chain" => {
            let c = chain()?;
            check_chain_name(line, c)?;
            if let Some(x) = toks.get(2) {
                return Err(
                    line.error_at(x, format!("unexpected `{}` after `-N {}`", x.text, c.text))
                );
            }
            loader.new_chain(line, family, kind, c)
        }
        "-P" | "--policy" => {
            let c = chain()?;
            let p = toks
                .get(2)
                .ok_or_else(|| line.error_at(c, "`-P` needs a policy"))?;
            let policy = match p.text.as_str() {
                "ACCEPT" => Policy::Accept,
                "DROP" => Policy::Drop,
                other => {
                    return Err(line
                        .error_at(p, format!("bad policy `{other}`"))
                        .with_help("a built-in chain's policy is ACCEPT or DROP"))
                }
            };
            loader.set_policy(line, family, kind, c, policy)
        }
        "-A" | "--append" | "-I" | "--insert" => {
            let rule = AddRule {
                family,
                kind,
                cmd,
                chain: chain()?,
                counters,
            };
            rule.add(loader, line, toks.get(2..).unwrap_or(&[]))
        }
        "-D" | "--delete" | "-R" | "--replace" | "-F" | "--flush" | "-X" | "--delete-chain"
        | "-Z" | "--zero" | "-E" | "--rename-chain" => Err(line
            .error_at(cmd, format!("command `{}` is not supported", cmd.text))
            .with_help("give the ruleset as the rules it ends up with: -N, -A, -I and -P")),
        "-t" | "--table" => {
            Err(line.error_at(cmd, "`-t` cannot be used in iptables-restore input"))
        }
        other => Err(line
            .error_at(cmd, format!("unknown command `{other}`"))
            .with_help(COMMANDS_HELP)),
    }
}

/// An `-A` or `-I` command: where its rule goes.
pub(super) struct AddRule<'a> {
    pub family: Family,
    pub kind: TableKind,
    /// `-A` or `-I`: where the rules without a span of their own point.
    pub cmd: &'a Token<'a>,
    pub chain: &'a Token<'a>,
    pub counters: Option<Counters>,
}

impl AddRule<'_> {
    /// Where the rule was written: its line, the target's name (or the command) and counters.
    pub(super) fn locate(&self, r: &mut Rule, line: &Line<'_>) {
        r.origin.line = u32::try_from(line.number).unwrap_or(u32::MAX);
        if r.origin.end == 0 {
            r.origin.start = u32::try_from(self.cmd.start).unwrap_or(0);
            r.origin.end = u32::try_from(self.cmd.end).unwrap_or(0);
        }
        if let Some(cn) = self.counters {
            r.counters = cn;
        }
    }

    /// Reads the rule (`args`: after the chain name) and puts it into its chain.
    fn add(
        &self,
        loader: &mut Loader<'_>,
        line: &Line<'_>,
        args: &[Token],
    ) -> Result<(), ParseError> {
        let (family, kind, chain) = (self.family, self.kind, self.chain);
        let mut rest = args;
        let mut position = Position::Append;
        if matches!(self.cmd.text.as_str(), "-I" | "--insert") {
            position = Position::Insert {
                index: 1,
                at: chain,
            };
            if let Some(n) = rest.first() {
                if n.text.bytes().all(|b| b.is_ascii_digit()) && !n.text.is_empty() {
                    let index = n.text.parse().unwrap_or(usize::MAX);
                    if index == 0 {
                        return Err(line.error_at(n, "rule numbers start at 1"));
                    }
                    position = Position::Insert { index, at: n };
                    rest = rest.get(1..).unwrap_or(&[]);
                }
            }
        }
        loader.check_chain(line, family, kind, chain)?;
        let read = |loader: &Loader<'_>, rule: &mut Rule| {
            let exists = |n: &str| loader.has_user_chain(family, kind, n);
            let elsewhere = |n: &str| loader.user_chain_table(family, kind, n);
            let ctx = RuleContext {
                family,
                table: kind,
                chain_exists: &exists,
                chain_elsewhere: &elsewhere,
                hook: Hook::from_name(&chain.text).filter(|h| kind.builtin_chains().contains(h)),
            };
            let mut more = parse_rule_into(&ctx, rest, rule).map_err(|e| {
                let mut pe = line.error(e.start, e.end, e.message);
                pe.help = e.help;
                pe
            })?;
            for r in std::iter::once(rule).chain(more.iter_mut()) {
                self.locate(r, line);
            }
            Ok(more)
        };
        if let Position::Append = position {
            return loader.append_with(family, kind, &chain.text, read);
        }
        let mut rule = Rule::default();
        let more = read(loader, &mut rule)?;
        let rules = if more.is_empty() {
            Expanded::One(rule)
        } else {
            Expanded::Many(std::iter::once(rule).chain(more).collect())
        };
        loader.insert_rules(line, family, kind, chain, position, rules)
    }
}
