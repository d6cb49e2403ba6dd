//! The commands of an nft script and the blocks of `nft list ruleset`, run against the tables
//! they build as `nft -f` runs them: `add` of what exists changes nothing, `create` of it fails,
//! `flush table` empties every chain, `insert rule … index N` goes before the Nth rule and `add
//! rule … index N` after it.

use super::expr;
use super::lex::{Kind, Token, Tokens};
use super::translate::standard_base;
use crate::ast::{
    BaseChain, Chain, ChainType, Counters, Family, Hook, NftFamily, NftTable, Policy, Rule,
    Ruleset, Table, TableKind, Target,
};
use crate::error::ParseError;

type Res<T> = Result<T, ParseError>;

struct TableB<'a> {
    family: NftFamily,
    name: String,
    chains: Vec<ChainB<'a>>,
}

struct ChainB<'a> {
    name: String,
    base: Option<(BaseChain, Policy)>,
    rules: Vec<Rule>,
    at: Token<'a>,
}

struct Script<'t, 'a> {
    toks: &'t Tokens<'a>,
    at: usize,
    tables: Vec<TableB<'a>>,
}

/// Where a rule goes in its chain.
enum Place {
    End,
    Start,
    Before(usize),
    After(usize),
}

pub(super) fn load(toks: &Tokens<'_>) -> Res<Ruleset> {
    let mut s = Script {
        toks,
        at: 0,
        tables: Vec::new(),
    };
    while let Some(t) = s.peek() {
        if t.kind == Kind::Newline || t.is(";") {
            s.at += 1;
            continue;
        }
        s.command()?;
    }
    finish(toks, s.tables)
}

impl<'a> Script<'_, 'a> {
    fn peek(&self) -> Option<Token<'a>> {
        self.toks.toks.get(self.at).copied()
    }
    fn next(&mut self) -> Option<Token<'a>> {
        let t = self.peek();
        self.at += 1;
        t
    }
    fn last_line(&self) -> usize {
        self.toks
            .toks
            .get(self.at.saturating_sub(1))
            .map_or(1, |t| t.line)
    }
    fn word(&mut self, what: &str) -> Res<Token<'a>> {
        match self.next() {
            Some(t) if matches!(t.kind, Kind::Word | Kind::Str) => Ok(t),
            Some(t) if t.kind != Kind::Newline => Err(self
                .toks
                .error(&t, format!("expected {what}, found `{}`", t.text))),
            _ => Err(self
                .toks
                .error_at_end(self.last_line(), format!("expected {what}"))),
        }
    }
    /// A table's or chain's name: one the printer writes back as itself (a word, or a string
    /// that would read as one).
    fn name(&mut self, what: &str) -> Res<Token<'a>> {
        let t = self.word(what)?;
        self.check_name(&t)?;
        Ok(t)
    }

    fn check_name(&self, t: &Token<'_>) -> Res<()> {
        if !valid_name(t.text) {
            return Err(self
                .toks
                .error(t, format!("`{}` is not a name this model reads", t.text)));
        }
        Ok(())
    }

    fn expect(&mut self, s: &str) -> Res<()> {
        match self.next() {
            Some(t) if t.is(s) => Ok(()),
            Some(t) if t.kind != Kind::Newline => Err(self
                .toks
                .error(&t, format!("expected `{s}`, found `{}`", t.text))),
            _ => Err(self
                .toks
                .error_at_end(self.last_line(), format!("expected `{s}`"))),
        }
    }
    /// The end of a command: a newline, `;`, or the end of the input.
    fn end(&mut self) -> Res<()> {
        match self.peek() {
            None => Ok(()),
            Some(t) if t.kind == Kind::Newline || t.is(";") => {
                self.at += 1;
                Ok(())
            }
            Some(t) if t.is("}") => Ok(()),
            Some(t) => Err(self.toks.error(
                &t,
                format!("expected the end of the command, found `{}`", t.text),
            )),
        }
    }

    /// `[FAMILY] NAME`: the family defaults to `ip`, as nft's does.
    fn family_and_name(&mut self) -> Res<(NftFamily, Token<'a>)> {
        let t = self.word("a table name")?;
        let fam = match t.text {
            "ip" => Some(NftFamily::Ip),
            "ip6" => Some(NftFamily::Ip6),
            "inet" => Some(NftFamily::Inet),
            "arp" | "bridge" | "netdev" => {
                return Err(self.toks.error(
                    &t,
                    format!("nft family `{}` is not supported: a pod's connections pass the ip, ip6 and inet hooks", t.text),
                ))
            }
            _ => None,
        };
        match fam {
            Some(f)
                if self
                    .peek()
                    .is_some_and(|n| matches!(n.kind, Kind::Word | Kind::Str)) =>
            {
                Ok((f, self.name("a table name")?))
            }
            Some(_) => Err(self.toks.error_at_end(t.line, "expected a table name")),
            None => {
                self.check_name(&t)?;
                Ok((NftFamily::Ip, t))
            }
        }
    }

    fn table_index(&self, fam: NftFamily, name: &Token<'_>) -> Option<usize> {
        self.tables
            .iter()
            .position(|t| t.family == fam && t.name == name.text)
    }

    fn existing_table(&self, fam: NftFamily, name: &Token<'_>) -> Res<usize> {
        self.table_index(fam, name).ok_or_else(|| {
            self.toks
                .error(name, format!("no table `{} {}`", fam.name(), name.text))
        })
    }

    fn chain_index(&self, ti: usize, name: &Token<'_>) -> Res<usize> {
        self.tables
            .get(ti)
            .and_then(|t| t.chains.iter().position(|c| c.name == name.text))
            .ok_or_else(|| self.toks.error(name, format!("no chain `{}`", name.text)))
    }

    fn command(&mut self) -> Res<()> {
        let Some(verb) = self.next() else {
            return Ok(());
        };
        match verb.text {
            "table" => {
                let (fam, name) = self.family_and_name()?;
                let ti = self.add_table(fam, &name, false)?;
                self.table_block(ti)?;
                self.end()
            }
            "add" | "create" | "insert" | "flush" | "delete" | "destroy" => {
                let what = self.word("`table`, `chain` or `rule`")?;
                let create = verb.text == "create";
                match (verb.text, what.text) {
                    ("add" | "create", "table") => {
                        let (fam, name) = self.family_and_name()?;
                        let ti = self.add_table(fam, &name, create)?;
                        if self.peek().is_some_and(|t| t.is("{")) {
                            self.table_block(ti)?;
                        }
                        self.end()
                    }
                    ("flush", "table") => {
                        let (fam, name) = self.family_and_name()?;
                        let ti = self.existing_table(fam, &name)?;
                        if let Some(t) = self.tables.get_mut(ti) {
                            for c in &mut t.chains {
                                c.rules.clear();
                            }
                        }
                        self.end()
                    }
                    ("flush", "ruleset") => {
                        self.tables.clear();
                        self.end()
                    }
                    ("delete" | "destroy", "table") => {
                        let (fam, name) = self.family_and_name()?;
                        // `destroy` of a table that is not there is no error; `delete` is.
                        if verb.text == "delete" {
                            self.existing_table(fam, &name)?;
                        }
                        if let Some(ti) = self.table_index(fam, &name) {
                            self.tables.remove(ti);
                        }
                        self.end()
                    }
                    ("add" | "create", "chain") => {
                        let (fam, tname) = self.family_and_name()?;
                        let ti = self.existing_table(fam, &tname)?;
                        let cname = self.name("a chain name")?;
                        let ci = self.add_chain(ti, &cname, create)?;
                        if self.peek().is_some_and(|t| t.is("{")) {
                            self.at += 1;
                            self.chain_body(ti, ci, true)?;
                        }
                        self.end()
                    }
                    ("flush", "chain") => {
                        let (fam, tname) = self.family_and_name()?;
                        let ti = self.existing_table(fam, &tname)?;
                        let cname = self.name("a chain name")?;
                        let ci = self.chain_index(ti, &cname)?;
                        if let Some(c) = self.tables.get_mut(ti).and_then(|t| t.chains.get_mut(ci)) {
                            c.rules.clear();
                        }
                        self.end()
                    }
                    ("delete" | "destroy", "chain") => {
                        let (fam, tname) = self.family_and_name()?;
                        let ti = self.existing_table(fam, &tname)?;
                        let cname = self.name("a chain name")?;
                        let ci = self.chain_index(ti, &cname)?;
                        let used = self.tables.get(ti).is_some_and(|t| {
                            t.chains.iter().flat_map(|c| &c.rules).any(|r| {
                                r.target.as_ref().and_then(|t| t.chain()) == Some(cname.text)
                            })
                        });
                        let full = self
                            .tables
                            .get(ti)
                            .and_then(|t| t.chains.get(ci))
                            .is_some_and(|c| !c.rules.is_empty());
                        if used || full {
                            return Err(self.toks.error(&cname, format!("chain `{}` is not empty or is jumped to: nft refuses to delete it", cname.text)));
                        }
                        if let Some(t) = self.tables.get_mut(ti) {
                            t.chains.remove(ci);
                        }
                        self.end()
                    }
                    ("add" | "insert" | "create", "rule") => {
                        let (fam, tname) = self.family_and_name()?;
                        let ti = self.existing_table(fam, &tname)?;
                        let cname = self.name("a chain name")?;
                        let ci = self.chain_index(ti, &cname)?;
                        let mut place = if verb.text == "insert" { Place::Start } else { Place::End };
                        if self.peek().is_some_and(|t| t.is("index")) {
                            self.at += 1;
                            let n = self.word("an index")?;
                            let i: usize = n.text.parse().map_err(|_| {
                                self.toks.error(&n, format!("expected an index, found `{}`", n.text))
                            })?;
                            let len = self.rules_len(ti, ci);
                            if i >= len {
                                return Err(self.toks.error(&n, format!("index {i} is past the chain's {len} rules: nft refuses it")));
                            }
                            place = if verb.text == "insert" { Place::Before(i) } else { Place::After(i) };
                        } else if self.peek().is_some_and(|t| t.is("position") || t.is("handle")) {
                            let t = self.peek().unwrap_or(verb);
                            return Err(self.toks.error(&t, format!("`{}` refers to rule handles the kernel assigns; not supported (use `index`)", t.text)));
                        }
                        let rule = self.rule(fam)?;
                        if let Some(c) = self.tables.get_mut(ti).and_then(|t| t.chains.get_mut(ci)) {
                            let at = match place {
                                Place::End => c.rules.len(),
                                Place::Start => 0,
                                Place::Before(i) => i,
                                Place::After(i) => i + 1,
                            };
                            c.rules.insert(at.min(c.rules.len()), rule);
                        }
                        self.end()
                    }
                    _ => Err(self.toks.error(&what, format!("`{} {}` is not supported", verb.text, what.text))),
                }
            }
            "define" | "include" => Err(self.toks.error(&verb, format!("`{}` is not supported: give the script with its definitions expanded (`nft -f FILE; nft list ruleset`)", verb.text))),
            _ => Err(self.toks.error(&verb, format!("unknown nft command `{}`", verb.text))),
        }
    }

    fn rules_len(&self, ti: usize, ci: usize) -> usize {
        self.tables
            .get(ti)
            .and_then(|t| t.chains.get(ci))
            .map_or(0, |c| c.rules.len())
    }

    fn add_table(&mut self, fam: NftFamily, name: &Token<'a>, create: bool) -> Res<usize> {
        if let Some(ti) = self.table_index(fam, name) {
            if create {
                return Err(self
                    .toks
                    .error(name, format!("table `{} {}` exists", fam.name(), name.text)));
            }
            return Ok(ti);
        }
        self.tables.push(TableB {
            family: fam,
            name: name.text.to_string(),
            chains: Vec::new(),
        });
        Ok(self.tables.len() - 1)
    }

    fn add_chain(&mut self, ti: usize, name: &Token<'a>, create: bool) -> Res<usize> {
        let Some(t) = self.tables.get_mut(ti) else {
            return Err(self.toks.error(name, "no table"));
        };
        if let Some(ci) = t.chains.iter().position(|c| c.name == name.text) {
            if create {
                return Err(self
                    .toks
                    .error(name, format!("chain `{}` exists", name.text)));
            }
            return Ok(ci);
        }
        t.chains.push(ChainB {
            name: name.text.to_string(),
            base: None,
            rules: Vec::new(),
            at: *name,
        });
        Ok(t.chains.len() - 1)
    }

    /// `{ chain NAME { … } … }` after `table FAMILY NAME`.
    fn table_block(&mut self, ti: usize) -> Res<()> {
        self.expect("{")?;
        loop {
            let Some(t) = self.next() else {
                return Err(self
                    .toks
                    .error_at_end(self.last_line(), "expected `}` closing the table"));
            };
            if t.kind == Kind::Newline || t.is(";") {
                continue;
            }
            if t.is("}") {
                return Ok(());
            }
            match t.text {
                "chain" => {
                    let name = self.name("a chain name")?;
                    let ci = self.add_chain(ti, &name, false)?;
                    self.expect("{")?;
                    self.chain_body(ti, ci, false)?;
                }
                "flags" | "comment" => {
                    return Err(self
                        .toks
                        .error(&t, format!("table `{}` is not supported", t.text)))
                }
                _ => {
                    return Err(self
                        .toks
                        .error(&t, format!("expected `chain` or `}}`, found `{}`", t.text)))
                }
            }
        }
    }

    /// What follows a chain's `{`: `type … hook … priority … ;`, `policy …;`, and (in the block
    /// form) rules, up to the closing `}`. `spec_only`: `add chain`'s braces, which hold no rules.
    fn chain_body(&mut self, ti: usize, ci: usize, spec_only: bool) -> Res<()> {
        let fam = self.tables.get(ti).map_or(NftFamily::Ip, |t| t.family);
        loop {
            let Some(t) = self.peek() else {
                return Err(self
                    .toks
                    .error_at_end(self.last_line(), "expected `}` closing the chain"));
            };
            if t.kind == Kind::Newline || t.is(";") {
                self.at += 1;
                continue;
            }
            if t.is("}") {
                self.at += 1;
                return Ok(());
            }
            match t.text {
                "type" => {
                    self.at += 1;
                    self.base_spec(ti, ci)?;
                }
                "policy" => {
                    self.at += 1;
                    let p = self.word("`accept` or `drop`")?;
                    let policy = match p.text {
                        "accept" => Policy::Accept,
                        "drop" => Policy::Drop,
                        _ => {
                            return Err(self.toks.error(
                                &p,
                                format!("expected `accept` or `drop`, found `{}`", p.text),
                            ))
                        }
                    };
                    let chain = self.tables.get_mut(ti).and_then(|t| t.chains.get_mut(ci));
                    match chain.and_then(|c| c.base.as_mut()) {
                        Some((_, pol)) => *pol = policy,
                        None => {
                            return Err(self.toks.error(
                                &t,
                                "a policy needs a base chain (`type … hook … priority …;` first)",
                            ))
                        }
                    }
                }
                "comment" | "flags" | "devices" => {
                    return Err(self
                        .toks
                        .error(&t, format!("chain `{}` is not supported", t.text)))
                }
                _ if spec_only => {
                    return Err(self.toks.error(
                        &t,
                        format!("expected `type`, `policy` or `}}`, found `{}`", t.text),
                    ))
                }
                _ => {
                    let rule = self.rule(fam)?;
                    if let Some(c) = self.tables.get_mut(ti).and_then(|t| t.chains.get_mut(ci)) {
                        c.rules.push(rule);
                    }
                }
            }
        }
    }

    /// `type T hook H [device D] priority P` (after `type`).
    fn base_spec(&mut self, ti: usize, ci: usize) -> Res<()> {
        let ty_tok = self.word("a chain type")?;
        let ty = match ty_tok.text {
            "filter" => ChainType::Filter,
            "nat" => ChainType::Nat,
            "route" => ChainType::Route,
            _ => {
                return Err(self
                    .toks
                    .error(&ty_tok, format!("unknown chain type `{}`", ty_tok.text)))
            }
        };
        self.expect("hook")?;
        let h = self.word("a hook")?;
        let hook = match h.text {
            "prerouting" => Hook::Prerouting,
            "input" => Hook::Input,
            "forward" => Hook::Forward,
            "output" => Hook::Output,
            "postrouting" => Hook::Postrouting,
            "ingress" | "egress" => {
                return Err(self
                    .toks
                    .error(&h, format!("hook `{}` is not supported", h.text)))
            }
            _ => return Err(self.toks.error(&h, format!("unknown hook `{}`", h.text))),
        };
        self.expect("priority")?;
        let p = self.word("a priority")?;
        let mut priority = match p.text.parse::<i32>() {
            Ok(n) => n,
            Err(_) => standard_priority(p.text, hook).ok_or_else(|| {
                self.toks.error(
                    &p,
                    format!("unknown priority `{}` at hook {}", p.text, h.text),
                )
            })?,
        };
        // `mangle - 5`, `filter + 10`.
        if let Some(sign) = self.peek().filter(|t| t.is("+") || t.is("-")) {
            self.at += 1;
            let n = self.word("a number")?;
            let v: i32 = n.text.parse().map_err(|_| {
                self.toks
                    .error(&n, format!("expected a number, found `{}`", n.text))
            })?;
            priority = if sign.text == "+" {
                priority.saturating_add(v)
            } else {
                priority.saturating_sub(v)
            };
        }
        let base = BaseChain { ty, hook, priority };
        let Some(c) = self.tables.get_mut(ti).and_then(|t| t.chains.get_mut(ci)) else {
            return Ok(());
        };
        match &mut c.base {
            Some((old, _)) if *old != base => Err(self.toks.error(
                &ty_tok,
                format!("chain `{}` is already registered differently", c.name),
            )),
            Some(_) => Ok(()),
            None => {
                c.base = Some((base, Policy::Accept));
                Ok(())
            }
        }
    }

    /// The tokens of one rule, up to a newline, `;` or `}` outside braces, lowered.
    fn rule(&mut self, fam: NftFamily) -> Res<Rule> {
        let start = self.at;
        let mut depth = 0usize;
        while let Some(t) = self.peek() {
            if t.is("{") {
                depth += 1;
            } else if t.is("}") {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            } else if depth == 0 && (t.kind == Kind::Newline || t.is(";")) {
                break;
            }
            self.at += 1;
        }
        let toks = self.toks.toks.get(start..self.at).unwrap_or(&[]);
        if depth > 0 {
            let open = toks
                .iter()
                .rev()
                .find(|t| t.is("{"))
                .or(toks.first())
                .copied();
            return Err(match open {
                Some(t) => self.toks.error(&t, "`{` is never closed"),
                None => self
                    .toks
                    .error_at_end(self.last_line(), "`{` is never closed"),
            });
        }
        let Some(first) = toks.first() else {
            return Err(self.toks.error_at_end(self.last_line(), "expected a rule"));
        };
        // In the block form these words begin a chain's declarations, not a rule: a rule that
        // began with one would not read back as itself.
        if [
            "type", "policy", "comment", "flags", "devices", "chain", "table",
        ]
        .iter()
        .any(|w| first.is(w))
        {
            return Err(self
                .toks
                .error(first, format!("a rule cannot begin with `{}`", first.text)));
        }
        let mut r = expr::rule(self.toks, toks, fam)?;
        r.origin.line = u32::try_from(first.line).unwrap_or(0);
        r.origin.start = u32::try_from(first.start).unwrap_or(0);
        r.origin.end = u32::try_from(toks.last().map_or(first.end, |t| t.end)).unwrap_or(0);
        Ok(r)
    }
}

/// nft's names of the standard priorities for the ip, ip6 and inet families.
pub(super) fn standard_priority(name: &str, hook: Hook) -> Option<i32> {
    Some(match name {
        "raw" => -300,
        "mangle" => -150,
        "dstnat" if hook == Hook::Prerouting => -100,
        "filter" => 0,
        "security" => 50,
        "srcnat" if hook == Hook::Postrouting => 100,
        _ => return None,
    })
}

/// The iptables table whose part a base chain plays (see the module's documentation).
/// The table whose built-in chain iptables-nft registers exactly as `b`
/// ([`standard_base`]).
fn role(b: &BaseChain) -> Option<TableKind> {
    TableKind::SAVE_ORDER
        .into_iter()
        .find(|k| k.builtin_chains().contains(&b.hook) && standard_base(*k, b.hook) == *b)
}

/// Whether `name` is a table's or chain's name the printer writes back as itself (a word, or a
/// string that would read as one).
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "{};,\"#&|!<>=\\@$".contains(c))
}

/// The iptables table a base chain at no iptables table's place is labelled with: `type nat` is
/// nat's, `type route` mangle's, `type filter` by priority (raw's up to -200, where connection
/// tracking runs; mangle's below -100; filter's below 100; security's above).
fn place(b: &BaseChain) -> TableKind {
    match b.ty {
        ChainType::Nat => TableKind::Nat,
        ChainType::Route => TableKind::Mangle,
        ChainType::Filter if b.priority <= -200 => TableKind::Raw,
        ChainType::Filter if b.priority < -100 => TableKind::Mangle,
        ChainType::Filter if b.priority < 100 => TableKind::Filter,
        ChainType::Filter => TableKind::Security,
    }
}

fn finish(toks: &Tokens<'_>, tables: Vec<TableB<'_>>) -> Res<Ruleset> {
    let mut rs = Ruleset::default();
    let mut parts: Vec<(NftFamily, TableKind, String)> = Vec::new();
    for (seq, t) in tables.into_iter().enumerate() {
        // The table's part, a label for hits and messages: the first base chain's iptables
        // table where it sits where iptables-nft registers one, else by its type and priority
        // (`place`). Where each base chain runs is its own type, hook and priority
        // (`eval::hook_plan`).
        let mut kind = None;
        for c in &t.chains {
            let Some((b, _)) = &c.base else { continue };
            if b.ty == ChainType::Nat && b.priority <= -200 {
                return Err(toks.error(&c.at, format!(
                    "nat base chain `{}` at priority {}: the kernel refuses a nat chain before connection tracking (-200)",
                    c.name, b.priority
                )));
            }
            kind = kind.or(Some(role(b).unwrap_or_else(|| place(b))));
        }
        // A table without base chains is never run; it is held in a part no other table uses.
        let kind = match kind {
            Some(k) => k,
            None => TableKind::SAVE_ORDER
                .into_iter()
                .find(|k| {
                    !parts
                        .iter()
                        .any(|(f, pk, _)| pk == k && overlaps(*f, t.family))
                })
                .unwrap_or(TableKind::Security),
        };
        // Several tables at one place run newest first (`eval::hook_plan`): the tables are
        // kept in the order they were created, which is the script's (and the listing's).
        parts.push((t.family, kind, t.name.clone()));
        // A jump or goto to a chain the table lacks: nft refuses the rule (No such file or
        // directory), so no namespace holds it.
        for c in &t.chains {
            for r in &c.rules {
                let Some(to) = r.target.as_ref().and_then(Target::chain) else {
                    continue;
                };
                if !t.chains.iter().any(|o| o.name == to) {
                    let at = Token {
                        kind: Kind::Word,
                        text: "",
                        line: r.origin.line as usize,
                        start: r.origin.start as usize,
                        end: r.origin.end as usize,
                    };
                    return Err(toks.error(
                        &at,
                        format!(
                            "chain `{to}` does not exist in table `{} {}`",
                            t.family.name(),
                            t.name
                        ),
                    ));
                }
            }
        }
        let table = Table {
            kind,
            chains: t
                .chains
                .into_iter()
                .map(|c| Chain {
                    name: c.name,
                    policy: c.base.map(|(_, p)| p),
                    counters: Counters::default(),
                    rules: c.rules,
                    base: c.base.map(|(b, _)| b),
                })
                .collect(),
            nft: Some(NftTable {
                family: t.family,
                name: t.name,
                seq: u32::try_from(seq).unwrap_or(u32::MAX),
            }),
        };
        if t.family.holds(Family::Ipv4) {
            rs.ipv4.push(table.clone());
        }
        if t.family.holds(Family::Ipv6) {
            rs.ipv6.push(table);
        }
    }
    Ok(rs)
}

fn overlaps(a: NftFamily, b: NftFamily) -> bool {
    [Family::Ipv4, Family::Ipv6]
        .into_iter()
        .any(|f| a.holds(f) && b.holds(f))
}
