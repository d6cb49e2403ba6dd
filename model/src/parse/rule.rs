//! The arguments of one rule (everything after `-A CHAIN`) into a typed [`Rule`].
//!
//! Options are dispatched as iptables does: to the newest loaded match that knows the option,
//! then to the target, then, for `--dport`-style options after `-p tcp`/`-p udp` with no such
//! match loaded, to an implicit protocol match appended at the end. A known module given an
//! option the model does not interpret keeps its arguments verbatim as [`Match::Unknown`].

use std::net::IpAddr;

use crate::ast::*;
use crate::matches::{unknown, Finish, Module, OptArgs, Take};
use crate::parse::lex::Token;

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

/// Names of target extensions that exist in netfilter but that the model does not interpret: a
/// `-j` to one of these is an unknown target, not a jump to an undeclared chain.
const OTHER_TARGETS: &[&str] = &[
    "AUDIT",
    "CHECKSUM",
    "CLASSIFY",
    "CLUSTERIP",
    "CONNSECMARK",
    "DSCP",
    "ECN",
    "HL",
    "HMARK",
    "IDLETIMER",
    "LED",
    "NETMAP",
    "NFQUEUE",
    "QUEUE",
    "RATEEST",
    "SECMARK",
    "SET",
    "SYNPROXY",
    "TCPMSS",
    "TCPOPTSTRIP",
    "TEE",
    "TOS",
    "TRACE",
    "TTL",
    "ULOG",
    "IPMARK",
    "BALANCE",
];

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
struct MatchB {
    name: String,
    at: Token,
    raw: Vec<String>,
    unmodelled: bool,
    m: Match,
    /// Options given once already (iptables refuses repeats).
    seen: Vec<&'static str>,
}

/// The token stream of one rule.
pub(crate) struct Args<'t> {
    toks: &'t [Token],
    pos: usize,
}

impl<'t> Args<'t> {
    fn peek(&self) -> Option<&'t Token> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<&'t Token> {
        let t = self.toks.get(self.pos);
        if t.is_some() {
            self.pos += 1;
        }
        t
    }
    /// The value of option `opt`: the next argument, whatever it is (as getopt takes it).
    pub(crate) fn value(&mut self, opt: &Token) -> Res<&'t Token> {
        match self.toks.get(self.pos) {
            Some(t) => {
                self.pos += 1;
                Ok(t)
            }
            None => Err(err_at(opt, format!("option `{}` needs a value", opt.text))),
        }
    }
}

/// Parses the arguments of one rule. Several rules come back when `-s` or `-d` lists several
/// addresses (iptables adds one rule per combination, in order).
pub fn parse_rule(ctx: &RuleContext<'_>, toks: &[Token]) -> Res<Vec<Rule>> {
    let mut a = Args { toks, pos: 0 };
    let mut rule = Rule::default();
    let mut srcs: Vec<Cidr> = Vec::new();
    let mut dsts: Vec<Cidr> = Vec::new();
    let mut src_neg = false;
    let mut dst_neg = false;
    let mut matches: Vec<MatchB> = Vec::new();
    let mut target: Option<TargetB> = None;
    let mut pending_neg: Option<&Token> = None;
    let mut seen_generic: Vec<&'static str> = Vec::new();
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
    // Every module the rule loads, wherever it stands (see `owned_options`).
    let modules: Vec<&str> = toks
        .windows(2)
        .filter_map(|w| match w {
            [m, name] if matches!(m.text.as_str(), "-m" | "--match") => Some(name.text.as_str()),
            _ => None,
        })
        .collect();
    // The first address list with more than one entry, for the error about `!`.
    let mut addr_tok: Option<&Token> = None;

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
            seen_generic.push(key);
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
                let val = iface.map(|i| Neg::new(negated, i));
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
                let name = v.text.clone();
                match Module::named(&name) {
                    Some(module) => matches.push(MatchB {
                        name,
                        at: v.clone(),
                        raw: Vec::new(),
                        unmodelled: false,
                        m: (module.new)(),
                        seen: Vec::new(),
                    }),
                    None => {
                        // An unknown module: its arguments run up to the next generic option
                        // or option that a match already loaded (or `-p tcp`'s implicit match)
                        // owns.
                        let owned = owned_options(&matches, &modules, final_proto);
                        let from = a.pos;
                        let args = collect_verbatim(&mut a, &owned);
                        check_verbatim_family(
                            ctx.family,
                            unknown::address_options(&name),
                            a.toks.get(from..a.pos).unwrap_or(&[]),
                        )?;
                        if !unknown::is_module_name(&name) {
                            return Err(err_at(v, format!("`{name}` is not a match module name")));
                        }
                        matches.push(MatchB {
                            name: name.clone(),
                            at: v.clone(),
                            raw: args,
                            unmodelled: true,
                            m: Match::Unknown {
                                name,
                                args: Vec::new(),
                            },
                            seen: Vec::new(),
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
                let owned = owned_options(&matches, &modules, final_proto);
                target = Some(start_target(ctx, v, goto, &mut a, &owned)?);
            }
            _ if opt.starts_with('-') && opt.len() > 1 => {
                dispatch_option(ctx, &rule, &mut matches, &mut target, t, negated, &mut a)?;
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
    for mb in matches {
        rule.matches.push(finish_match(mb, &rule)?);
    }
    if let Some(tb) = target {
        rule.target = Some(finish_target(ctx, tb, &rule)?);
    }

    // One rule per source × destination, in iptables' order.
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
    let mut out = Vec::with_capacity(srcs.len() * dsts.len());
    for s in &srcs {
        for d in &dsts {
            let mut r = rule.clone();
            r.src = s
                .filter(|c| !c.is_any() || src_neg)
                .map(|c| Neg::new(src_neg, c));
            r.dst = d
                .filter(|c| !c.is_any() || dst_neg)
                .map(|c| Neg::new(dst_neg, c));
            out.push(r);
        }
    }
    Ok(out)
}

/// The options that known matches own (loaded so far, or named anywhere in the rule), and those
/// of the implicit match of `-p tcp`/`-p udp`.
///
/// The protocol is the rule's final `-p`, not the one seen so far: the canonical print puts `-p`
/// first, and the split of arguments must come out the same when the print is read back.
fn owned_options(
    matches: &[MatchB],
    modules: &[&str],
    final_proto: Option<Protocol>,
) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    for mb in matches {
        v.extend_from_slice(Module::options_of(&mb.name));
    }
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

/// The arguments of an extension the model does not interpret: up to the next generic option or
/// option `owned` by another match (with its `!`).
/// Checks the family of the addresses among `toks` (a verbatim module's arguments, each option
/// followed by its value) that follow one of `opts`, the module's options whose value is an
/// address (a module's `ADDRESS_OPTIONS`, or [`unknown::ADDRESS_OPTIONS`]).
fn check_verbatim_family(family: Family, opts: &[&str], toks: &[Token]) -> Res<()> {
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

fn collect_verbatim(a: &mut Args<'_>, owned: &[&str]) -> Vec<String> {
    let stops = |t: &str| is_generic(t) || owned.contains(&t);
    let mut args = Vec::new();
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
        args.push(n.text.clone());
        a.pos += 1;
    }
    args
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
    matches: &mut Vec<MatchB>,
    target: &mut Option<TargetB>,
    t: &'t Token,
    negated: bool,
    a: &mut Args<'t>,
) -> Res<()> {
    let opt = t.text.as_str();
    // Newest loaded match first.
    for mb in matches.iter_mut().rev() {
        let Some(module) = Module::named(&mb.name) else {
            continue;
        };
        if module.options.contains(&opt) {
            return apply_match_option(module, mb, t, negated, a, ctx);
        }
    }
    if let Some(tb) = target.as_mut() {
        if target_options(&tb.name).contains(&opt) {
            if matches!(
                opt,
                "--to-ports" | "--to-port" | "--to-destination" | "--to-source" | "--to"
            ) {
                tb.proto_at_ports = Some(rule.proto);
            }
            return apply_target_option(ctx, tb, t, negated, a);
        }
    }
    // The implicit protocol match of `-p tcp --dport 80`.
    if let Some(p) = &rule.proto {
        if let Some(module) = Module::implicit(p.value) {
            if module.options.contains(&opt) && !p.negated {
                matches.push(MatchB {
                    name: module.name.to_string(),
                    at: t.clone(),
                    raw: Vec::new(),
                    unmodelled: false,
                    m: (module.new)(),
                    seen: Vec::new(),
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
            Module::options_of(&mb.name)
                .iter()
                .map(|o| (*o, owner.clone())),
        );
    }
    if let Some(tb) = target.as_ref() {
        let o = format!(" for target `{}`", tb.name);
        known.extend(target_options(&tb.name).iter().map(|x| (*x, o.clone())));
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
    mb: &mut MatchB,
    t: &'t Token,
    negated: bool,
    a: &mut Args<'t>,
    ctx: &RuleContext<'_>,
) -> Res<()> {
    let opt = t.text.as_str();
    let key = module.key(opt);
    if mb.seen.contains(&key) {
        let message = match module.repeated.iter().find(|(k, _)| *k == key) {
            Some((_, m)) => (*m).to_string(),
            None => format!(
                "option `{opt}` given more than once for match `{}`",
                mb.name
            ),
        };
        return Err(err_at(t, message));
    }
    mb.seen.push(key);
    if negated {
        mb.raw.push("!".into());
    }
    mb.raw.push(opt.to_string());
    let start = a.pos;
    match mb.m.option(&mut OptArgs::new(t, negated, a))? {
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
    for tok in a.toks.get(start..a.pos).unwrap_or(&[]) {
        mb.raw.push(tok.text.clone());
    }
    Ok(())
}

/// The match as read, after its module's checks; kept verbatim when an option was not
/// interpreted.
fn finish_match(mb: MatchB, rule: &Rule) -> Res<Match> {
    if mb.unmodelled {
        return Ok(Match::Unknown {
            name: mb.name,
            args: mb.raw,
        });
    }
    let cx = Finish {
        at: &mb.at,
        name: &mb.name,
        proto: rule.proto.filter(|p| !p.negated).map(|p| p.value),
        seen: &mb.seen,
    };
    mb.m.finish(&cx)?;
    Ok(mb.m)
}

// ----- targets -----

struct TargetB {
    /// `-p` as it stood when an option carrying ports was read (iptables checks it then).
    proto_at_ports: Option<Option<Neg<Protocol>>>,
    name: String,
    at: Token,
    goto: bool,
    raw: Vec<String>,
    unmodelled: bool,
    seen: Vec<String>,
    // option values
    vals: Vec<(String, bool, Vec<String>, Token)>,
}

fn target_options(name: &str) -> &'static [&'static str] {
    match name {
        "REJECT" => &["--reject-with"],
        "REDIRECT" => &["--to-ports", "--to-port", "--random"],
        "TPROXY" => &["--on-port", "--on-ip", "--tproxy-mark"],
        "MARK" => &[
            "--set-mark",
            "--set-xmark",
            "--and-mark",
            "--or-mark",
            "--xor-mark",
        ],
        "CONNMARK" => &[
            "--set-mark",
            "--set-xmark",
            "--and-mark",
            "--or-mark",
            "--xor-mark",
            "--save-mark",
            "--restore-mark",
            "--mask",
            "--nfmask",
            "--ctmask",
        ],
        "CT" => &[
            "--notrack",
            "--zone",
            "--zone-orig",
            "--zone-reply",
            "--helper",
            "--ctevents",
            "--expevents",
            "--timeout",
        ],
        "DNAT" => &["--to-destination", "--to", "--random", "--persistent"],
        "SNAT" => &[
            "--to-source",
            "--to",
            "--random",
            "--random-fully",
            "--persistent",
        ],
        "MASQUERADE" => &["--to-ports", "--random", "--random-fully"],
        "LOG" => &[
            "--log-prefix",
            "--log-level",
            "--log-tcp-sequence",
            "--log-tcp-options",
            "--log-ip-options",
            "--log-uid",
            "--log-macdecode",
        ],
        "NFLOG" => &[
            "--nflog-group",
            "--nflog-prefix",
            "--nflog-range",
            "--nflog-size",
            "--nflog-threshold",
        ],
        _ => &[],
    }
}

/// How many values an option of a known target takes.
fn target_option_arity(name: &str, opt: &str) -> usize {
    match (name, opt) {
        (
            _,
            "--random" | "--random-fully" | "--persistent" | "--notrack" | "--save-mark"
            | "--restore-mark",
        ) => 0,
        ("LOG", o) if o != "--log-prefix" && o != "--log-level" => 0,
        _ => 1,
    }
}

const BUILTIN_TARGETS: &[&str] = &[
    "ACCEPT",
    "DROP",
    "RETURN",
    "REJECT",
    "REDIRECT",
    "TPROXY",
    "MARK",
    "CONNMARK",
    "CT",
    "NOTRACK",
    "DNAT",
    "SNAT",
    "MASQUERADE",
    "LOG",
    "NFLOG",
];

fn start_target<'t>(
    ctx: &RuleContext<'_>,
    v: &'t Token,
    goto: bool,
    a: &mut Args<'t>,
    owned: &[&str],
) -> Res<TargetB> {
    let name = v.text.clone();
    let mut tb = TargetB {
        proto_at_ports: None,
        name: name.clone(),
        at: v.clone(),
        goto,
        raw: Vec::new(),
        unmodelled: false,
        seen: Vec::new(),
        vals: Vec::new(),
    };
    if goto || !BUILTIN_TARGETS.contains(&name.as_str()) {
        if (ctx.chain_exists)(&name) {
            return Ok(tb);
        }
        if let Some(other) = (ctx.chain_elsewhere)(&name) {
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
        if OTHER_TARGETS.contains(&name.as_str()) {
            tb.unmodelled = true;
            tb.raw = collect_verbatim(a, owned);
            return Ok(tb);
        }
        let mut e = err_at(v, format!("jump to undefined chain `{name}`"));
        let upper = name.to_ascii_uppercase();
        if let Some(s) = did_you_mean(&upper, BUILTIN_TARGETS) {
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
    _ctx: &RuleContext<'_>,
    tb: &mut TargetB,
    t: &'t Token,
    negated: bool,
    a: &mut Args<'t>,
) -> Res<()> {
    let opt = t.text.clone();
    if negated {
        return Err(err_at(t, format!("`!` cannot negate `{opt}`")));
    }
    if tb.seen.contains(&opt) {
        return Err(err_at(
            t,
            format!(
                "option `{opt}` given more than once for target `{}`",
                tb.name
            ),
        ));
    }
    tb.seen.push(opt.clone());
    let n = target_option_arity(&tb.name, &opt);
    let mut vals = Vec::new();
    let mut at = t.clone();
    for _ in 0..n {
        let v = a.value(t)?;
        at = v.clone();
        vals.push(v.text.clone());
    }
    if matches!(
        (tb.name.as_str(), opt.as_str()),
        (
            "CT",
            "--helper" | "--ctevents" | "--expevents" | "--timeout"
        )
    ) {
        tb.unmodelled = true;
    }
    tb.raw.push(opt.clone());
    tb.raw.extend(vals.iter().cloned());
    tb.vals.push((opt, negated, vals, at));
    Ok(())
}

fn tval<'a>(tb: &'a TargetB, opt: &str) -> Option<(&'a str, &'a Token)> {
    tb.vals
        .iter()
        .find(|(o, ..)| o == opt)
        .map(|(_, _, v, t)| (v.first().map_or("", String::as_str), t))
}

fn has(tb: &TargetB, opt: &str) -> bool {
    tb.vals.iter().any(|(o, ..)| o == opt)
}

fn finish_target(ctx: &RuleContext<'_>, tb: TargetB, rule: &Rule) -> Res<Target> {
    if tb.goto {
        return Ok(Target::Goto { chain: tb.name });
    }
    if tb.unmodelled {
        return Ok(Target::Unknown {
            name: tb.name,
            args: tb.raw,
        });
    }
    let proto = rule.proto.filter(|p| !p.negated).map(|p| p.value);
    let proto_then = tb
        .proto_at_ports
        .unwrap_or(rule.proto)
        .filter(|p| !p.negated)
        .map(|p| p.value);
    let port_proto = |what: &str| -> Res<()> {
        if proto_then.is_some_and(Protocol::has_ports) {
            Ok(())
        } else {
            Err(err_at(
                &tb.at,
                format!(
                    "`{}` with {what} needs `-p tcp`, `-p udp`, `-p sctp` or `-p dccp`",
                    tb.name
                ),
            ))
        }
    };
    let tok_for = |opt: &str| tval(&tb, opt).map_or(&tb.at, |(_, t)| t);
    let value_tok = |opt: &str, text: &str| -> Token {
        let t = tok_for(opt);
        Token {
            text: text.to_string(),
            start: t.start,
            end: t.end,
        }
    };
    Ok(match tb.name.as_str() {
        "ACCEPT" => Target::Accept,
        "DROP" => Target::Drop,
        "RETURN" => Target::Return,
        "NOTRACK" => Target::Notrack,
        "REJECT" => Target::Reject {
            with: match tval(&tb, "--reject-with") {
                Some((v, t)) => reject_with(ctx.family, v, t)?,
                None => match ctx.family {
                    Family::Ipv4 => "icmp-port-unreachable".into(),
                    Family::Ipv6 => "icmp6-port-unreachable".into(),
                },
            },
        },
        "REDIRECT" | "MASQUERADE" => {
            let pv = tval(&tb, "--to-ports").or_else(|| tval(&tb, "--to-port"));
            let ports = match pv {
                Some((v, t)) => {
                    port_proto("`--to-ports`")?;
                    Some(parse_port_range(t, v, '-').map_err(|e| RuleError {
                        start: t.start,
                        end: t.end,
                        ..e
                    })?)
                }
                None => None,
            };
            if tb.name == "REDIRECT" {
                Target::Redirect {
                    ports,
                    random: has(&tb, "--random"),
                }
            } else {
                Target::Masquerade {
                    ports,
                    random: has(&tb, "--random"),
                    random_fully: has(&tb, "--random-fully"),
                }
            }
        }
        "TPROXY" => {
            if !matches!(proto, Some(Protocol::TCP | Protocol::UDP)) {
                return Err(err_at(&tb.at, "`TPROXY` needs `-p tcp` or `-p udp`"));
            }
            let (pv, pt) = tval(&tb, "--on-port")
                .ok_or_else(|| err_at(&tb.at, "`TPROXY` needs `--on-port`"))?;
            let on_port = parse_port(&value_tok("--on-port", pv), pv)?;
            let _ = pt;
            let on_ip = match tval(&tb, "--on-ip") {
                Some((v, t)) => {
                    let ip = parse_ip(ctx.family, t, v)?;
                    Some(ip).filter(|ip| !ip.is_unspecified())
                }
                None => None,
            };
            let mark =
                match tval(&tb, "--tproxy-mark") {
                    Some((v, t)) => parse_mark_mask(&value_tok("--tproxy-mark", v), u32::MAX)
                        .map_err(|e| RuleError {
                            start: t.start,
                            ..e
                        })?,
                    None => MarkMask { value: 0, mask: 0 },
                };
            Target::Tproxy {
                on_port,
                on_ip,
                mark,
            }
        }
        "MARK" | "CONNMARK" => {
            let is_mark = tb.name == "MARK";
            let xmark = mark_op(&tb)?;
            if is_mark {
                match xmark {
                    Some(m) => Target::Mark(m),
                    None => return Err(err_at(&tb.at, "`MARK` needs `--set-mark`, `--set-xmark`, `--and-mark`, `--or-mark` or `--xor-mark`")),
                }
            } else if let Some(m) = xmark {
                Target::ConnmarkSet(m)
            } else {
                let mask = match tval(&tb, "--mask") {
                    Some((v, _)) => Some(parse_u32_tok(&value_tok("--mask", v))?),
                    None => None,
                };
                let nfmask = match tval(&tb, "--nfmask") {
                    Some((v, _)) => parse_u32_tok(&value_tok("--nfmask", v))?,
                    None => mask.unwrap_or(u32::MAX),
                };
                let ctmask = match tval(&tb, "--ctmask") {
                    Some((v, _)) => parse_u32_tok(&value_tok("--ctmask", v))?,
                    None => mask.unwrap_or(u32::MAX),
                };
                if has(&tb, "--save-mark") && has(&tb, "--restore-mark") {
                    return Err(err_at(
                        &tb.at,
                        "`CONNMARK` takes one of `--save-mark` and `--restore-mark`",
                    ));
                }
                if has(&tb, "--save-mark") {
                    Target::ConnmarkSave { nfmask, ctmask }
                } else if has(&tb, "--restore-mark") {
                    Target::ConnmarkRestore { nfmask, ctmask }
                } else {
                    return Err(err_at(&tb.at, "`CONNMARK` needs `--set-xmark`, `--set-mark`, `--save-mark` or `--restore-mark`"));
                }
            }
        }
        "CT" => {
            let mut zone = None;
            for (opt, orig) in [
                ("--zone", None),
                ("--zone-orig", Some(true)),
                ("--zone-reply", Some(false)),
            ] {
                if let Some((v, _)) = tval(&tb, opt) {
                    let t = value_tok(opt, v);
                    let id = u16::try_from(parse_u32_tok(&t)?)
                        .map_err(|_| err_at(&t, format!("zone `{v}` out of range (0 to 65535)")))?;
                    if zone.is_some() {
                        return Err(err_at(&t, "`CT` takes one zone option"));
                    }
                    zone = Some(CtZone { id, orig });
                }
            }
            Target::Ct {
                notrack: has(&tb, "--notrack"),
                zone: zone.filter(|z| z.id != 0 || z.orig.is_some()),
            }
        }
        "DNAT" | "SNAT" => {
            let opt = if tb.name == "DNAT" {
                "--to-destination"
            } else {
                "--to-source"
            };
            let (v, _) = tval(&tb, opt)
                .or_else(|| tval(&tb, "--to"))
                .ok_or_else(|| err_at(&tb.at, format!("`{}` needs `{opt}`", tb.name)))?;
            let t = value_tok(if has(&tb, opt) { opt } else { "--to" }, v);
            let to = parse_nat_range(ctx.family, &t)?;
            if to.ports.is_some() {
                port_proto("a port")?;
            }
            if tb.name == "DNAT" {
                Target::Dnat {
                    to,
                    random: has(&tb, "--random"),
                    persistent: has(&tb, "--persistent"),
                }
            } else {
                Target::Snat {
                    to,
                    random: has(&tb, "--random"),
                    random_fully: has(&tb, "--random-fully"),
                    persistent: has(&tb, "--persistent"),
                }
            }
        }
        "LOG" => {
            let level = match tval(&tb, "--log-level") {
                Some((v, _)) => log_level(&value_tok("--log-level", v))?,
                None => 4,
            };
            let flags = [
                "--log-tcp-sequence",
                "--log-tcp-options",
                "--log-ip-options",
                "--log-uid",
                "--log-macdecode",
            ]
            .into_iter()
            .filter(|f| has(&tb, f))
            .map(str::to_string)
            .collect();
            let prefix = tval(&tb, "--log-prefix").map(|(v, _)| v.to_string());
            if let Some(p) = &prefix {
                if p.len() > 29 {
                    return Err(err_at(
                        tok_for("--log-prefix"),
                        "`--log-prefix` longer than 29 characters",
                    ));
                }
            }
            Target::Log {
                prefix,
                level,
                flags,
            }
        }
        "NFLOG" => {
            let group = match tval(&tb, "--nflog-group") {
                Some((v, _)) => {
                    let t = value_tok("--nflog-group", v);
                    u16::try_from(parse_u32_tok(&t)?)
                        .map_err(|_| err_at(&t, format!("group `{v}` out of range (0 to 65535)")))?
                }
                None => 0,
            };
            let size = match tval(&tb, "--nflog-size").or_else(|| tval(&tb, "--nflog-range")) {
                Some((v, t)) => Some(parse_u32_tok(&Token {
                    text: v.to_string(),
                    start: t.start,
                    end: t.end,
                })?),
                None => None,
            };
            let threshold = match tval(&tb, "--nflog-threshold") {
                Some((v, _)) => {
                    let t = value_tok("--nflog-threshold", v);
                    Some(
                        u16::try_from(parse_u32_tok(&t)?)
                            .map_err(|_| err_at(&t, format!("threshold `{v}` out of range")))?,
                    )
                    .filter(|n| *n != 1)
                }
                None => None,
            };
            let prefix = tval(&tb, "--nflog-prefix").map(|(v, _)| v.to_string());
            if let Some(p) = &prefix {
                if p.len() > 63 {
                    return Err(err_at(
                        tok_for("--nflog-prefix"),
                        "`--nflog-prefix` longer than 63 characters",
                    ));
                }
            }
            Target::Nflog {
                prefix,
                group,
                size,
                threshold,
            }
        }
        _ => Target::Jump { chain: tb.name },
    })
}

/// MARK-style operations reduced to `(value, mask)` of `--set-xmark`.
fn mark_op(tb: &TargetB) -> Res<Option<MarkMask>> {
    let ops = [
        "--set-mark",
        "--set-xmark",
        "--and-mark",
        "--or-mark",
        "--xor-mark",
    ];
    let given: Vec<&str> = ops.into_iter().filter(|o| has(tb, o)).collect();
    if given.len() > 1 {
        return Err(err_at(
            &tb.at,
            format!("`{}` takes only one of {}", tb.name, ops.join(", ")),
        ));
    }
    let Some(op) = given.first() else {
        return Ok(None);
    };
    let Some((v, t)) = tval(tb, op) else {
        return Ok(None);
    };
    let tok = Token {
        text: v.to_string(),
        start: t.start,
        end: t.end,
    };
    Ok(Some(match *op {
        "--set-xmark" => parse_mark_mask(&tok, u32::MAX)?,
        "--set-mark" => {
            let m = parse_mark_mask(&tok, u32::MAX)?;
            MarkMask {
                value: m.value,
                mask: m.value | m.mask,
            }
        }
        "--and-mark" => MarkMask {
            value: 0,
            mask: !parse_u32_tok(&tok)?,
        },
        "--or-mark" => {
            let v = parse_u32_tok(&tok)?;
            MarkMask { value: v, mask: v }
        }
        _ => MarkMask {
            value: parse_u32_tok(&tok)?,
            mask: 0,
        },
    }))
}

fn reject_with(family: Family, v: &str, t: &Token) -> Res<String> {
    let v4 = [
        ("icmp-net-unreachable", "icmp-net-unreachable"),
        ("net-unreach", "icmp-net-unreachable"),
        ("icmp-host-unreachable", "icmp-host-unreachable"),
        ("host-unreach", "icmp-host-unreachable"),
        ("icmp-proto-unreachable", "icmp-proto-unreachable"),
        ("proto-unreach", "icmp-proto-unreachable"),
        ("icmp-port-unreachable", "icmp-port-unreachable"),
        ("port-unreach", "icmp-port-unreachable"),
        ("icmp-net-prohibited", "icmp-net-prohibited"),
        ("net-prohib", "icmp-net-prohibited"),
        ("icmp-host-prohibited", "icmp-host-prohibited"),
        ("host-prohib", "icmp-host-prohibited"),
        ("tcp-reset", "tcp-reset"),
        ("tcp-rst", "tcp-reset"),
        ("icmp-admin-prohibited", "icmp-admin-prohibited"),
        ("admin-prohib", "icmp-admin-prohibited"),
    ];
    let v6 = [
        ("icmp6-no-route", "icmp6-no-route"),
        ("no-route", "icmp6-no-route"),
        ("icmp6-adm-prohibited", "icmp6-adm-prohibited"),
        ("adm-prohibited", "icmp6-adm-prohibited"),
        ("icmp6-addr-unreachable", "icmp6-addr-unreachable"),
        ("addr-unreach", "icmp6-addr-unreachable"),
        ("icmp6-port-unreachable", "icmp6-port-unreachable"),
        ("port-unreach", "icmp6-port-unreachable"),
        ("tcp-reset", "tcp-reset"),
        ("icmp6-policy-fail", "icmp6-policy-fail"),
        ("policy-fail", "icmp6-policy-fail"),
        ("icmp6-reject-route", "icmp6-reject-route"),
        ("reject-route", "icmp6-reject-route"),
    ];
    let table: &[(&str, &str)] = match family {
        Family::Ipv4 => &v4,
        Family::Ipv6 => &v6,
    };
    table
        .iter()
        .find(|(k, _)| *k == v)
        .map(|(_, c)| (*c).to_string())
        .ok_or_else(|| err_at(t, format!("unknown `--reject-with` type `{v}`")))
}

fn log_level(t: &Token) -> Res<u8> {
    let names = [
        "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
    ];
    if let Some(i) = names.iter().position(|n| *n == t.text) {
        return u8::try_from(i).map_err(|_| err_at(t, "bad log level"));
    }
    if t.text == "panic" {
        return Ok(0);
    }
    if t.text == "err" {
        return Ok(3);
    }
    if t.text == "warn" {
        return Ok(4);
    }
    match t.text.parse::<u8>() {
        Ok(n) if n <= 7 => Ok(n),
        _ => Err(err_at(t, format!("invalid log level `{}`", t.text))
            .with_help("expected 0 to 7 or a syslog level name")),
    }
}
