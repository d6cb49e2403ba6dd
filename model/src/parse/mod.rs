//! Reads a ruleset in any of the forms found in the real world, detecting which:
//!
//! * `iptables-save` / `ip6tables-save` output, and iptables-restore input as mesh generators write
//!   it (`* nat` with a space, `-N`, `-A`, `-I CHAIN [N]`, the bare `iptables-save` /
//!   `ip6tables-save` lines Istio's golden files interleave: a table that comes again after an
//!   `ip6tables-save` line starts the IPv6 block);
//! * one command per line (`iptables -t nat -A …`, `ip6tables …`).
//!
//! The result is what the kernel would hold after loading the input; iptables-restore's own
//! checks (undefined chains, insertion index, COMMIT, policies) are made at the same points.
//! nftables scripts are recognised and refused with a message saying so.

pub mod lex;
pub mod rule;

use std::collections::HashMap;

use crate::ast::*;
use crate::error::ParseError;
use crate::validate;
use lex::{tokenize, Token};
use rule::{parse_rule, RuleContext, RuleError};

/// The form an input was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// `iptables-save` output or iptables-restore input.
    Restore,
    /// One `iptables`/`ip6tables` command per line.
    Commands,
}

/// A parsed ruleset and the form it was written in.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The ruleset.
    pub ruleset: Ruleset,
    /// The detected form.
    pub format: Format,
}

/// Parses `input`, named `source_name` in errors.
///
/// # Example
/// ```
/// let text = "*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -p tcp --dport 80 -j REDIRECT --to-ports 15001\nCOMMIT\n";
/// let parsed = sidecar_model::parse("rules.txt", text.as_bytes()).unwrap();
/// assert_eq!(parsed.ruleset.rule_count(), 1);
/// ```
pub fn parse(source_name: &str, input: &[u8]) -> Result<Parsed, ParseError> {
    // The first offending byte wins: invalid UTF-8, a NUL byte, or the first byte past
    // [`MAX_LINE_BYTES`] of a line.
    const TEXT_HELP: &str = "a ruleset is text; is this a binary file?";
    let bad_utf8 = std::str::from_utf8(input).err().map(|e| e.valid_up_to());
    let nul = input.iter().position(|b| *b == 0);
    let overlong = first_overlong(input);
    let first_bad = [
        bad_utf8.map(|p| (p, "invalid UTF-8 in input".to_string(), TEXT_HELP)),
        nul.map(|p| (p, "NUL byte in input".to_string(), TEXT_HELP)),
        overlong.map(|p| {
            (
                p,
                format!("line longer than {MAX_LINE_BYTES} bytes"),
                "a ruleset line is a few hundred bytes; reading stops here",
            )
        }),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|(p, _, _)| *p);
    if let Some((pos, msg, help)) = first_bad {
        let (line, col_start, text) = locate(input, pos);
        return Err(
            ParseError::new(source_name, line, &text, col_start, col_start + 1, msg)
                .with_help(help),
        );
    }
    let text = std::str::from_utf8(input).unwrap_or_default();
    Parser::new(source_name).run(text)
}

/// The longest line the parser reads, in bytes (without its newline). Real rulesets have lines of
/// a few hundred bytes; the limit is far above that (a 10 MB line is still parsed and its errors
/// located) and bounds what a reader must hold: [`read_bounded`] stops reading at it, so a
/// gigabyte without a newline on stdin is refused after 16 MiB.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// The offset of the first byte past [`MAX_LINE_BYTES`] of a line, if a line is that long.
fn first_overlong(input: &[u8]) -> Option<usize> {
    let mut start = 0;
    loop {
        let rest = input.get(start..)?;
        match rest.iter().position(|b| *b == b'\n') {
            Some(len) if len > MAX_LINE_BYTES => return Some(start + MAX_LINE_BYTES),
            Some(len) => start += len + 1,
            None => return (rest.len() > MAX_LINE_BYTES).then_some(start + MAX_LINE_BYTES),
        }
    }
}

/// Reads `reader` to its end, or only until a line exceeds [`MAX_LINE_BYTES`] by a few bytes:
/// [`parse`] refuses what was read then with the line's position, and the rest of the input
/// (a gigabyte on stdin, say) is never held in memory.
///
/// # Example
/// ```
/// let mut input: &[u8] = b"*nat\nCOMMIT\n";
/// let bytes = sidecar_model::parse::read_bounded(&mut input).unwrap();
/// assert_eq!(bytes, b"*nat\nCOMMIT\n");
/// ```
pub fn read_bounded(reader: &mut impl std::io::Read) -> std::io::Result<Vec<u8>> {
    // Past the limit by one UTF-8 character, so that a character cut by the end of what was read
    // never starts before the limit (it would be reported as invalid UTF-8 instead).
    const STOP: usize = MAX_LINE_BYTES + 4;
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    // Bytes of the current (unfinished) line read so far.
    let mut line_len = 0usize;
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let got = chunk.get(..n).unwrap_or(&[]);
        out.extend_from_slice(got);
        match (
            got.iter().position(|b| *b == b'\n'),
            got.iter().rposition(|b| *b == b'\n'),
        ) {
            (Some(first), Some(last)) => {
                if line_len + first > MAX_LINE_BYTES {
                    return Ok(out);
                }
                line_len = n - last - 1;
            }
            _ => line_len += n,
        }
        if line_len >= STOP {
            return Ok(out);
        }
    }
}

/// Line number, byte offset and text of the line holding byte `pos`: the part before `pos` is
/// decoded (so columns count characters), the rest (at most 256 bytes of it) has each
/// non-ASCII or control byte replaced by `?`.
fn locate(input: &[u8], pos: usize) -> (usize, usize, String) {
    let before = input.get(..pos).unwrap_or(input);
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let line_end = input
        .get(pos..)
        .and_then(|r| r.iter().position(|b| *b == b'\n'))
        .map_or(input.len(), |i| pos + i)
        .min(pos.saturating_add(256));
    let head = String::from_utf8_lossy(input.get(line_start..pos).unwrap_or(&[])).into_owned();
    let tail: String = input
        .get(pos..line_end)
        .unwrap_or(&[])
        .iter()
        .map(|b| {
            if b.is_ascii() && !b.is_ascii_control() {
                char::from(*b)
            } else {
                '?'
            }
        })
        .collect();
    let col = head.len();
    (line, col, head + &tail)
}

struct TableB {
    kind: TableKind,
    chains: Vec<Chain>,
    /// Each chain's index in `chains`: a ruleset of 100,000 chains looks a name up per line.
    index: HashMap<String, usize>,
}

impl TableB {
    fn new(kind: TableKind) -> TableB {
        let mut t = TableB {
            kind,
            chains: Vec::new(),
            index: HashMap::new(),
        };
        for h in kind.builtin_chains() {
            t.push(Chain {
                name: h.name().to_string(),
                policy: Some(Policy::Accept),
                counters: Counters::default(),
                rules: Vec::new(),
            });
        }
        t
    }

    fn push(&mut self, chain: Chain) {
        self.index.insert(chain.name.clone(), self.chains.len());
        self.chains.push(chain);
    }

    fn chain_mut(&mut self, name: &str) -> Option<&mut Chain> {
        let i = *self.index.get(name)?;
        self.chains.get_mut(i)
    }

    fn has_chain(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    fn has_user_chain(&self, name: &str) -> bool {
        self.index
            .get(name)
            .and_then(|i| self.chains.get(*i))
            .is_some_and(|c| c.policy.is_none())
    }
}

#[derive(Default)]
struct FamilyB {
    tables: Vec<TableB>,
}

impl FamilyB {
    fn table_mut(&mut self, kind: TableKind) -> &mut TableB {
        let idx = match self.tables.iter().position(|t| t.kind == kind) {
            Some(i) => i,
            None => {
                self.tables.push(TableB::new(kind));
                self.tables.len() - 1
            }
        };
        #[expect(
            clippy::indexing_slicing,
            reason = "idx is a valid index: found or just pushed"
        )]
        &mut self.tables[idx]
    }

    fn finish(self) -> Vec<Table> {
        let mut out = Vec::new();
        for kind in TableKind::SAVE_ORDER {
            if let Some(t) = self.tables.iter().find(|t| t.kind == kind) {
                let mut builtins: Vec<Chain> = Vec::new();
                for h in kind.builtin_chains() {
                    if let Some(c) = t
                        .chains
                        .iter()
                        .find(|c| c.name == h.name() && c.policy.is_some())
                    {
                        builtins.push(c.clone());
                    }
                }
                let mut users: Vec<Chain> = t
                    .chains
                    .iter()
                    .filter(|c| c.policy.is_none())
                    .cloned()
                    .collect();
                users.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
                builtins.extend(users);
                out.push(Table {
                    kind,
                    chains: builtins,
                });
            }
        }
        out
    }
}

/// The block being read in restore form.
struct Block {
    kind: TableKind,
    header_line: usize,
    header_text: String,
}

struct Parser<'n> {
    name: &'n str,
    v4: FamilyB,
    v6: FamilyB,
    family: Family,
    seen_v6_marker: bool,
    format: Option<(Format, usize)>,
    block: Option<Block>,
    /// Tables begun in each family so far (restore form), for the switch to the IPv6 block.
    begun: Vec<(Family, TableKind)>,
}

impl<'n> Parser<'n> {
    fn new(name: &'n str) -> Parser<'n> {
        Parser {
            name,
            v4: FamilyB::default(),
            v6: FamilyB::default(),
            family: Family::Ipv4,
            seen_v6_marker: false,
            format: None,
            block: None,
            begun: Vec::new(),
        }
    }

    fn err(
        &self,
        line: usize,
        text: &str,
        start: usize,
        end: usize,
        msg: impl Into<String>,
    ) -> ParseError {
        ParseError::new(self.name, line, text, start, end, msg)
    }

    fn rule_err(&self, line: usize, text: &str, e: RuleError) -> ParseError {
        let mut pe = self.err(line, text, e.start, e.end, e.message);
        pe.help = e.help;
        pe
    }

    fn fam(&mut self, f: Family) -> &mut FamilyB {
        match f {
            Family::Ipv4 => &mut self.v4,
            Family::Ipv6 => &mut self.v6,
        }
    }

    fn run(mut self, text: &str) -> Result<Parsed, ParseError> {
        for (idx, raw) in text.split('\n').enumerate() {
            let line_no = idx + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            if let Some(c) = trimmed.strip_prefix('#') {
                let c = c.trim_start();
                if self.block.is_none() {
                    if c.starts_with("Generated by ip6tables-save") {
                        self.family = Family::Ipv6;
                        self.seen_v6_marker = true;
                    } else if c.starts_with("Generated by iptables-save") && !self.seen_v6_marker {
                        self.family = Family::Ipv4;
                    }
                }
                continue;
            }
            if trimmed == "iptables-save"
                || trimmed == "iptables-legacy-save"
                || trimmed == "iptables-nft-save"
            {
                continue;
            }
            if trimmed == "ip6tables-save"
                || trimmed == "ip6tables-legacy-save"
                || trimmed == "ip6tables-nft-save"
            {
                self.seen_v6_marker = true;
                continue;
            }
            if is_nft(trimmed) {
                let start = line.len() - line.trim_start().len();
                return Err(self
                    .err(line_no, line, start, line.len(), "this is an nftables script; nft input is not supported yet")
                    .with_help("give the iptables form of the rules (iptables-save output, iptables-restore input, or iptables commands)"));
            }
            let this = if is_command_line(trimmed) {
                Format::Commands
            } else {
                Format::Restore
            };
            match self.format {
                None => self.format = Some((this, line_no)),
                Some((f, first)) if f != this => {
                    let start = line.len() - line.trim_start().len();
                    let what = match f {
                        Format::Restore => "iptables-restore form",
                        Format::Commands => "one iptables command per line",
                    };
                    return Err(self.err(
                        line_no,
                        line,
                        start,
                        line.len(),
                        format!(
                            "line does not fit the input's form ({what}, detected at line {first})"
                        ),
                    ));
                }
                _ => {}
            }
            match this {
                Format::Restore => self.restore_line(line_no, line)?,
                Format::Commands => self.command_line(line_no, line)?,
            }
        }
        if let Some(b) = &self.block {
            let start = b.header_text.len() - b.header_text.trim_start().len();
            return Err(self
                .err(
                    b.header_line,
                    &b.header_text,
                    start,
                    b.header_text.len(),
                    format!("table `{}` is never committed (missing COMMIT)", b.kind),
                )
                .with_help("end each table with a line `COMMIT`"));
        }
        let format = self.format.map_or(Format::Restore, |(f, _)| f);
        let ruleset = Ruleset {
            ipv4: std::mem::take(&mut self.v4).finish(),
            ipv6: std::mem::take(&mut self.v6).finish(),
        };
        validate::validate(&ruleset).map_err(|v| {
            let line_text = text.split('\n').nth(v.line.saturating_sub(1)).unwrap_or("");
            let line_text = line_text.strip_suffix('\r').unwrap_or(line_text);
            let mut e = self.err(v.line, line_text, v.start, v.end, v.message);
            e.help = v.help;
            e
        })?;
        Ok(Parsed { ruleset, format })
    }

    fn restore_line(&mut self, line_no: usize, line: &str) -> Result<(), ParseError> {
        let trimmed = line.trim_start();
        let lead = line.len() - trimmed.len();
        if let Some(rest) = trimmed.strip_prefix('*') {
            let name = rest.trim();
            let name_start = lead + 1 + (rest.len() - rest.trim_start().len());
            if let Some(b) = &self.block {
                return Err(self
                    .err(
                        line_no,
                        line,
                        lead,
                        line.len(),
                        format!(
                            "table `{}` (line {}) is not committed before the next table",
                            b.kind, b.header_line
                        ),
                    )
                    .with_help("end each table with a line `COMMIT`"));
            }
            let kind = TableKind::from_name(name).ok_or_else(|| {
                self.err(
                    line_no,
                    line,
                    name_start,
                    name_start + name.len(),
                    format!("unknown table `{name}`"),
                )
                .with_help("expected raw, mangle, nat, filter or security")
            })?;
            // A table seen again: after an `ip6tables-save` marker it starts the IPv6 block;
            // otherwise iptables-restore flushes and rebuilds it.
            if self.begun.contains(&(self.family, kind)) {
                if self.family == Family::Ipv4 && self.seen_v6_marker {
                    self.family = Family::Ipv6;
                } else {
                    let fam = self.family;
                    self.fam(fam).tables.retain(|t| t.kind != kind);
                }
            }
            self.begun.push((self.family, kind));
            self.block = Some(Block {
                kind,
                header_line: line_no,
                header_text: line.to_string(),
            });
            return Ok(());
        }
        if trimmed.trim_end() == "COMMIT" {
            if self.block.take().is_none() {
                return Err(self
                    .err(line_no, line, lead, line.len(), "`COMMIT` without a table")
                    .with_help("a table starts with a line such as `*nat`"));
            }
            return Ok(());
        }
        let Some(block_kind) = self.block.as_ref().map(|b| b.kind) else {
            let what = if trimmed.starts_with(':') {
                "chain"
            } else {
                "rule"
            };
            return Err(self
                .err(
                    line_no,
                    line,
                    lead,
                    line.len(),
                    format!("{what} before any table"),
                )
                .with_help("start the table first with a line such as `*nat`"));
        };
        if let Some(rest) = trimmed.strip_prefix(':') {
            return self.chain_decl(line_no, line, lead + 1, rest, block_kind);
        }
        let toks =
            tokenize(line).map_err(|e| self.err(line_no, line, e.at, e.at + 1, e.message))?;
        let mut toks = toks.as_slice();
        let mut counters = None;
        if let Some(first) = toks.first() {
            if first.text.starts_with('[') {
                counters = Some(parse_counters(&first.text).ok_or_else(|| {
                    self.err(
                        line_no,
                        line,
                        first.start,
                        first.end,
                        format!("invalid counters `{}`", first.text),
                    )
                    .with_help("expected [PACKETS:BYTES]")
                })?);
                toks = toks.get(1..).unwrap_or(&[]);
            }
        }
        for t in toks {
            if looks_like_table_option(&t.text) {
                return Err(self
                    .err(
                        line_no,
                        line,
                        t.start,
                        t.end,
                        "`-t` cannot be used in iptables-restore input",
                    )
                    .with_help("the table is set by the `*table` line"));
            }
        }
        let fam = self.family;
        self.command(line_no, line, fam, block_kind, toks, counters)
    }

    fn chain_decl(
        &mut self,
        line_no: usize,
        line: &str,
        at: usize,
        rest: &str,
        kind: TableKind,
    ) -> Result<(), ParseError> {
        let toks = tokenize(rest)
            .map_err(|e| self.err(line_no, line, at + e.at, at + e.at + 1, e.message))?;
        let tok = |i: usize| toks.get(i);
        let Some(name) = tok(0) else {
            return Err(self
                .err(
                    line_no,
                    line,
                    at - 1,
                    line.len(),
                    "chain declaration without a name",
                )
                .with_help("expected `:NAME POLICY [PACKETS:BYTES]`"));
        };
        let span = |t: &Token| (at + t.start, at + t.end);
        check_chain_name(&name.text).map_err(|m| {
            let (s, e) = span(name);
            self.err(line_no, line, s, e, m)
        })?;
        let policy_tok = tok(1).ok_or_else(|| {
            let (s, e) = span(name);
            self.err(
                line_no,
                line,
                s,
                e,
                format!("chain `{}` has no policy", name.text),
            )
            .with_help("expected `:NAME POLICY [PACKETS:BYTES]`, POLICY `-` for a user chain")
        })?;
        let counters = match tok(2) {
            Some(c) => parse_counters(&c.text).ok_or_else(|| {
                let (s, e) = span(c);
                self.err(
                    line_no,
                    line,
                    s,
                    e,
                    format!("invalid counters `{}`", c.text),
                )
                .with_help("expected [PACKETS:BYTES]")
            })?,
            None => Counters::default(),
        };
        if let Some(extra) = tok(3) {
            let (s, e) = span(extra);
            return Err(self.err(
                line_no,
                line,
                s,
                e,
                format!("unexpected `{}` after the chain's counters", extra.text),
            ));
        }
        let builtin = kind.builtin_chains().iter().any(|h| h.name() == name.text);
        let policy = match policy_tok.text.as_str() {
            "ACCEPT" => Some(Policy::Accept),
            "DROP" => Some(Policy::Drop),
            "-" if !builtin => None,
            other => {
                let (s, e) = span(policy_tok);
                return Err(self
                    .err(
                        line_no,
                        line,
                        s,
                        e,
                        format!("bad policy `{other}` for chain `{}`", name.text),
                    )
                    .with_help(if builtin {
                        "a built-in chain's policy is ACCEPT or DROP"
                    } else {
                        "a user chain's policy is `-`"
                    }));
            }
        };
        let fam = self.family;
        let table = self.fam(fam).table_mut(kind);
        if builtin {
            if let Some(c) = table.chain_mut(&name.text) {
                c.policy = policy;
                c.counters = counters;
            }
        } else if let Some(c) = table.chain_mut(&name.text) {
            c.counters = counters;
        } else {
            table.push(Chain {
                name: name.text.clone(),
                policy: None,
                counters,
                rules: Vec::new(),
            });
        }
        Ok(())
    }

    fn command_line(&mut self, line_no: usize, line: &str) -> Result<(), ParseError> {
        let toks =
            tokenize(line).map_err(|e| self.err(line_no, line, e.at, e.at + 1, e.message))?;
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
                    let v = toks.get(i + 1).ok_or_else(|| {
                        self.err(line_no, line, t.start, t.end, "option `-t` needs a value")
                    })?;
                    table = TableKind::from_name(&v.text).ok_or_else(|| {
                        self.err(
                            line_no,
                            line,
                            v.start,
                            v.end,
                            format!("unknown table `{}`", v.text),
                        )
                        .with_help("expected raw, mangle, nat, filter or security")
                    })?;
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
            return Err(self
                .err(
                    line_no,
                    line,
                    t.start,
                    t.end,
                    format!("argument `{}` reads as a `-t` option", t.text),
                )
                .with_help("give `-t TABLE` once, as its own argument"));
        }
        self.command(line_no, line, family, table, &rest, None)
    }

    /// One `-A`/`-I`/`-N`/`-P` command with its arguments.
    fn command(
        &mut self,
        line_no: usize,
        line: &str,
        family: Family,
        kind: TableKind,
        toks: &[Token],
        counters: Option<Counters>,
    ) -> Result<(), ParseError> {
        let Some(cmd) = toks.first() else {
            return Err(self
                .err(line_no, line, 0, line.len(), "line has no command")
                .with_help("expected -A, -I, -N or -P"));
        };
        let arg = |i: usize| toks.get(i);
        let chain_tok = arg(1);
        let need_chain = || {
            chain_tok.ok_or_else(|| {
                self.err(
                    line_no,
                    line,
                    cmd.start,
                    cmd.end,
                    format!("`{}` needs a chain name", cmd.text),
                )
            })
        };
        match cmd.text.as_str() {
            "-N" | "--new-chain" => {
                let c = need_chain()?;
                check_chain_name(&c.text)
                    .map_err(|m| self.err(line_no, line, c.start, c.end, m))?;
                if let Some(x) = arg(2) {
                    return Err(self.err(
                        line_no,
                        line,
                        x.start,
                        x.end,
                        format!("unexpected `{}` after `-N {}`", x.text, c.text),
                    ));
                }
                let is_builtin = kind.builtin_chains().iter().any(|h| h.name() == c.text);
                let table = self.fam(family).table_mut(kind);
                if is_builtin || table.has_chain(&c.text) {
                    return Err(self.err(
                        line_no,
                        line,
                        c.start,
                        c.end,
                        format!("chain `{}` already exists in table `{kind}`", c.text),
                    ));
                }
                table.push(Chain {
                    name: c.text.clone(),
                    policy: None,
                    counters: Counters::default(),
                    rules: Vec::new(),
                });
                Ok(())
            }
            "-P" | "--policy" => {
                let c = need_chain()?;
                let p = arg(2).ok_or_else(|| {
                    self.err(line_no, line, c.start, c.end, "`-P` needs a policy")
                })?;
                let policy = match p.text.as_str() {
                    "ACCEPT" => Policy::Accept,
                    "DROP" => Policy::Drop,
                    other => {
                        return Err(self
                            .err(
                                line_no,
                                line,
                                p.start,
                                p.end,
                                format!("bad policy `{other}`"),
                            )
                            .with_help("a built-in chain's policy is ACCEPT or DROP"))
                    }
                };
                if !kind.builtin_chains().iter().any(|h| h.name() == c.text) {
                    return Err(self.err(line_no, line, c.start, c.end, format!("`{}` is not a built-in chain of table `{kind}`; only built-in chains have a policy", c.text)));
                }
                let table = self.fam(family).table_mut(kind);
                if let Some(ch) = table.chain_mut(&c.text) {
                    ch.policy = Some(policy);
                }
                Ok(())
            }
            "-A" | "--append" | "-I" | "--insert" => {
                let c = need_chain()?;
                let insert = matches!(cmd.text.as_str(), "-I" | "--insert");
                let mut rest = toks.get(2..).unwrap_or(&[]);
                let mut index = 1usize;
                if insert {
                    if let Some(n) = rest.first() {
                        if n.text.bytes().all(|b| b.is_ascii_digit()) && !n.text.is_empty() {
                            index = n.text.parse().unwrap_or(usize::MAX);
                            if index == 0 {
                                return Err(self.err(
                                    line_no,
                                    line,
                                    n.start,
                                    n.end,
                                    "rule numbers start at 1",
                                ));
                            }
                            rest = rest.get(1..).unwrap_or(&[]);
                        }
                    }
                }
                let table = self.fam(family).table_mut(kind);
                if !table.has_chain(&c.text) {
                    let builtin_elsewhere = Hook::from_name(&c.text).is_some();
                    let mut e = self.err(
                        line_no,
                        line,
                        c.start,
                        c.end,
                        format!("no chain `{}` in table `{kind}`", c.text),
                    );
                    e = e.with_help(if builtin_elsewhere {
                        format!("`{}` is not a built-in chain of table `{kind}`", c.text)
                    } else {
                        format!(
                            "declare it first with `:{} - [0:0]` or `-N {}`",
                            c.text, c.text
                        )
                    });
                    return Err(e);
                }
                let fam = match family {
                    Family::Ipv4 => &self.v4,
                    Family::Ipv6 => &self.v6,
                };
                let exists = |n: &str| {
                    fam.tables
                        .iter()
                        .any(|t| t.kind == kind && t.has_user_chain(n))
                };
                let elsewhere = |n: &str| {
                    fam.tables
                        .iter()
                        .find(|t| t.kind != kind && t.has_user_chain(n))
                        .map(|t| t.kind)
                };
                let ctx = RuleContext {
                    family,
                    table: kind,
                    chain_exists: &exists,
                    chain_elsewhere: &elsewhere,
                    hook: Hook::from_name(&c.text).filter(|h| kind.builtin_chains().contains(h)),
                };
                let mut rules =
                    parse_rule(&ctx, rest).map_err(|e| self.rule_err(line_no, line, e))?;

                for r in &mut rules {
                    r.origin.line = u32::try_from(line_no).unwrap_or(u32::MAX);
                    if r.origin.end == 0 {
                        r.origin.start = u32::try_from(cmd.start).unwrap_or(0);
                        r.origin.end = u32::try_from(cmd.end).unwrap_or(0);
                    }
                    if let Some(cn) = counters {
                        r.counters = cn;
                    }
                }
                let name = self.name;
                let table = self.fam(family).table_mut(kind);
                let Some(chain) = table.chain_mut(&c.text) else {
                    return Ok(());
                };
                if insert {
                    if index > chain.rules.len() + 1 {
                        let n = toks.get(2).unwrap_or(c);
                        return Err(ParseError::new(
                            name,
                            line_no,
                            line,
                            n.start,
                            n.end,
                            format!(
                                "index of insertion too big: chain `{}` has {} rule(s)",
                                c.text,
                                chain.rules.len()
                            ),
                        ));
                    }
                    for r in rules {
                        chain.rules.insert(index - 1, r);
                    }
                } else {
                    chain.rules.extend(rules);
                }
                Ok(())
            }
            "-D" | "--delete" | "-R" | "--replace" | "-F" | "--flush" | "-X" | "--delete-chain"
            | "-Z" | "--zero" | "-E" | "--rename-chain" => Err(self
                .err(
                    line_no,
                    line,
                    cmd.start,
                    cmd.end,
                    format!("command `{}` is not supported", cmd.text),
                )
                .with_help("give the ruleset as the rules it ends up with: -N, -A, -I and -P")),
            "-t" | "--table" => Err(self.err(
                line_no,
                line,
                cmd.start,
                cmd.end,
                "`-t` cannot be used in iptables-restore input",
            )),
            other => Err(self
                .err(
                    line_no,
                    line,
                    cmd.start,
                    cmd.end,
                    format!("unknown command `{other}`"),
                )
                .with_help("expected -A, -I, -N or -P")),
        }
    }
}

/// Checks a user chain name as iptables does.
fn check_chain_name(name: &str) -> Result<(), String> {
    if name.len() > 28 {
        return Err(format!("chain name `{name}` longer than 28 characters"));
    }
    if name.starts_with('-')
        || name.starts_with('!')
        || name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\'' || c == '\\')
    {
        return Err(format!("invalid chain name `{name}`"));
    }
    if matches!(name, "ACCEPT" | "DROP" | "RETURN" | "QUEUE") {
        return Err(format!("chain name `{name}` is reserved for a target"));
    }
    Ok(())
}

/// What iptables-restore takes for a `-t` option: a single-dash argument containing `t`, or a
/// prefix of `--table` of at least `--t`.
fn looks_like_table_option(s: &str) -> bool {
    (s.starts_with('-') && !s.starts_with("--") && s.contains('t'))
        || (s.starts_with("--t") && "--table".starts_with(s))
}

fn parse_counters(s: &str) -> Option<Counters> {
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    let (p, b) = inner.split_once(':')?;
    Some(Counters {
        packets: p.parse().ok()?,
        bytes: b.parse().ok()?,
    })
}

fn is_nft(line: &str) -> bool {
    let mut w = line.split_whitespace();
    let a = w.next().unwrap_or("");
    let b = w.next().unwrap_or("");
    matches!(
        (a, b),
        (
            "add" | "flush" | "delete" | "insert" | "create" | "replace",
            "table" | "chain" | "rule" | "ruleset" | "set" | "element" | "map"
        )
    ) || a == "nft"
        || (a == "table" && matches!(b, "inet" | "ip" | "ip6" | "arp" | "bridge" | "netdev"))
}

fn is_command_line(line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or("");
    let base = first.rsplit('/').next().unwrap_or(first);
    matches!(
        base,
        "iptables"
            | "ip6tables"
            | "iptables-legacy"
            | "ip6tables-legacy"
            | "iptables-nft"
            | "ip6tables-nft"
    )
}
