//! The arguments of one rule (everything after `-A CHAIN`) into a typed [`Rule`].
//!
//! Options are dispatched as iptables does: to the newest loaded match that knows the option,
//! then to the target, then, for `--dport`-style options after `-p tcp`/`-p udp` with no such
//! match loaded, to an implicit protocol match appended at the end. A known module given an
//! option the model does not interpret keeps its arguments verbatim as [`Match::Unknown`].

use std::net::IpAddr;

use smallvec::{smallvec, SmallVec};

use crate::ast::*;
use crate::matches::{unknown, Finish, Module, OptArgs, Take};
use crate::parse::lex::Token;
use crate::targets::{self, Given, TargetDef, TARGETS};

pub(crate) mod values;

use values::*;

/// A problem within a rule, at a byte range of its line.
#[derive(Debug, Clone)]
pub struct RuleError {
    /// Byte range in the line.
    pub start: usize,
    /// End of that range.
    pub end: usize,
    /// What is wrong.
    pub message: String,
    /// A hint.
    pub help: Option<String>,
}

/// What parsing a rule's parts returns.
pub type Res<T> = Result<T, RuleError>;

/// An error at a token.
pub(crate) fn err_at(t: &Token, message: impl Into<String>) -> RuleError {
    RuleError {
        start: t.start,
        end: t.end,
        message: message.into(),
        help: None,
    }
}

/// Where the rule goes, which decides what it may contain.
pub struct RuleContext<'a> {
    /// The family of the table.
    pub family: Family,
    /// The table.
    pub table: TableKind,
    /// Whether a user chain of this name exists in the table at this point.
    pub chain_exists: &'a dyn Fn(&str) -> bool,
    /// Another table of the same family that holds a user chain of this name at this point (a
    /// rule can jump only within its own table; the error says where the chain is).
    pub chain_elsewhere: &'a dyn Fn(&str) -> Option<TableKind>,
    /// The hook, when the rule goes into a built-in chain.
    pub hook: Option<Hook>,
}

/// Generic (non-extension) options.
const GENERIC: &[&str] = &[
    "-s",
    "--source",
    "--src",
    "-d",
    "--destination",
    "--dst",
    "-i",
    "--in-interface",
    "-o",
    "--out-interface",
    "-p",
    "--protocol",
    "-f",
    "--fragment",
    "-m",
    "--match",
    "-j",
    "--jump",
    "-g",
    "--goto",
    "-c",
    "--set-counters",
    "-4",
    "--ipv4",
    "-6",
    "--ipv6",
];

fn is_generic(s: &str) -> bool {
    GENERIC.contains(&s)
}

/// A match being built.
struct MatchB<'t> {
    name: &'t str,
    /// Its module in the table, found once (none for a module the model does not know).
    module: Option<&'static Module>,
    at: &'t Token<'t>,
    /// The arguments it took, as ranges of the rule's tokens (with a `!` before the first when
    /// negated): the match's verbatim text when the model keeps it verbatim. Ranges, so that a
    /// match the model reads costs no string.
    raw: SmallVec<[(bool, usize, usize); 2]>,
    unmodelled: bool,
    m: Match,
    /// Options given once already (iptables refuses repeats): bit i for the module's i-th
    /// option.
    seen: u64,
}

/// A rule's source and destination, one combination of its address lists.
type Ends = (Option<Neg<Cidr>>, Option<Neg<Cidr>>);

/// A rule's matches while it is read: most rules have up to four.
type Matches<'t> = SmallVec<[MatchB<'t>; 4]>;

/// The token stream of one rule.
pub(crate) struct Args<'t> {
    toks: &'t [Token<'t>],
    pos: usize,
}

impl<'t> Args<'t> {
    fn peek(&self) -> Option<&'t Token<'t>> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<&'t Token<'t>> {
        let t = self.toks.get(self.pos);
        if t.is_some() {
            self.pos += 1;
        }
        t
    }
    /// The value of option `opt`: the next argument, whatever it is (as getopt takes it).
    pub(crate) fn value(&mut self, opt: &Token<'_>) -> Res<&'t Token<'t>> {
        match self.toks.get(self.pos) {
            Some(t) => {
                self.pos += 1;
                Ok(t)
            }
            None => Err(err_at(opt, format!("option `{}` needs a value", opt.text))),
        }
    }
}

/// The rules one command adds: one, or one per source × destination when `-s` or `-d` lists
/// several addresses.
#[derive(Debug, Clone)]
pub enum Expanded {
    /// The common case, without a vector.
    One(Rule),
    /// In iptables' order.
    Many(Vec<Rule>),
}

impl Expanded {
    /// The rules, to edit.
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Rule> {
        match self {
            Expanded::One(r) => std::slice::from_mut(r).iter_mut(),
            Expanded::Many(v) => v.iter_mut(),
        }
    }
}

impl IntoIterator for Expanded {
    type Item = Rule;
    type IntoIter = std::iter::Chain<std::option::IntoIter<Rule>, std::vec::IntoIter<Rule>>;
    fn into_iter(self) -> Self::IntoIter {
        match self {
            Expanded::One(r) => Some(r).into_iter().chain(Vec::new()),
            Expanded::Many(v) => None.into_iter().chain(v),
        }
    }
}

/// Parses the arguments of one rule. Several rules come back when `-s` or `-d` lists several
/// addresses (iptables adds one rule per combination, in order).
pub fn parse_rule<'t>(ctx: &RuleContext<'_>, toks: &'t [Token<'t>]) -> Res<Expanded> {
    let mut rule = Rule::default();
    let more = parse_rule_into(ctx, toks, &mut rule)?;
    if more.is_empty() {
        return Ok(Expanded::One(rule));
    }
    let mut all = Vec::with_capacity(more.len() + 1);
    all.push(rule);
    all.extend(more);
    Ok(Expanded::Many(all))
}

/// [`parse_rule`] into `rule` (a default rule, where it is to stay: the loader's chain, so that
/// the 176-byte rule is not moved there): the first of the rules, the others returned.
pub(crate) fn parse_rule_into<'t>(
    ctx: &RuleContext<'_>,
    toks: &'t [Token<'t>],
    rule: &mut Rule,
) -> Res<Vec<Rule>> {
    let mut a = Args { toks, pos: 0 };
    let mut srcs: Addresses = SmallVec::new();
    let mut dsts: Addresses = SmallVec::new();
    let mut src_neg = false;
    let mut dst_neg = false;
    let mut matches: Matches<'_> = SmallVec::new();
    let mut target: Option<TargetB> = None;
    let mut pending_neg: Option<&Token<'_>> = None;
    // The generic options given so far (`-s`, `-d`, `-i`, `-o`, `-p`, `-f`), by their key.
    let mut seen_generic: [&'static str; 6] = [""; 6];
    // The rule's `-p`, wherever it stands (see `owned_options`).
    let final_proto = toks.iter().enumerate().find_map(|(i, t)| {
        let is_p = matches!(t.text.as_str(), "-p" | "--protocol");
        let negated = i > 0 && toks.get(i - 1).is_some_and(|p| p.text == "!");
        if is_p && !negated {
            toks.get(i + 1)
                .and_then(|v| parse_protocol(v).ok().flatten())
        } else {
            None
        }
    });
    // The first address list with more than one entry, for the error about `!`.
    let mut addr_tok: Option<&Token<'_>> = None;

    while let Some(t) = a.next() {
        let opt = t.text.as_str();
        if opt == "!" {
            if pending_neg.is_some() {
                return Err(err_at(t, "`!` given twice"));
            }
            pending_neg = Some(t);
            continue;
        }
        let negated = pending_neg.take().is_some();
        let mut once = |key: &'static str| -> Res<()> {
            if seen_generic.contains(&key) {
                return Err(err_at(t, format!("option `{opt}` given more than once")));
            }
            if let Some(free) = seen_generic.iter_mut().find(|k| k.is_empty()) {
                *free = key;
            }
            Ok(())
        };
        match opt {
            "-s" | "--source" | "--src" | "-d" | "--destination" | "--dst" => {
                let is_src = matches!(opt, "-s" | "--source" | "--src");
                once(if is_src { "-s" } else { "-d" })?;
                let v = a.value(t)?;
                let list = parse_addresses(ctx.family, v)?;
                if list.len() > 1 && addr_tok.is_none() {
                    addr_tok = Some(v);
                }
                if is_src {
                    srcs = list;
                    src_neg = negated;
                } else {
                    dsts = list;
                    dst_neg = negated;
                }
            }
            "-i" | "--in-interface" | "-o" | "--out-interface" => {
                let is_in = matches!(opt, "-i" | "--in-interface");
                once(if is_in { "-i" } else { "-o" })?;
                let v = a.value(t)?;
                match (is_in, ctx.hook) {
                    (true, Some(h @ (Hook::Output | Hook::Postrouting))) => {
                        return Err(err_at(t, format!("`-i` cannot be used in {h}")).with_help(
                            "packets in OUTPUT and POSTROUTING have no input interface",
                        ));
                    }
                    (false, Some(h @ (Hook::Prerouting | Hook::Input))) => {
                        return Err(err_at(t, format!("`-o` cannot be used in {h}")).with_help(
                            "packets in PREROUTING and INPUT have no output interface yet",
                        ));
                    }
                    _ => {}
                }
                let iface = parse_iface(v)?;
                let val = iface.map(|i| Box::new(Neg::new(negated, i)));
                if is_in {
                    rule.in_iface = val;
                } else {
                    rule.out_iface = val;
                }
            }
            "-p" | "--protocol" => {
                once("-p")?;
                let v = a.value(t)?;
                let p = parse_protocol(v)?;
                rule.proto = p.map(|p| Neg::new(negated, p));
            }
            "-f" | "--fragment" => {
                once("-f")?;
                if ctx.family == Family::Ipv6 {
                    return Err(err_at(t, "`-f` is not supported by ip6tables"));
                }
                rule.fragment = Some(!negated);
            }
            "-4" | "--ipv4" | "-6" | "--ipv6" => {
                let want = if matches!(opt, "-4" | "--ipv4") {
                    Family::Ipv4
                } else {
                    Family::Ipv6
                };
                if want != ctx.family {
                    return Err(err_at(
                        t,
                        format!(
                            "`{opt}` in a rule for {}",
                            ctx.family.save_tool().trim_end_matches("-save")
                        ),
                    ));
                }
            }
            "-c" | "--set-counters" => {
                let p = a.value(t)?;
                let b = a.value(t)?;
                rule.counters = Counters {
                    packets: parse_u64(p)?,
                    bytes: parse_u64(b)?,
                };
            }
            "-m" | "--match" => {
                if negated {
                    return Err(err_at(t, "`!` cannot negate `-m`"));
                }
                let v = a.value(t)?;
                let name = v.text.as_str();
                match Module::named(name) {
                    Some(module) => matches.push(MatchB {
                        name,
                        module: Some(module),
                        at: v,
                        raw: SmallVec::new(),
                        unmodelled: false,
                        m: (module.new)(),
                        seen: 0,
                    }),
                    None => {
                        // An unknown module: its arguments run up to the next generic option
                        // or option that a match already loaded (or `-p tcp`'s implicit match)
                        // owns.
                        let owned = owned_options(&matches, toks, final_proto);
                        let from = a.pos;
                        collect_verbatim(&mut a, &owned);
                        check_verbatim_family(
                            ctx.family,
                            unknown::address_options(name),
                            a.toks.get(from..a.pos).unwrap_or(&[]),
                        )?;
                        if !unknown::is_module_name(name) {
                            return Err(err_at(v, format!("`{name}` is not a match module name")));
                        }
                        matches.push(MatchB {
                            name,
                            module: None,
                            at: v,
                            raw: smallvec![(false, from, a.pos)],
                            unmodelled: true,
                            m: Match::Unknown {
                                name: name.to_string(),
                                args: Vec::new(),
                            },
                            seen: 0,
                        });
                    }
                }
            }
            "-j" | "--jump" | "-g" | "--goto" => {
                if negated {
                    return Err(err_at(t, format!("`!` cannot negate `{opt}`")));
                }
                if target.is_some() {
                    return Err(err_at(t, "a rule can have only one target"));
                }
                let v = a.value(t)?;
                let goto = matches!(opt, "-g" | "--goto");
                rule.origin.start = u32::try_from(v.start).unwrap_or(u32::MAX);
                rule.origin.end = u32::try_from(v.end).unwrap_or(u32::MAX);
                let owned = || owned_options(&matches, toks, final_proto);
                target = Some(start_target(ctx, v, goto, &mut a, &owned)?);
            }
            _ if opt.starts_with('-') && opt.len() > 1 => {
                dispatch_option(ctx, rule, &mut matches, &mut target, t, negated, &mut a)?;
            }
            _ => {
                return Err(err_at(t, format!("unexpected argument `{opt}`"))
                    .with_help("options start with `-`; a value belongs after its option"));
            }
        }
    }
    if let Some(n) = pending_neg {
        return Err(err_at(n, "`!` at the end of the rule negates nothing"));
    }
    if let Some(at) = addr_tok.filter(|_| src_neg || dst_neg) {
        return Err(err_at(
            at,
            "`!` cannot be used with several source or destination addresses",
        )
        .with_help("write one rule per address, or negate a single prefix"));
    }

    // Finish matches.
    rule.matches.reserve_exact(matches.len());
    for mb in matches {
        let m = finish_match(mb, rule, toks)?;
        rule.matches.push(m);
    }
    if let Some(tb) = target {
        rule.target = Some(finish_target(ctx, tb, rule)?);
    }

    // One rule per source × destination, in iptables' order; the rule itself when there is
    // one of each at most (the common case: no copy).
    if srcs.len() <= 1 && dsts.len() <= 1 {
        rule.src = srcs
            .first()
            .filter(|c| !c.is_any() || src_neg)
            .map(|c| Neg::new(src_neg, *c));
        rule.dst = dsts
            .first()
            .filter(|c| !c.is_any() || dst_neg)
            .map(|c| Neg::new(dst_neg, *c));
        return Ok(Vec::new());
    }
    let srcs: Vec<Option<Cidr>> = if srcs.is_empty() {
        vec![None]
    } else {
        srcs.into_iter().map(Some).collect()
    };
    let dsts: Vec<Option<Cidr>> = if dsts.is_empty() {
        vec![None]
    } else {
        dsts.into_iter().map(Some).collect()
    };
    let combos: Vec<Ends> = srcs
        .iter()
        .flat_map(|s| dsts.iter().map(move |d| (*s, *d)))
        .map(|(s, d)| {
            (
                s.filter(|c| !c.is_any() || src_neg)
                    .map(|c| Neg::new(src_neg, c)),
                d.filter(|c| !c.is_any() || dst_neg)
                    .map(|c| Neg::new(dst_neg, c)),
            )
        })
        .collect();
    let mut out = Vec::with_capacity(combos.len().saturating_sub(1));
    for &(s, d) in combos.iter().skip(1) {
        let mut r = rule.clone();
        r.src = s;
        r.dst = d;
        out.push(r);
    }
    if let Some(&(s, d)) = combos.first() {
        rule.src = s;
        rule.dst = d;
    }
    Ok(out)
}

/// The options that known matches own (loaded so far, or named anywhere in the rule), and those
/// of the implicit match of `-p tcp`/`-p udp`.
///
/// The protocol is the rule's final `-p`, not the one seen so far: the canonical print puts `-p`
/// first, and the split of arguments must come out the same when the print is read back.
fn owned_options(
    matches: &[MatchB<'_>],
    toks: &[Token<'_>],
    final_proto: Option<Protocol>,
) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    for mb in matches {
        v.extend_from_slice(mb.module.map_or(&[][..], |m| m.options));
    }
    // Every module the rule loads, wherever it stands.
    let modules = toks.windows(2).filter_map(|w| match w {
        [m, name] if matches!(m.text.as_str(), "-m" | "--match") => Some(name.text.as_str()),
        _ => None,
    });
    // Modules loaded later in the rule own their options too: the print puts every match
    // before the target, so an option a later module knows must not become an earlier verbatim
    // extension's argument (iptables itself refuses an option before its module is loaded).
    for m in modules {
        v.extend_from_slice(Module::options_of(m));
    }
    if let Some(implicit) = final_proto.and_then(Module::implicit) {
        v.extend_from_slice(implicit.options);
    }
    v
}

/// Checks the family of the addresses among `toks` (a verbatim module's arguments, each option
/// followed by its value) that follow one of `opts`, the module's options whose value is an
/// address (a module's `ADDRESS_OPTIONS`, or [`unknown::ADDRESS_OPTIONS`]).
fn check_verbatim_family(family: Family, opts: &[&str], toks: &[Token<'_>]) -> Res<()> {
    if opts.is_empty() {
        return Ok(());
    }
    for pair in toks.windows(2) {
        let [opt, val] = pair else { continue };
        if !opts.contains(&opt.text.as_str()) {
            continue;
        }
        for part in val.text.split('-') {
            let addr = part.split('/').next().unwrap_or(part);
            match (family, addr.parse::<IpAddr>()) {
                (Family::Ipv4, Ok(IpAddr::V6(_))) => {
                    return Err(err_at(val, format!("IPv6 address `{addr}` in an IPv4 rule"))
                        .with_help("IPv6 rules belong to ip6tables (the second block of a file, after `ip6tables-save`)"));
                }
                (Family::Ipv6, Ok(IpAddr::V4(_))) => {
                    return Err(err_at(
                        val,
                        format!("IPv4 address `{addr}` in an IPv6 rule"),
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Takes the arguments of an extension the model does not interpret: up to the next generic
/// option or option `owned` by another match (with its `!`).
fn collect_verbatim(a: &mut Args<'_>, owned: &[&str]) {
    let stops = |t: &str| is_generic(t) || owned.contains(&t);
    while let Some(n) = a.peek() {
        if stops(&n.text) {
            break;
        }
        // A `!` belongs to what follows it: the next option, another `!`, or nothing (errors
        // the caller reports), never to the verbatim arguments, whose print would put it before
        // whatever comes next (`-j`, or the end of the rule).
        if n.text == "!"
            && a.toks
                .get(a.pos + 1)
                .is_none_or(|x| stops(&x.text) || x.text == "!")
        {
            break;
        }
        a.pos += 1;
    }
}

/// The texts of `toks` in the ranges of `raw`, each range led by `!` when negated.
fn texts(toks: &[Token<'_>], raw: &[(bool, usize, usize)]) -> Vec<String> {
    let mut out = Vec::new();
    for &(negated, from, to) in raw {
        if negated {
            out.push("!".to_string());
        }
        out.extend(
            toks.get(from..to)
                .unwrap_or(&[])
                .iter()
                .map(|t| t.text.as_str().to_owned()),
        );
    }
    out
}

/// Adds a hint to an error.
pub(crate) trait WithHelp {
    /// The error with hint `h`.
    fn with_help(self, h: impl Into<String>) -> Self;
}
impl WithHelp for RuleError {
    fn with_help(mut self, h: impl Into<String>) -> Self {
        self.help = Some(h.into());
        self
    }
}

fn dispatch_option<'t>(
    ctx: &RuleContext<'_>,
    rule: &Rule,
    matches: &mut Matches<'t>,
    target: &mut Option<TargetB<'t>>,
    t: &'t Token<'t>,
    negated: bool,
    a: &mut Args<'t>,
) -> Res<()> {
    let opt = t.text.as_str();
    // Newest loaded match first.
    for mb in matches.iter_mut().rev() {
        let Some(module) = mb.module else {
            continue;
        };
        if module.options.contains(&opt) {
            return apply_match_option(module, mb, t, negated, a, ctx);
        }
    }
    if let Some(tb) = target.as_mut() {
        if let Some(def) = tb.def.filter(|d| d.options.contains(&opt)) {
            if def.port_options.contains(&opt) {
                tb.proto_at_ports = Some(rule.proto);
            }
            return apply_target_option(def, tb, t, negated, a);
        }
    }
    // The implicit protocol match of `-p tcp --dport 80`.
    if let Some(p) = &rule.proto {
        if let Some(module) = Module::implicit(p.value) {
            if module.options.contains(&opt) && !p.negated {
                matches.push(MatchB {
                    name: module.name,
                    module: Some(module),
                    at: t,
                    raw: SmallVec::new(),
                    unmodelled: false,
                    m: (module.new)(),
                    seen: 0,
                });
                if let Some(mb) = matches.last_mut() {
                    return apply_match_option(module, mb, t, negated, a, ctx);
                }
            }
        }
    }
    // Unknown: say what was meant, naming whose option the suggestion is.
    let mut known: Vec<(&str, String)> = GENERIC.iter().map(|g| (*g, String::new())).collect();
    let mut owner = String::new();
    if let Some(implicit) = rule
        .proto
        .filter(|p| !p.negated)
        .and_then(|p| Module::implicit(p.value))
    {
        owner = format!(" for match `{}`", implicit.name);
        known.extend(implicit.options.iter().map(|o| (*o, owner.clone())));
    }
    for mb in matches.iter() {
        owner = format!(" for match `{}`", mb.name);
        known.extend(
            mb.module
                .map_or(&[][..], |m| m.options)
                .iter()
                .map(|o| (*o, owner.clone())),
        );
    }
    if let Some(tb) = target.as_ref() {
        let o = format!(" for target `{}`", tb.name);
        known.extend(
            TargetDef::options_of(tb.name)
                .iter()
                .map(|x| (*x, o.clone())),
        );
        if owner.is_empty() {
            owner = o;
        }
    }
    let names: Vec<&str> = known.iter().map(|(k, _)| *k).collect();
    let mut e = err_at(t, String::new());
    if let Some(s) = did_you_mean(opt, &names) {
        let whose = known
            .iter()
            .find(|(k, _)| *k == s)
            .map_or(owner.as_str(), |(_, o)| o.as_str());
        e.message = format!("unknown option `{opt}`{whose} (did you mean `{s}`?)");
    } else {
        e.message = format!("unknown option `{opt}`{owner}");
        if crate::matches::PORT_OPTIONS.contains(&opt) {
            e.help =
                Some("port options need `-p tcp` or `-p udp` (or `-m tcp`/`-m udp`) first".into());
        }
    }
    Err(e)
}

/// The closest known option, when it is close enough to be a typo.
fn did_you_mean<'a>(opt: &str, known: &[&'a str]) -> Option<&'a str> {
    let mut best: Option<(&str, usize)> = None;
    for k in known {
        if opt.len().abs_diff(k.len()) > 2 {
            continue;
        }
        let d = levenshtein(opt, k);
        if d <= 2 && best.is_none_or(|(_, bd)| d < bd) {
            best = Some((k, d));
        }
    }
    best.map(|(k, _)| k)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

fn apply_match_option<'t>(
    module: &Module,
    mb: &mut MatchB<'t>,
    t: &'t Token<'t>,
    negated: bool,
    a: &mut Args<'t>,
    ctx: &RuleContext<'_>,
) -> Res<()> {
    let opt = t.text.as_str();
    let key = module.key(opt);
    let bit = module
        .options
        .iter()
        .position(|o| *o == key)
        .map_or(0, |i| 1u64 << (i % 64));
    if mb.seen & bit != 0 {
        let message = match module.repeated.iter().find(|(k, _)| *k == key) {
            Some((_, m)) => (*m).to_string(),
            None => format!(
                "option `{opt}` given more than once for match `{}`",
                mb.name
            ),
        };
        return Err(err_at(t, message));
    }
    mb.seen |= bit;
    let start = a.pos;
    match mb.m.option(&mut OptArgs::new(t, negated, ctx.family, a))? {
        Take::Done => {}
        Take::Unmodelled(n) => {
            mb.unmodelled = true;
            for _ in 0..n {
                a.value(t)?;
            }
            let taken = a.toks.get(start.saturating_sub(1)..a.pos).unwrap_or(&[]);
            check_verbatim_family(ctx.family, module.address_options, taken)?;
        }
        Take::NotMine => {
            return Err(err_at(
                t,
                format!("unknown option `{opt}` for match `{}`", mb.name),
            ))
        }
    }
    mb.raw.push((negated, start.saturating_sub(1), a.pos));
    Ok(())
}

/// The match as read, after its module's checks; kept verbatim when an option was not
/// interpreted.
fn finish_match(mb: MatchB<'_>, rule: &Rule, toks: &[Token<'_>]) -> Res<Match> {
    if mb.unmodelled {
        return Ok(Match::Unknown {
            name: mb.name.to_string(),
            args: texts(toks, &mb.raw),
        });
    }
    let cx = Finish {
        at: mb.at,
        name: mb.name,
        proto: rule.proto.filter(|p| !p.negated).map(|p| p.value),
        options: mb.module.map_or(&[][..], |m| m.options),
        seen: mb.seen,
    };
    mb.m.finish(&cx)?;
    Ok(mb.m)
}

// ----- targets -----

/// A target being read: its options are gathered, then its [`TargetDef`]'s `finish` builds it.
struct TargetB<'t> {
    /// `-p` as it stood when an option carrying ports was read (iptables checks it then).
    proto_at_ports: Option<Option<Neg<Protocol>>>,
    name: &'t str,
    /// The target's definition when `name` is one (found once).
    def: Option<&'static TargetDef>,
    at: &'t Token<'t>,
    goto: bool,
    raw: Vec<String>,
    unmodelled: bool,
    /// Each option given: its name, its values and the token of its last value.
    vals: SmallVec<[(&'t str, &'t [Token<'t>], &'t Token<'t>); 2]>,
}

fn start_target<'t>(
    ctx: &RuleContext<'_>,
    v: &'t Token<'t>,
    goto: bool,
    a: &mut Args<'t>,
    owned: &dyn Fn() -> Vec<&'static str>,
) -> Res<TargetB<'t>> {
    let name = v.text.as_str();
    let def = TargetDef::named(name);
    let mut tb = TargetB {
        proto_at_ports: None,
        name,
        def,
        at: v,
        goto,
        raw: Vec::new(),
        unmodelled: false,
        vals: SmallVec::new(),
    };
    if goto || def.is_none() {
        if (ctx.chain_exists)(name) {
            return Ok(tb);
        }
        if let Some(other) = (ctx.chain_elsewhere)(name) {
            let verb = if goto { "goto" } else { "jump" };
            return Err(err_at(
                v,
                format!(
                    "{verb} to chain `{name}` of table `{other}` from table `{}`",
                    ctx.table
                ),
            )
            .with_help(format!(
                "a rule can only jump to a chain of its own table; declare `{name}` in `*{}` too",
                ctx.table
            )));
        }
        if goto {
            return Err(
                err_at(v, format!("goto to undefined chain `{name}`")).with_help(format!(
                    "declare the chain first (`:{name} - [0:0]` or `-N {name}`)"
                )),
            );
        }
        if targets::unknown::OTHER_TARGETS.contains(&name) {
            tb.unmodelled = true;
            let from = a.pos;
            collect_verbatim(a, &owned());
            tb.raw = texts(a.toks, &[(false, from, a.pos)]);
            return Ok(tb);
        }
        let mut e = err_at(v, format!("jump to undefined chain `{name}`"));
        let upper = name.to_ascii_uppercase();
        let builtins: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
        if let Some(s) = did_you_mean(&upper, &builtins) {
            e.help = Some(format!("did you mean the target `{s}`? otherwise declare the chain first (`:{name} - [0:0]` or `-N {name}`)"));
        } else {
            e.help = Some(format!(
                "declare the chain first (`:{name} - [0:0]` or `-N {name}`)"
            ));
        }
        return Err(e);
    }
    Ok(tb)
}

fn apply_target_option<'t>(
    def: &TargetDef,
    tb: &mut TargetB<'t>,
    t: &'t Token<'t>,
    negated: bool,
    a: &mut Args<'t>,
) -> Res<()> {
    let opt = t.text.as_str();
    if negated {
        return Err(err_at(t, format!("`!` cannot negate `{opt}`")));
    }
    if tb.vals.iter().any(|(o, ..)| *o == opt) {
        return Err(err_at(
            t,
            format!(
                "option `{opt}` given more than once for target `{}`",
                tb.name
            ),
        ));
    }
    let from = a.pos;
    let mut at = t;
    for _ in 0..def.arity(opt) {
        at = a.value(t)?;
    }
    if def.verbatim.contains(&opt) {
        tb.unmodelled = true;
    }
    tb.vals
        .push((opt, a.toks.get(from..a.pos).unwrap_or(&[]), at));
    Ok(())
}

fn finish_target(ctx: &RuleContext<'_>, tb: TargetB<'_>, rule: &Rule) -> Res<Target> {
    if tb.goto {
        return Ok(Target::Goto {
            chain: tb.name.to_string(),
        });
    }
    if tb.unmodelled {
        // The arguments as given: those an unknown target took, or each option with its
        // values.
        let mut args = tb.raw;
        for (opt, vals, _) in tb.vals {
            args.push(opt.to_string());
            args.extend(vals.iter().map(|v| v.text.as_str().to_owned()));
        }
        return Ok(Target::Unknown {
            name: tb.name.to_string(),
            args,
        });
    }
    let Some(def) = tb.def else {
        return Ok(Target::Jump {
            chain: tb.name.to_string(),
        });
    };
    let given = Given {
        name: tb.name,
        at: tb.at,
        vals: &tb.vals,
        family: ctx.family,
        proto: rule.proto.filter(|p| !p.negated).map(|p| p.value),
        proto_then: tb
            .proto_at_ports
            .unwrap_or(rule.proto)
            .filter(|p| !p.negated)
            .map(|p| p.value),
    };
    (def.finish)(&given)
}
