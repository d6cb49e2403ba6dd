//! The loader: what the kernel holds after loading an input, built one operation at a time. Every
//! front end (the save/restore text, the command form) reads its own syntax and drives this API;
//! the loader alone knows tables, chains, insert positions, `COMMIT` blocks, the family switch of
//! save files and the kernel's whole-ruleset checks ([`crate::validate`]).
//!
//! # How to add an input front end
//!
//! Each step is enforced by the compiler or by a test.
//!
//! 1. **Name the form**: add a variant to the `formats!` list in `parse/mod.rs` (its kebab-case
//!    name is the form's name in README.md's "Input forms"). The compiler then asks for the rest:
//!    `front_end` in `parse/mod.rs` (which type reads the form), `described` in `parse/detect.rs`
//!    (how an error names the form) and `sample` in the tests of `parse/mod.rs` (a small input in
//!    the form).
//! 2. **Recognise its lines** in `parse/detect.rs`, the one place where forms are told apart (and
//!    where nftables scripts are refused today: an nft front end replaces that refusal). The test
//!    `every_format_is_detected_and_round_trips` fails until the sample (the test's small
//!    ruleset, written in the new form) is detected as that form, loads what the test expects
//!    `iptables-save` to print, and survives the print and a second parse.
//! 3. **Read it** in a file of its own under `parse/`: a type implementing [`FrontEnd`], whose
//!    [`FrontEnd::line`] turns each line into calls of [`Loader`]: tables and chains
//!    ([`Loader::declare_chain`], [`Loader::new_chain`], [`Loader::set_policy`]), rules
//!    ([`Loader::check_chain`], then [`Loader::insert_rules`] at a [`Position`]), and, for a form
//!    with transactions, [`Loader::begin_table`] and [`Loader::commit`]. Errors point into the
//!    [`Line`] ([`Line::error`]), so they carry `file:line:column`. No other front end changes:
//!    the loader's API is all they share (the iptables syntax the two iptables forms have in
//!    common sits in `parse/iptables.rs`).
//! 4. **Refuse what it cannot say** with a located message, and add each refusal as a case of
//!    `verify/tests/bad_input/` (the `bad_input` test runs every file there against the binary).
//! 5. **Say so** in README.md's "Input forms", a bullet led by the form's name (`` `restore`: ``;
//!    `the_readme_names_every_input_form` in `verify/tests/architecture.rs` fails until it is
//!    there), and in docs/model-and-parser.md.

use super::lex::Token;
use super::names::Short;
use super::rule::Expanded;
use super::{Format, Parsed};
use crate::ast::*;
use crate::error::ParseError;
use crate::validate;
use std::cell::Cell;

/// A front end: the reader of one input form. The driver in `parse/mod.rs` detects the form of
/// each line and hands the line to the front end of that form; the front end drives the
/// [`Loader`].
pub trait FrontEnd {
    /// Reads one line of this form (never blank, never a comment, never a bare `iptables-save`
    /// line: the driver has taken those).
    fn line<'t>(&mut self, loader: &mut Loader<'t>, line: &Line<'t>) -> Result<(), ParseError>;
}

/// One line of the input, into which errors point.
#[derive(Debug, Clone, Copy)]
pub struct Line<'t> {
    /// The input's name (a path, or `<stdin>`).
    pub source: &'t str,
    /// 1-based line number.
    pub number: usize,
    /// The line, without its newline and without a `\r` before it.
    pub text: &'t str,
}

impl Line<'_> {
    /// An error at bytes `start..end` of the line.
    pub fn error(&self, start: usize, end: usize, message: impl Into<String>) -> ParseError {
        ParseError::new(self.source, self.number, self.text, start, end, message)
    }

    /// An error at a token of the line.
    pub fn error_at(&self, token: &Token, message: impl Into<String>) -> ParseError {
        self.error(token.start, token.end, message)
    }

    /// An error over the whole line, its leading white space aside.
    pub fn error_line(&self, message: impl Into<String>) -> ParseError {
        self.error(self.indent(), self.text.len(), message)
    }

    /// The length in bytes of the line's leading white space.
    pub fn indent(&self) -> usize {
        self.text.len() - self.text.trim_start().len()
    }
}

/// Where [`Loader::insert_rules`] puts rules in their chain.
#[derive(Debug, Clone, Copy)]
pub enum Position<'a> {
    /// After the chain's last rule (`-A`).
    Append,
    /// Before the rule now at 1-based `index` (`-I CHAIN [N]`): `index` is at most one past the
    /// last rule, and several rules of one command end up in reverse order, as iptables-restore
    /// inserts them one by one at the same index.
    Insert {
        /// The 1-based index.
        index: usize,
        /// The token an index past the end is reported at.
        at: &'a Token<'a>,
    },
}

const COMMIT_HELP: &str = "end each table with a line `COMMIT`";

/// The table named by `name` (`*nat`, `-t nat`).
pub fn table_kind(line: &Line<'_>, name: &Token) -> Result<TableKind, ParseError> {
    TableKind::from_name(&name.text).ok_or_else(|| {
        line.error_at(name, format!("unknown table `{}`", name.text))
            .with_help("expected raw, mangle, nat, filter or security")
    })
}

/// The tables of both families as loaded so far, and where a save file being read stands (the
/// open block, the family it loads into).
pub struct Loader<'t> {
    source: &'t str,
    text: &'t str,
    v4: FamilyState,
    v6: FamilyState,
    /// The family the next `*table` block loads into (save files).
    family: Family,
    /// A bare `ip6tables-save` line or an `ip6tables-save` header has been seen.
    seen_v6_marker: bool,
    /// The block being read (save files): from `*table` to `COMMIT`.
    block: Option<Block<'t>>,
    /// Tables begun in each family so far (save files), for the switch to the IPv6 block.
    begun: Vec<(Family, TableKind)>,
    /// The vector a line's arguments are split into, lent to each line in turn.
    tokens: Vec<Token<'t>>,
}

/// A `*table` block not committed yet.
struct Block<'t> {
    kind: TableKind,
    header: Line<'t>,
}

impl<'t> Loader<'t> {
    /// A loader of `text`, named `source` in errors, holding no table yet.
    pub fn new(source: &'t str, text: &'t str) -> Loader<'t> {
        Loader {
            source,
            text,
            v4: FamilyState::default(),
            v6: FamilyState::default(),
            family: Family::Ipv4,
            seen_v6_marker: false,
            block: None,
            begun: Vec::new(),
            tokens: Vec::new(),
        }
    }

    /// A vector to split a line into (empty), to give back with [`Loader::put_tokens`].
    pub(super) fn take_tokens(&mut self) -> Vec<Token<'t>> {
        std::mem::take(&mut self.tokens)
    }

    /// Gives back the vector of [`Loader::take_tokens`], for the next line.
    pub(super) fn put_tokens(&mut self, mut tokens: Vec<Token<'t>>) {
        tokens.clear();
        self.tokens = tokens;
    }

    fn tables(&self, family: Family) -> &FamilyState {
        match family {
            Family::Ipv4 => &self.v4,
            Family::Ipv6 => &self.v6,
        }
    }

    fn tables_mut(&mut self, family: Family) -> &mut FamilyState {
        match family {
            Family::Ipv4 => &mut self.v4,
            Family::Ipv6 => &mut self.v6,
        }
    }

    fn table_mut(&mut self, family: Family, kind: TableKind) -> &mut TableState {
        self.tables_mut(family).table_mut(kind)
    }

    /// A `# Generated by iptables-save` (or `ip6tables-save`) header outside a block: the next
    /// blocks load into that family, except that IPv4 does not come back after IPv6.
    pub fn generated_by(&mut self, family: Family) {
        if self.block.is_some() {
            return;
        }
        match family {
            Family::Ipv6 => {
                self.family = Family::Ipv6;
                self.seen_v6_marker = true;
            }
            Family::Ipv4 if !self.seen_v6_marker => self.family = Family::Ipv4,
            Family::Ipv4 => {}
        }
    }

    /// The family the save file's tables load into until a marker says otherwise (IPv6 for
    /// unmarked `ip6tables-save` output: `parse/detect.rs`'s `unmarked_family`).
    pub fn start_in(&mut self, family: Family) {
        self.family = family;
    }

    /// A bare `iptables-save` or `ip6tables-save` line (Istio's golden files): after the IPv6 one,
    /// a table begun again starts the IPv6 block.
    pub fn save_line(&mut self, family: Family) {
        if family == Family::Ipv6 {
            self.seen_v6_marker = true;
        }
    }

    /// `*name`: starts a block. A table begun again starts the IPv6 block after an IPv6 marker;
    /// otherwise it is flushed and rebuilt, as iptables-restore does.
    pub fn begin_table(&mut self, line: &Line<'t>, name: &Token) -> Result<(), ParseError> {
        if let Some(b) = &self.block {
            return Err(line
                .error_line(format!(
                    "table `{}` (line {}) is not committed before the next table",
                    b.kind, b.header.number
                ))
                .with_help(COMMIT_HELP));
        }
        let kind = table_kind(line, name)?;
        if self.begun.contains(&(self.family, kind)) {
            if self.family == Family::Ipv4 && self.seen_v6_marker {
                self.family = Family::Ipv6;
            } else {
                let family = self.family;
                self.tables_mut(family).tables.retain(|t| t.kind != kind);
            }
        }
        self.begun.push((self.family, kind));
        self.block = Some(Block {
            kind,
            header: *line,
        });
        Ok(())
    }

    /// `COMMIT`: ends the block.
    pub fn commit(&mut self, line: &Line<'_>) -> Result<(), ParseError> {
        if self.block.take().is_none() {
            return Err(line
                .error_line("`COMMIT` without a table")
                .with_help("a table starts with a line such as `*nat`"));
        }
        Ok(())
    }

    /// The family and table of the block being read, if one is.
    pub fn open_table(&self) -> Option<(Family, TableKind)> {
        self.block.as_ref().map(|b| (self.family, b.kind))
    }

    /// `:NAME POLICY [PACKETS:BYTES]`: a built-in chain's policy and counters, or a user chain
    /// (`policy` is then ignored), declared anew or given new counters.
    pub fn declare_chain(
        &mut self,
        family: Family,
        kind: TableKind,
        name: &str,
        policy: Option<Policy>,
        counters: Counters,
    ) {
        let builtin = is_builtin(kind, name);
        let table = self.table_mut(family, kind);
        if let Some(c) = table.chain_mut(name) {
            if builtin {
                c.policy = policy;
            }
            c.counters = counters;
        } else if !builtin {
            table.push(user_chain(name, counters));
        }
    }

    /// `-N NAME`: a new user chain; one of that name must not exist.
    pub fn new_chain(
        &mut self,
        line: &Line<'_>,
        family: Family,
        kind: TableKind,
        name: &Token,
    ) -> Result<(), ParseError> {
        let builtin = is_builtin(kind, &name.text);
        let table = self.table_mut(family, kind);
        if builtin || table.has_chain(&name.text) {
            return Err(line.error_at(
                name,
                format!("chain `{}` already exists in table `{kind}`", name.text),
            ));
        }
        table.push(user_chain(&name.text, Counters::default()));
        Ok(())
    }

    /// `-P CHAIN POLICY`: only a built-in chain has a policy.
    pub fn set_policy(
        &mut self,
        line: &Line<'_>,
        family: Family,
        kind: TableKind,
        chain: &Token,
        policy: Policy,
    ) -> Result<(), ParseError> {
        if !is_builtin(kind, &chain.text) {
            return Err(line.error_at(
                chain,
                format!(
                    "`{}` is not a built-in chain of table `{kind}`; only built-in chains have a policy",
                    chain.text
                ),
            ));
        }
        if let Some(c) = self.table_mut(family, kind).chain_mut(&chain.text) {
            c.policy = Some(policy);
        }
        Ok(())
    }

    /// Refuses rules for a chain that does not exist (yet); call it before reading the rule, so
    /// that this error comes first.
    pub fn check_chain(
        &mut self,
        line: &Line<'_>,
        family: Family,
        kind: TableKind,
        chain: &Token,
    ) -> Result<(), ParseError> {
        if self.table_mut(family, kind).has_chain(&chain.text) {
            return Ok(());
        }
        let help = if Hook::from_name(&chain.text).is_some() {
            format!("`{}` is not a built-in chain of table `{kind}`", chain.text)
        } else {
            format!(
                "declare it first with `:{} - [0:0]` or `-N {}`",
                chain.text, chain.text
            )
        };
        Err(line
            .error_at(
                chain,
                format!("no chain `{}` in table `{kind}`", chain.text),
            )
            .with_help(help))
    }

    /// Whether table `kind` of `family` holds a user chain `name` now.
    pub fn has_user_chain(&self, family: Family, kind: TableKind, name: &str) -> bool {
        self.tables(family)
            .tables
            .iter()
            .any(|t| t.kind == kind && t.has_user_chain(name))
    }

    /// Another table of `family` than `kind` that holds a user chain `name` now.
    pub fn user_chain_table(
        &self,
        family: Family,
        kind: TableKind,
        name: &str,
    ) -> Option<TableKind> {
        self.tables(family)
            .tables
            .iter()
            .find(|t| t.kind != kind && t.has_user_chain(name))
            .map(|t| t.kind)
    }

    /// Appends to `chain` (which [`Loader::check_chain`] found) the rules `read` makes: the
    /// first written into a default rule already in its place at the chain's end (a rule is 176
    /// bytes: it is not moved there), the others returned. `read` sees the loader as it stands
    /// (which chains exist). On an error the chain is left as it was.
    pub(crate) fn append_with(
        &mut self,
        family: Family,
        kind: TableKind,
        chain: &str,
        read: impl FnOnce(&Loader<'t>, &mut Rule) -> Result<Vec<Rule>, ParseError>,
    ) -> Result<(), ParseError> {
        let table = self.table_mut(family, kind);
        let Some(ci) = table.find(chain) else {
            return Ok(());
        };
        let mut rules = table
            .chains
            .get_mut(ci)
            .map(|c| std::mem::take(&mut c.rules))
            .unwrap_or_default();
        let first = rules.len();
        grow(&mut rules);
        rules.push(Rule::default());
        let read = match rules.last_mut() {
            Some(slot) => read(self, slot),
            None => Ok(Vec::new()),
        };
        let more = match read {
            Ok(more) => more,
            Err(e) => {
                rules.pop();
                if let Some(c) = self.table_mut(family, kind).chains.get_mut(ci) {
                    c.rules = rules;
                }
                return Err(e);
            }
        };
        for r in more {
            grow(&mut rules);
            rules.push(r);
        }
        let t = self.table_mut(family, kind);
        for (ri, r) in rules.iter().enumerate().skip(first) {
            if let Some(name) = r.target.as_ref().and_then(Target::chain) {
                note_jump(&mut t.jumps, &t.index, &t.last_target, (ci, ri), name);
            }
        }
        if let Some(c) = t.chains.get_mut(ci) {
            c.rules = rules;
        }
        Ok(())
    }

    /// The chains of the open table and of the other tables of its family, for readers on other
    /// threads (`parse/parallel.rs`): a run of `-A` lines adds rules and no chain, so these stay
    /// as they are while it is read. `None` outside a block.
    pub(super) fn chains(&mut self) -> Option<Chains<'_>> {
        let (family, kind) = self.open_table()?;
        self.table_mut(family, kind);
        let tables = &self.tables(family).tables;
        let own = &tables.iter().find(|t| t.kind == kind)?.index;
        let others = tables
            .iter()
            .filter(|t| t.kind != kind)
            .map(|t| (t.kind, &t.index))
            .collect();
        Some(Chains {
            family,
            kind,
            own,
            others,
        })
    }

    /// Appends the rules read on other threads ([`Loader::chains`]) to the open table's chains,
    /// piece by piece in the input's order, with their jumps for the whole-ruleset checks.
    pub(super) fn append_pieces(&mut self, pieces: Vec<Piece>) {
        let Some((family, kind)) = self.open_table() else {
            return;
        };
        let t = self.table_mut(family, kind);
        for p in pieces {
            let Some(c) = t.chains.get_mut(p.chain as usize) else {
                continue;
            };
            let base = c.rules.len();
            if base == 0 {
                c.rules = p.rules;
            } else {
                c.rules.extend(p.rules);
            }
            match (&mut t.jumps, p.unresolved) {
                (Some(_), true) => t.jumps = None,
                (Some(list), false) => {
                    for (r, target) in p.jumps {
                        let r = u32::try_from(base + r as usize).unwrap_or(u32::MAX);
                        list.push((p.chain, r, target));
                    }
                }
                (None, _) => {}
            }
        }
    }

    /// Puts `rules` into `chain` (which [`Loader::check_chain`] found) at `position`.
    pub fn insert_rules(
        &mut self,
        line: &Line<'_>,
        family: Family,
        kind: TableKind,
        chain: &Token,
        position: Position<'_>,
        rules: Expanded,
    ) -> Result<(), ParseError> {
        let table = self.table_mut(family, kind);
        let Some(ci) = table.find(&chain.text) else {
            return Ok(());
        };
        let TableState {
            chains,
            jumps,
            index,
            last_target,
            ..
        } = table;
        let Some(c) = chains.get_mut(ci) else {
            return Ok(());
        };
        match position {
            Position::Append => {
                let mut append = |r: Rule| {
                    if let Some(name) = r.target.as_ref().and_then(Target::chain) {
                        note_jump(jumps, index, last_target, (ci, c.rules.len()), name);
                    }
                    grow(&mut c.rules);
                    c.rules.push(r);
                };
                match rules {
                    Expanded::One(r) => append(r),
                    Expanded::Many(v) => v.into_iter().for_each(append),
                }
            }
            Position::Insert { index, at } => {
                if index > c.rules.len() + 1 {
                    return Err(line.error_at(
                        at,
                        format!(
                            "index of insertion too big: chain `{}` has {} rule(s)",
                            chain.text,
                            c.rules.len()
                        ),
                    ));
                }
                *jumps = None;
                for r in rules {
                    c.rules.insert(index - 1, r);
                }
            }
        }
        Ok(())
    }

    /// The loaded ruleset, after the checks iptables-restore and the kernel make at the end: every
    /// block committed, then [`validate::validate`].
    pub fn finish(self, format: Format) -> Result<Parsed, ParseError> {
        if let Some(b) = &self.block {
            return Err(b
                .header
                .error_line(format!(
                    "table `{}` is never committed (missing COMMIT)",
                    b.kind
                ))
                .with_help(COMMIT_HELP));
        }
        let (source, text) = (self.source, self.text);
        let (ipv4, mut jumps) = self.v4.finish();
        let (ipv6, jumps6) = self.v6.finish();
        jumps.extend(jumps6);
        let ruleset = Ruleset { ipv4, ipv6 };
        validate::validate_with(&ruleset, jumps).map_err(|v| {
            let raw = text.split('\n').nth(v.line.saturating_sub(1)).unwrap_or("");
            let line = Line {
                source,
                number: v.line,
                text: raw.strip_suffix('\r').unwrap_or(raw),
            };
            let mut e = line.error(v.start, v.end, v.message);
            e.help = v.help;
            e
        })?;
        Ok(Parsed { ruleset, format })
    }
}

/// Room for one more rule in a chain: doubling from two rules, not from four as `Vec` does
/// (most chains of a node's ruleset hold two to four rules, and a rule is 176 bytes): a
/// kube-proxy endpoint chain's two rules without moving them.
pub(super) fn grow(rules: &mut Vec<Rule>) {
    if rules.len() == rules.capacity() {
        rules.reserve_exact(rules.len().max(2));
    }
}

fn is_builtin(kind: TableKind, name: &str) -> bool {
    kind.builtin_chains().iter().any(|h| h.name() == name)
}

fn user_chain(name: &str, counters: Counters) -> Chain {
    Chain {
        name: name.to_string(),
        policy: None,
        counters,
        rules: Vec::new(),
        base: None,
    }
}

/// One table being loaded.
struct TableState {
    kind: TableKind,
    chains: Vec<Chain>,
    /// Each chain's index in `chains`, with [`BUILTIN`] set for a built-in chain: a ruleset of
    /// 100,000 chains looks a name up per line.
    index: super::names::ChainIndex,
    /// The chain found last: a save file's rules come chain by chain, so most lines name it.
    last: Cell<usize>,
    /// The user chain a jump named last (its key and index): many rules jump to the same one
    /// (`KUBE-MARK-MASQ`).
    last_target: Cell<Option<(Short, u32)>>,
    /// Every jump and goto appended so far, `(chain, rule, target chain)` by index, for the
    /// whole-ruleset checks; `None` once a rule was inserted (`-I`), which moves the rules
    /// after it, or a jump's chain was not found: the checks then resolve the names again.
    jumps: Option<Vec<(u32, u32, u32)>>,
}

/// Records for the whole-ruleset checks that rule `at.1` of chain `at.0` jumps to chain `name`
/// (which [`TableState::has_user_chain`] found while the rule was read).
fn note_jump(
    jumps: &mut Option<Vec<(u32, u32, u32)>>,
    index: &super::names::ChainIndex,
    last_target: &Cell<Option<(Short, u32)>>,
    at: (usize, usize),
    name: &str,
) {
    let Some(list) = jumps else { return };
    match (
        find_user_chain(index, last_target, name),
        u32::try_from(at.0),
        u32::try_from(at.1),
    ) {
        (Some(t), Ok(c), Ok(r)) => list.push((c, r, t)),
        _ => *jumps = None,
    }
}

/// The index of user chain `name` in `index`, through `last` (the user chain found last, with
/// its key: many rules jump to the same one, `KUBE-MARK-MASQ`), which it then holds.
fn find_user_chain(
    index: &super::names::ChainIndex,
    last: &Cell<Option<(Short, u32)>>,
    name: &str,
) -> Option<u32> {
    let key = Short::of(name);
    if let (Some(k), Some((found, i))) = (key, last.get()) {
        if k == found {
            return Some(i);
        }
    }
    let i = index
        .get_keyed(name, key.as_ref())
        .filter(|v| v & BUILTIN == 0)?;
    if let Some(k) = key {
        last.set(Some((k, i)));
    }
    Some(i)
}

/// Which chains a table and the other tables of its family hold, shared by the threads that read
/// a run of `-A` lines ([`Loader::chains`]).
pub(super) struct Chains<'a> {
    /// The open table's family.
    pub family: Family,
    /// The open table.
    pub kind: TableKind,
    own: &'a super::names::ChainIndex,
    others: Vec<(TableKind, &'a super::names::ChainIndex)>,
}

impl Chains<'_> {
    /// The index of chain `name` (built-in or not) in the open table.
    pub fn chain(&self, name: &str) -> Option<u32> {
        self.own.get(name).map(|v| v & !BUILTIN)
    }

    /// The index of user chain `name` in the open table, through `last` ([`find_user_chain`]).
    pub fn user_chain(&self, last: &Cell<Option<(Short, u32)>>, name: &str) -> Option<u32> {
        find_user_chain(self.own, last, name)
    }

    /// Another table of the family that holds a user chain `name`
    /// ([`Loader::user_chain_table`]).
    pub fn elsewhere(&self, name: &str) -> Option<TableKind> {
        self.others
            .iter()
            .find(|(_, i)| i.get(name).is_some_and(|v| v & BUILTIN == 0))
            .map(|(k, _)| *k)
    }
}

/// Rules read on another thread for one chain, from consecutive lines
/// ([`Loader::append_pieces`]).
pub(super) struct Piece {
    /// The chain's index in the open table.
    pub chain: u32,
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// `(rule, target chain)`: each jump or goto among `rules`, by index.
    pub jumps: Vec<(u32, u32)>,
    /// A jump's chain was not found (the checks then resolve the names again).
    pub unresolved: bool,
}

/// The bit of a [`TableState::index`] value that marks a built-in chain.
const BUILTIN: u32 = 1 << 31;

impl TableState {
    fn new(kind: TableKind) -> TableState {
        let mut t = TableState {
            kind,
            chains: Vec::new(),
            index: super::names::ChainIndex::default(),
            last: Cell::new(0),
            last_target: Cell::new(None),
            jumps: Some(Vec::new()),
        };
        for h in kind.builtin_chains() {
            t.push(Chain {
                name: h.name().to_string(),
                policy: Some(Policy::Accept),
                counters: Counters::default(),
                rules: Vec::new(),
                base: None,
            });
        }
        t
    }

    fn push(&mut self, chain: Chain) {
        let i = u32::try_from(self.chains.len()).unwrap_or(u32::MAX) & !BUILTIN;
        let flag = if chain.policy.is_some() { BUILTIN } else { 0 };
        self.index.insert(&chain.name, i | flag);
        self.chains.push(chain);
    }

    /// The index of chain `name`: the last one found, the chain declared after it (a save
    /// file lists its rules chain by chain in the order it declared the chains; chains without
    /// rules are passed over), or through the map.
    fn find(&self, name: &str) -> Option<usize> {
        let last = self.last.get();
        for (i, c) in self.chains.iter().enumerate().skip(last).take(4) {
            if c.name == name {
                self.last.set(i);
                return Some(i);
            }
        }
        let i = (self.index.get(name)? & !BUILTIN) as usize;
        self.last.set(i);
        Some(i)
    }

    fn chain_mut(&mut self, name: &str) -> Option<&mut Chain> {
        let i = self.find(name)?;
        self.chains.get_mut(i)
    }

    fn has_chain(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    fn has_user_chain(&self, name: &str) -> bool {
        find_user_chain(&self.index, &self.last_target, name).is_some()
    }
}

/// The tables of one family, in the order they were first touched.
#[derive(Default)]
struct FamilyState {
    tables: Vec<TableState>,
}

impl FamilyState {
    /// The table, created (with its built-in chains) when the input first touches it.
    fn table_mut(&mut self, kind: TableKind) -> &mut TableState {
        let idx = match self.tables.iter().position(|t| t.kind == kind) {
            Some(i) => i,
            None => {
                self.tables.push(TableState::new(kind));
                self.tables.len() - 1
            }
        };
        #[expect(
            clippy::indexing_slicing,
            reason = "idx is a valid index: found or just pushed"
        )]
        &mut self.tables[idx]
    }

    /// The tables as `iptables-save` lists them: in [`TableKind::SAVE_ORDER`], built-in chains
    /// in hook order (the order [`TableState::new`] made them in), then user chains by name.
    /// Each with its jumps, when the loader knows them ([`TableState::jumps`]).
    fn finish(mut self) -> (Vec<Table>, Vec<Option<validate::Jumps>>) {
        let mut out = Vec::new();
        let mut jumps = Vec::new();
        for kind in TableKind::SAVE_ORDER {
            let Some(i) = self.tables.iter().position(|t| t.kind == kind) else {
                continue;
            };
            let t = self.tables.swap_remove(i);
            // The built-in chains come first (`TableState::new` made them, and only user
            // chains are pushed after): the user chains are sorted where they stand, which
            // costs nothing more than a look when they came sorted, as a save file lists them.
            // Sorting moves chains: the jumps noted by index are then resolved again.
            let mut chains = t.chains;
            let mut known = t.jumps;
            let builtins = chains.iter().take_while(|c| c.policy.is_some()).count();
            if let Some(users) = chains.get_mut(builtins..) {
                let by_name = |a: &Chain, b: &Chain| a.name.as_bytes().cmp(b.name.as_bytes());
                if !users.is_sorted_by(|a, b| by_name(a, b).is_le()) {
                    users.sort_unstable_by(by_name);
                    known = None;
                }
            }
            jumps.push(known.map(|list| validate::Jumps::from_list(chains.len(), &list)));
            out.push(Table {
                kind,
                chains,
                nft: None,
            });
        }
        (out, jumps)
    }
}

#[cfg(test)]
mod tests {
    use crate::ast::Family;
    use crate::{parse, print_ruleset};

    /// The rule lines of table `nat` as `iptables-save` would print them, for each family.
    fn nat_rules(input: &str) -> Vec<String> {
        let parsed = parse("t", input.as_bytes()).unwrap();
        let printed = print_ruleset(&parsed.ruleset);
        let mut family = Family::Ipv4;
        let mut out = Vec::new();
        for l in printed.lines() {
            if l.starts_with("# Generated by ip6tables-save") {
                family = Family::Ipv6;
            }
            if l.starts_with("-A ") {
                out.push(format!("{family:?} {l}"));
            }
        }
        out
    }

    #[test]
    fn insert_goes_before_the_rule_at_its_index() {
        let rules = nat_rules(
            "*nat\n-A OUTPUT -s 10.0.0.1 -j RETURN\n-A OUTPUT -s 10.0.0.2 -j RETURN\n\
             -I OUTPUT 2 -s 10.0.0.3 -j RETURN\n-I OUTPUT -s 10.0.0.4 -j RETURN\n\
             -I OUTPUT 5 -s 10.0.0.5 -j RETURN\nCOMMIT\n",
        );
        let srcs: Vec<&str> = rules
            .iter()
            .filter_map(|r| r.split_whitespace().nth(4))
            .collect();
        assert_eq!(
            srcs,
            [
                "10.0.0.4/32",
                "10.0.0.1/32",
                "10.0.0.3/32",
                "10.0.0.2/32",
                "10.0.0.5/32"
            ]
        );
    }

    #[test]
    fn one_insert_of_several_addresses_ends_up_reversed() {
        // iptables inserts the rule of each address at the same index, one after the other.
        let rules = nat_rules(
            "*nat\n-A OUTPUT -j RETURN\n-I OUTPUT 1 -s 10.0.0.1,10.0.0.2 -j ACCEPT\nCOMMIT\n",
        );
        assert_eq!(
            rules,
            [
                "Ipv4 -A OUTPUT -s 10.0.0.2/32 -j ACCEPT",
                "Ipv4 -A OUTPUT -s 10.0.0.1/32 -j ACCEPT",
                "Ipv4 -A OUTPUT -j RETURN",
            ]
        );
    }

    #[test]
    fn an_index_past_the_end_is_refused() {
        let e = parse(
            "t",
            b"*nat\n-A OUTPUT -j RETURN\n-I OUTPUT 3 -j ACCEPT\nCOMMIT\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (3, 11));
        assert_eq!(
            e.message,
            "index of insertion too big: chain `OUTPUT` has 1 rule(s)"
        );
    }

    #[test]
    fn a_table_begun_again_is_flushed_or_starts_the_ipv6_block() {
        let twice = "*nat\n-A OUTPUT -j RETURN\nCOMMIT\n*nat\n-A OUTPUT -j ACCEPT\nCOMMIT\n";
        assert_eq!(nat_rules(twice), ["Ipv4 -A OUTPUT -j ACCEPT"]);
        let istio = format!(
            "iptables-save\n{}",
            twice.replacen("COMMIT\n", "COMMIT\nip6tables-save\n", 1)
        );
        assert_eq!(
            nat_rules(&istio),
            ["Ipv4 -A OUTPUT -j RETURN", "Ipv6 -A OUTPUT -j ACCEPT"]
        );
        let header = twice.replacen("COMMIT\n", "COMMIT\n# Generated by ip6tables-save\n", 1);
        assert_eq!(
            nat_rules(&header),
            ["Ipv4 -A OUTPUT -j RETURN", "Ipv6 -A OUTPUT -j ACCEPT"]
        );
    }
}
