//! The arguments of one rule (everything after `-A CHAIN`) into a typed [`Rule`].
//!
//! Options are dispatched as iptables does: to the newest loaded match that knows the option,
//! then to the target, then, for `--dport`-style options after `-p tcp`/`-p udp` with no such
//! match loaded, to an implicit protocol match appended at the end. A known module given an
//! option the model does not interpret keeps its arguments verbatim as [`Match::Unknown`].

use std::net::IpAddr;

use crate::ast::*;
use crate::parse::lex::Token;
use crate::print::PROTOCOL_NAMES;

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

type Res<T> = Result<T, RuleError>;

fn err_at(t: &Token, message: impl Into<String>) -> RuleError {
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

/// What a module does with an option.
enum Take {
    /// The option is this module's and was applied.
    Done,
    /// The option is this module's but the model does not interpret it; it takes `n` values.
    Unmodelled(usize),
    /// Not this module's option.
    NotMine,
}

/// The option names of each known module (for dispatch and "did you mean").
fn module_options(name: &str) -> &'static [&'static str] {
    match name {
        "tcp" => &[
            "--sport",
            "--source-port",
            "--dport",
            "--destination-port",
            "--tcp-flags",
            "--syn",
            "--tcp-option",
        ],
        "udp" => &["--sport", "--source-port", "--dport", "--destination-port"],
        "multiport" => &[
            "--sports",
            "--source-ports",
            "--dports",
            "--destination-ports",
            "--ports",
        ],
        "owner" => &[
            "--uid-owner",
            "--gid-owner",
            "--socket-exists",
            "--suppl-groups",
        ],
        "mark" | "connmark" => &["--mark"],
        "conntrack" => &[
            "--ctstate",
            "--ctproto",
            "--ctorigsrc",
            "--ctorigdst",
            "--ctreplsrc",
            "--ctrepldst",
            "--ctorigsrcport",
            "--ctorigdstport",
            "--ctreplsrcport",
            "--ctrepldstport",
            "--ctstatus",
            "--ctexpire",
            "--ctdir",
        ],
        "state" => &["--state"],
        "comment" => &["--comment"],
        "socket" => &["--transparent", "--nowildcard", "--restore-skmark"],
        "addrtype" => &[
            "--src-type",
            "--dst-type",
            "--limit-iface-in",
            "--limit-iface-out",
        ],
        "set" => &[
            "--match-set",
            "--set",
            "--return-nomatch",
            "--update-counters",
            "--update-subcounters",
            "--packets-eq",
            "--packets-lt",
            "--packets-gt",
            "--bytes-eq",
            "--bytes-lt",
            "--bytes-gt",
        ],
        "statistic" => &["--mode", "--probability", "--every", "--packet"],
        _ => &[],
    }
}

fn new_match(name: &str) -> Option<Match> {
    Some(match name {
        "tcp" => Match::Tcp {
            sport: None,
            dport: None,
            flags: None,
        },
        "udp" => Match::Udp {
            sport: None,
            dport: None,
        },
        "multiport" => Match::Multiport {
            negated: false,
            dir: PortDir::Destination,
            ports: Vec::new(),
        },
        "owner" => Match::Owner {
            uid: None,
            gid: None,
            socket_exists: None,
            suppl_groups: false,
        },
        "mark" => Match::Mark(Neg::pos(MarkMask {
            value: 0,
            mask: u32::MAX,
        })),
        "connmark" => Match::Connmark(Neg::pos(MarkMask {
            value: 0,
            mask: u32::MAX,
        })),
        "conntrack" => Match::Conntrack {
            ctstate: Neg::pos(Vec::new()),
        },
        "state" => Match::State(Neg::pos(Vec::new())),
        "comment" => Match::Comment {
            text: String::new(),
        },
        "socket" => Match::Socket {
            transparent: false,
            nowildcard: false,
            restore_skmark: false,
        },
        "addrtype" => Match::Addrtype {
            src: None,
            dst: None,
            limit_iface_in: false,
            limit_iface_out: false,
        },
        "set" => Match::Set {
            negated: false,
            name: String::new(),
            flags: String::new(),
            extra: Vec::new(),
        },
        "statistic" => Match::Statistic {
            negated: false,
            mode: StatisticMode::Nth {
                every: u32::MAX,
                packet: 0,
            },
        },
        _ => return None,
    })
}

/// The token stream of one rule.
struct Args<'t> {
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
    fn value(&mut self, opt: &Token) -> Res<&'t Token> {
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
                match new_match(&name) {
                    Some(m) => matches.push(MatchB {
                        name,
                        at: v.clone(),
                        raw: Vec::new(),
                        unmodelled: false,
                        m,
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
                            &name,
                            a.toks.get(from..a.pos).unwrap_or(&[]),
                        )?;
                        if name.is_empty()
                            || name.len() > 28
                            || name.starts_with('-')
                            || !name
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                        {
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
        v.extend_from_slice(module_options(&mb.name));
    }
    // Modules loaded later in the rule own their options too: the print puts every match
    // before the target, so an option a later module knows must not become an earlier verbatim
    // extension's argument (iptables itself refuses an option before its module is loaded).
    for m in modules {
        v.extend_from_slice(module_options(m));
    }
    match final_proto {
        Some(Protocol::TCP) => v.extend_from_slice(module_options("tcp")),
        Some(Protocol::UDP) => v.extend_from_slice(module_options("udp")),
        _ => {}
    }
    v
}

/// The arguments of an extension the model does not interpret: up to the next generic option or
/// option `owned` by another match (with its `!`).
/// Options of modules the model keeps verbatim whose value is an address or an address range:
/// the model does not interpret them, but an address of the other family is refused as iptables
/// refuses it (`-m iprange --src-range fd00::1-fd00::9` in an IPv4 rule).
const VERBATIM_ADDRESS_OPTIONS: &[(&str, &[&str])] = &[
    (
        "conntrack",
        &["--ctorigsrc", "--ctorigdst", "--ctreplsrc", "--ctrepldst"],
    ),
    ("iprange", &["--src-range", "--dst-range"]),
    ("policy", &["--tunnel-src", "--tunnel-dst"]),
];

/// Checks the family of the addresses among `toks` (a verbatim module's arguments, each option
/// followed by its value) when `module` is one of [`VERBATIM_ADDRESS_OPTIONS`].
fn check_verbatim_family(family: Family, module: &str, toks: &[Token]) -> Res<()> {
    let Some((_, opts)) = VERBATIM_ADDRESS_OPTIONS.iter().find(|(m, _)| *m == module) else {
        return Ok(());
    };
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

trait WithHelp {
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
        if mb.unmodelled && new_match(&mb.name).is_none() {
            continue;
        }
        if module_options(&mb.name).contains(&opt) {
            return apply_match_option(mb, t, negated, a, ctx);
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
        let name = match p.value {
            Protocol::TCP => Some("tcp"),
            Protocol::UDP => Some("udp"),
            _ => None,
        };
        if let Some(name) = name {
            if module_options(name).contains(&opt) && !p.negated {
                if let Some(m) = new_match(name) {
                    matches.push(MatchB {
                        name: name.to_string(),
                        at: t.clone(),
                        raw: Vec::new(),
                        unmodelled: false,
                        m,
                        seen: Vec::new(),
                    });
                    if let Some(mb) = matches.last_mut() {
                        return apply_match_option(mb, t, negated, a, ctx);
                    }
                }
            }
        }
    }
    // Unknown: say what was meant, naming whose option the suggestion is.
    let mut known: Vec<(&str, String)> = GENERIC.iter().map(|g| (*g, String::new())).collect();
    let mut owner = String::new();
    if let Some(p) = rule.proto.filter(|p| !p.negated) {
        let implicit = match p.value {
            Protocol::TCP => "tcp",
            Protocol::UDP => "udp",
            _ => "",
        };
        if !implicit.is_empty() {
            owner = format!(" for match `{implicit}`");
            known.extend(module_options(implicit).iter().map(|o| (*o, owner.clone())));
        }
    }
    for mb in matches.iter() {
        owner = format!(" for match `{}`", mb.name);
        known.extend(module_options(&mb.name).iter().map(|o| (*o, owner.clone())));
    }
    if let Some(tb) = target.as_ref() {
        let o = format!(" for target `{}`", tb.name);
        known.extend(target_options(&tb.name).iter().map(|x| (*x, o.clone())));
        if owner.is_empty() {
            owner = o;
        }
    }
    let implicit = [
        "--dport",
        "--sport",
        "--destination-port",
        "--source-port",
        "--tcp-flags",
        "--syn",
    ];
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
        if implicit.contains(&opt) {
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

fn canonical_option(opt: &str) -> &'static str {
    match opt {
        "--sport" | "--source-port" => "--sport",
        "--dport" | "--destination-port" => "--dport",
        "--sports" | "--source-ports" => "--sports",
        "--dports" | "--destination-ports" => "--dports",
        "--tcp-flags" | "--syn" => "--tcp-flags",
        "--set" | "--match-set" => "--match-set",
        other => module_options_static(other),
    }
}

fn module_options_static(opt: &str) -> &'static str {
    for m in [
        "tcp",
        "udp",
        "multiport",
        "owner",
        "mark",
        "conntrack",
        "state",
        "comment",
        "socket",
        "addrtype",
        "set",
        "statistic",
    ] {
        if let Some(o) = module_options(m).iter().find(|o| **o == opt) {
            return o;
        }
    }
    "?"
}

fn apply_match_option<'t>(
    mb: &mut MatchB,
    t: &'t Token,
    negated: bool,
    a: &mut Args<'t>,
    ctx: &RuleContext<'_>,
) -> Res<()> {
    let opt = t.text.as_str();
    let key = canonical_option(opt);
    if mb.seen.contains(&key) && !matches!(key, "--tcp-flags") {
        return Err(err_at(
            t,
            format!(
                "option `{opt}` given more than once for match `{}`",
                mb.name
            ),
        ));
    }
    if mb.seen.contains(&key) {
        return Err(err_at(t, "`--tcp-flags` or `--syn` given more than once"));
    }
    mb.seen.push(key);
    if negated {
        mb.raw.push("!".into());
    }
    mb.raw.push(opt.to_string());
    let start = a.pos;
    let take = match_option(&mut mb.m, t, negated, a, ctx.family)?;
    match take {
        Take::Done => {}
        Take::Unmodelled(n) => {
            mb.unmodelled = true;
            for _ in 0..n {
                a.value(t)?;
            }
            let taken = a.toks.get(start.saturating_sub(1)..a.pos).unwrap_or(&[]);
            check_verbatim_family(ctx.family, &mb.name, taken)?;
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

fn match_option<'t>(
    m: &mut Match,
    t: &'t Token,
    negated: bool,
    a: &mut Args<'t>,
    family: Family,
) -> Res<Take> {
    let opt = t.text.as_str();
    match m {
        Match::Tcp {
            sport,
            dport,
            flags,
        } => match opt {
            "--sport" | "--source-port" => *sport = port_range_opt(a.value(t)?, negated)?,
            "--dport" | "--destination-port" => *dport = port_range_opt(a.value(t)?, negated)?,
            "--syn" => {
                *flags = Some(Neg::new(
                    negated,
                    TcpFlags {
                        mask: 0x17,
                        comp: 0x02,
                    },
                ))
            }
            "--tcp-flags" => {
                let mask = tcp_flag_list(a.value(t)?)?;
                let comp = tcp_flag_list(a.value(t)?)?;
                *flags = Some(Neg::new(negated, TcpFlags { mask, comp }));
            }
            "--tcp-option" => return Ok(Take::Unmodelled(1)),
            _ => return Ok(Take::NotMine),
        },
        Match::Udp { sport, dport } => match opt {
            "--sport" | "--source-port" => *sport = port_range_opt(a.value(t)?, negated)?,
            "--dport" | "--destination-port" => *dport = port_range_opt(a.value(t)?, negated)?,
            _ => return Ok(Take::NotMine),
        },
        Match::Multiport {
            negated: n,
            dir,
            ports,
        } => {
            *dir = match opt {
                "--sports" | "--source-ports" => PortDir::Source,
                "--dports" | "--destination-ports" => PortDir::Destination,
                "--ports" => PortDir::Either,
                _ => return Ok(Take::NotMine),
            };
            if !ports.is_empty() {
                return Err(err_at(t, "multiport can only have one port list"));
            }
            *n = negated;
            let v = a.value(t)?;
            let mut slots = 0;
            for part in v.text.split(',') {
                let r = parse_port_range(v, part, ':')?;
                slots += if r.lo == r.hi { 1 } else { 2 };
                ports.push(r);
            }
            if slots > 15 {
                return Err(err_at(
                    v,
                    "too many ports in a multiport list (at most 15, a range counting twice)",
                ));
            }
        }
        Match::Owner {
            uid,
            gid,
            socket_exists,
            suppl_groups,
        } => match opt {
            "--uid-owner" => *uid = Some(Neg::new(negated, parse_id(a.value(t)?)?)),
            "--gid-owner" => *gid = Some(Neg::new(negated, parse_id(a.value(t)?)?)),
            "--socket-exists" => *socket_exists = Some(Neg::new(negated, ())),
            "--suppl-groups" => {
                if negated {
                    return Err(err_at(t, "`--suppl-groups` cannot be negated"));
                }
                *suppl_groups = true
            }
            _ => return Ok(Take::NotMine),
        },
        Match::Mark(n) | Match::Connmark(n) => match opt {
            "--mark" => *n = Neg::new(negated, parse_mark_mask(a.value(t)?, u32::MAX)?),
            _ => return Ok(Take::NotMine),
        },
        Match::Conntrack { ctstate } => match opt {
            "--ctstate" => *ctstate = Neg::new(negated, parse_states(a.value(t)?, true)?),
            "--ctdir" => return Ok(Take::Unmodelled(1)),
            o if module_options("conntrack").contains(&o) => return Ok(Take::Unmodelled(1)),
            _ => return Ok(Take::NotMine),
        },
        Match::State(n) => match opt {
            "--state" => *n = Neg::new(negated, parse_states(a.value(t)?, false)?),
            _ => return Ok(Take::NotMine),
        },
        Match::Comment { text: c } => match opt {
            "--comment" => {
                if negated {
                    return Err(err_at(t, "`--comment` cannot be negated"));
                }
                let v = a.value(t)?;
                if v.text.len() > 255 {
                    return Err(err_at(v, "comment longer than 255 bytes"));
                }
                *c = v.text.clone();
            }
            _ => return Ok(Take::NotMine),
        },
        Match::Socket {
            transparent,
            nowildcard,
            restore_skmark,
        } => match opt {
            "--transparent" => *transparent = true,
            "--nowildcard" => *nowildcard = true,
            "--restore-skmark" => *restore_skmark = true,
            _ => return Ok(Take::NotMine),
        },
        Match::Addrtype {
            src,
            dst,
            limit_iface_in,
            limit_iface_out,
        } => match opt {
            "--src-type" => *src = Some(Neg::new(negated, parse_addrtypes(a.value(t)?)?)),
            "--dst-type" => *dst = Some(Neg::new(negated, parse_addrtypes(a.value(t)?)?)),
            "--limit-iface-in" => *limit_iface_in = true,
            "--limit-iface-out" => *limit_iface_out = true,
            _ => return Ok(Take::NotMine),
        },
        Match::Set {
            negated: n,
            name,
            flags,
            extra,
        } => match opt {
            "--match-set" | "--set" => {
                *n = negated;
                let nt = a.value(t)?;
                if nt.text.is_empty() || nt.text.len() > 31 || nt.text.starts_with('-') {
                    return Err(err_at(nt, format!("invalid set name `{}`", nt.text))
                        .with_help("an ipset name has 1 to 31 characters"));
                }
                *name = nt.text.clone();
                let ft = a.value(t)?;
                let dirs: Vec<&str> = ft.text.split(',').collect();
                if dirs.len() > 6 || !dirs.iter().all(|d| matches!(*d, "src" | "dst")) {
                    return Err(err_at(ft, format!("invalid set flags `{}`", ft.text))
                        .with_help("expected up to six of `src` and `dst`, comma-separated"));
                }
                *flags = ft.text.clone();
            }
            "--return-nomatch" | "--update-counters" | "--update-subcounters" => {
                if negated {
                    extra.push("!".into());
                }
                extra.push(opt.to_string());
            }
            "--packets-eq" | "--packets-lt" | "--packets-gt" | "--bytes-eq" | "--bytes-lt"
            | "--bytes-gt" => {
                if negated {
                    extra.push("!".into());
                }
                extra.push(opt.to_string());
                extra.push(a.value(t)?.text.clone());
            }
            _ => return Ok(Take::NotMine),
        },
        Match::Statistic { negated: n, mode } => match opt {
            "--mode" => {
                let v = a.value(t)?;
                *mode = match v.text.as_str() {
                    "random" => StatisticMode::Random { probability: 0 },
                    "nth" => StatisticMode::Nth {
                        every: u32::MAX,
                        packet: 0,
                    },
                    other => {
                        return Err(err_at(v, format!("unknown statistic mode `{other}`"))
                            .with_help("expected `random` or `nth`"))
                    }
                };
            }
            "--probability" => {
                let v = a.value(t)?;
                let p: f64 = v
                    .text
                    .parse()
                    .ok()
                    .filter(|p: &f64| (0.0..=1.0).contains(p))
                    .ok_or_else(|| {
                        err_at(v, format!("invalid probability `{}`", v.text))
                            .with_help("expected a number from 0 to 1")
                    })?;
                *n |= negated;
                #[expect(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "p is in [0, 1], so the product fits in u32"
                )]
                let prob = (p * f64::from(0x8000_0000u32)).round() as u32;
                *mode = StatisticMode::Random { probability: prob };
            }
            "--every" => {
                let v = a.value(t)?;
                let e = parse_u32_tok(v)?;
                if e == 0 {
                    return Err(err_at(v, "`--every` must be at least 1"));
                }
                *n |= negated;
                let packet = match mode {
                    StatisticMode::Nth { packet, .. } => *packet,
                    StatisticMode::Random { .. } => 0,
                };
                *mode = StatisticMode::Nth {
                    every: e - 1,
                    packet,
                };
            }
            "--packet" => {
                let v = a.value(t)?;
                let p = parse_u32_tok(v)?;
                if let StatisticMode::Nth { packet, .. } = mode {
                    *packet = p;
                }
            }
            _ => return Ok(Take::NotMine),
        },
        Match::Unknown { .. } => return Ok(Take::NotMine),
    }
    let _ = family;
    Ok(Take::Done)
}

fn finish_match(mb: MatchB, rule: &Rule) -> Res<Match> {
    if mb.unmodelled {
        return Ok(Match::Unknown {
            name: mb.name,
            args: mb.raw,
        });
    }
    let proto = rule.proto.filter(|p| !p.negated).map(|p| p.value);
    let need_proto = |want: &[Protocol], what: &str| -> Res<()> {
        if proto.is_some_and(|p| want.contains(&p)) {
            Ok(())
        } else {
            Err(err_at(&mb.at, format!("match `{}` needs {what}", mb.name)))
        }
    };
    match &mb.m {
        Match::Tcp { .. } => need_proto(&[Protocol::TCP], "`-p tcp`")?,
        Match::Udp { .. } => need_proto(&[Protocol::UDP], "`-p udp`")?,
        Match::Multiport { ports, .. } => {
            need_proto(
                &[
                    Protocol::TCP,
                    Protocol::UDP,
                    Protocol::SCTP,
                    Protocol::DCCP,
                    Protocol(136),
                ],
                "`-p tcp`, `-p udp`, `-p sctp`, `-p dccp` or `-p udplite`",
            )?;
            if ports.is_empty() {
                return Err(err_at(
                    &mb.at,
                    "match `multiport` needs `--sports`, `--dports` or `--ports`",
                ));
            }
        }
        Match::Owner {
            uid,
            gid,
            socket_exists,
            ..
        } => {
            if uid.is_none() && gid.is_none() && socket_exists.is_none() {
                return Err(err_at(
                    &mb.at,
                    "match `owner` needs `--uid-owner`, `--gid-owner` or `--socket-exists`",
                ));
            }
        }
        Match::Mark(_) | Match::Connmark(_) => {
            if !mb.seen.contains(&"--mark") {
                return Err(err_at(
                    &mb.at,
                    format!("match `{}` needs `--mark`", mb.name),
                ));
            }
        }
        Match::Conntrack { .. } => {
            if !mb.seen.contains(&"--ctstate") {
                return Err(err_at(&mb.at, "match `conntrack` needs an option"));
            }
        }
        Match::State(_) => {
            if !mb.seen.contains(&"--state") {
                return Err(err_at(&mb.at, "match `state` needs `--state`"));
            }
        }
        Match::Comment { .. } => {
            if !mb.seen.contains(&"--comment") {
                return Err(err_at(&mb.at, "match `comment` needs `--comment`"));
            }
        }
        Match::Set { name, .. } => {
            if name.is_empty() {
                return Err(err_at(&mb.at, "match `set` needs `--match-set NAME FLAGS`"));
            }
        }
        Match::Statistic { mode, .. } => {
            if !mb.seen.contains(&"--mode") {
                return Err(err_at(&mb.at, "match `statistic` needs `--mode`"));
            }
            if let StatisticMode::Nth {
                every: u32::MAX, ..
            } = mode
            {
                return Err(err_at(&mb.at, "`--mode nth` needs `--every`"));
            }
        }
        Match::Addrtype { src, dst, .. } => {
            if src.is_none() && dst.is_none() {
                return Err(err_at(
                    &mb.at,
                    "match `addrtype` needs `--src-type` or `--dst-type`",
                ));
            }
        }
        Match::Socket { .. } | Match::Unknown { .. } => {}
    }
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

// ----- values -----

fn parse_u64(t: &Token) -> Res<u64> {
    t.text
        .parse()
        .map_err(|_| err_at(t, format!("expected a counter, found `{}`", t.text)))
}

/// A number as strtoul reads it (decimal, `0x` hex, leading-zero octal).
fn parse_u32_tok(t: &Token) -> Res<u32> {
    parse_num(&t.text).ok_or_else(|| {
        err_at(
            t,
            format!("expected a number from 0 to 4294967295, found `{}`", t.text),
        )
    })
}

fn parse_num(s: &str) -> Option<u32> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u32::from_str_radix(h, 16).ok();
    }
    if s.len() > 1 && s.starts_with('0') {
        return u32::from_str_radix(s.get(1..)?, 8).ok();
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_mark_mask(t: &Token, default_mask: u32) -> Res<MarkMask> {
    let bad = || {
        err_at(t, format!("invalid mark `{}`", t.text))
            .with_help("expected VALUE or VALUE/MASK, each 0 to 0xffffffff")
    };
    let (v, m) = match t.text.split_once('/') {
        Some((v, m)) => (v, Some(m)),
        None => (t.text.as_str(), None),
    };
    let value = parse_num(v).ok_or_else(bad)?;
    let mask = match m {
        Some(m) => parse_num(m).ok_or_else(bad)?,
        None => default_mask,
    };
    Ok(MarkMask { value, mask })
}

const SERVICES: &[(&str, u16)] = &[
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("http", 80),
    ("pop3", 110),
    ("ntp", 123),
    ("imap", 143),
    ("snmp", 161),
    ("ldap", 389),
    ("https", 443),
    ("imaps", 993),
    ("pop3s", 995),
    ("mysql", 3306),
    ("postgresql", 5432),
];

fn parse_port(t: &Token, s: &str) -> Res<u16> {
    if let Some((_, p)) = SERVICES.iter().find(|(n, _)| *n == s) {
        return Ok(*p);
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = s.parse::<u32>() {
            if let Ok(p) = u16::try_from(n) {
                return Ok(p);
            }
        }
        return Err(err_at(t, format!("port `{s}` out of range (0 to 65535)")));
    }
    Err(err_at(t, format!("invalid port `{s}`"))
        .with_help("expected a number from 0 to 65535 or a service name"))
}

/// `a`, `a:b`, `a:` or `:b` (`sep` is `-` for targets' `--to-ports`).
fn parse_port_range(t: &Token, s: &str, sep: char) -> Res<PortRange> {
    match s.split_once(sep) {
        Some((lo, hi)) => {
            let lo = if lo.is_empty() { 0 } else { parse_port(t, lo)? };
            let hi = if hi.is_empty() {
                u16::MAX
            } else {
                parse_port(t, hi)?
            };
            if lo > hi {
                return Err(err_at(
                    t,
                    format!("port range `{s}` is empty (first port above last)"),
                ));
            }
            Ok(PortRange { lo, hi })
        }
        None => Ok(PortRange::single(parse_port(t, s)?)),
    }
}

fn port_range_opt(t: &Token, negated: bool) -> Res<Option<Neg<PortRange>>> {
    let r = parse_port_range(t, &t.text, ':')?;
    if r.is_any() && !negated {
        return Ok(None);
    }
    Ok(Some(Neg::new(negated, r)))
}

fn tcp_flag_list(t: &Token) -> Res<u8> {
    let mut bits = 0u8;
    for f in t.text.split(',') {
        bits |= match f {
            "FIN" => 0x01,
            "SYN" => 0x02,
            "RST" => 0x04,
            "PSH" => 0x08,
            "ACK" => 0x10,
            "URG" => 0x20,
            "ALL" => 0x3f,
            "NONE" => 0,
            other => {
                return Err(err_at(t, format!("unknown TCP flag `{other}`")).with_help(
                    "expected FIN, SYN, RST, PSH, ACK, URG, ALL or NONE, comma-separated",
                ))
            }
        };
    }
    Ok(bits)
}

fn parse_id(t: &Token) -> Res<IdSpec> {
    let s = t.text.as_str();
    let num = |x: &str| -> Option<u32> {
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        x.parse::<u32>().ok().filter(|n| *n != u32::MAX)
    };
    if let Some(n) = num(s) {
        return Ok(IdSpec::Range { lo: n, hi: n });
    }
    if let Some((a, b)) = s.split_once('-') {
        if let (Some(lo), Some(hi)) = (num(a), num(b)) {
            if lo > hi {
                return Err(err_at(t, format!("id range `{s}` is empty")));
            }
            return Ok(IdSpec::Range { lo, hi });
        }
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return Err(err_at(t, format!("invalid id `{s}`"))
            .with_help("expected a number from 0 to 4294967294, a range `a-b`, or a name"));
    }
    if s.is_empty()
        || s.len() > 32
        || s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ':')
    {
        return Err(err_at(t, format!("invalid user or group name `{s}`")));
    }
    Ok(IdSpec::Name(s.to_string()))
}

fn parse_states(t: &Token, conntrack: bool) -> Res<Vec<CtState>> {
    let mut v = Vec::new();
    for s in t.text.split(',') {
        let st = CtState::CT_ORDER
            .into_iter()
            .find(|c| c.name() == s)
            .filter(|c| conntrack || !matches!(c, CtState::Snat | CtState::Dnat))
            .ok_or_else(|| {
                err_at(t, format!("unknown state `{s}`")).with_help(if conntrack {
                    "expected INVALID, NEW, RELATED, ESTABLISHED, UNTRACKED, SNAT or DNAT"
                } else {
                    "expected INVALID, NEW, RELATED, ESTABLISHED or UNTRACKED"
                })
            })?;
        if !v.contains(&st) {
            v.push(st);
        }
    }
    v.sort();
    Ok(v)
}

fn parse_addrtypes(t: &Token) -> Res<Vec<AddrType>> {
    let mut v = Vec::new();
    for s in t.text.split(',') {
        let a = AddrType::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| err_at(t, format!("unknown address type `{s}`")))?;
        if !v.contains(&a) {
            v.push(a);
        }
    }
    v.sort();
    Ok(v)
}

fn parse_iface(t: &Token) -> Res<Option<Iface>> {
    let s = t.text.as_str();
    if s.len() > 15 {
        return Err(err_at(
            t,
            format!("interface name `{s}` longer than 15 characters"),
        ));
    }
    if s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || c == '/' || c.is_control())
    {
        return Err(err_at(t, format!("invalid interface name `{s}`")));
    }
    if s == "+" {
        return Ok(None);
    }
    Ok(Some(Iface(s.to_string())))
}

fn parse_protocol(t: &Token) -> Res<Option<Protocol>> {
    let s = t.text.to_ascii_lowercase();
    if s == "all" {
        return Ok(None);
    }
    let alias = match s.as_str() {
        "icmpv6" => "ipv6-icmp",
        "ipv6-mh" | "mh" => "mobility-header",
        other => other,
    };
    if let Some((_, n)) = PROTOCOL_NAMES.iter().find(|(name, _)| *name == alias) {
        return Ok(Some(Protocol(*n)));
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<u8>() {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(Protocol(n))),
            Err(_) => Err(err_at(
                t,
                format!("protocol number `{s}` out of range (0 to 255)"),
            )),
        };
    }
    Err(err_at(t, format!("unknown protocol `{}`", t.text))
        .with_help("expected tcp, udp, icmp, icmpv6, sctp, all, or a number"))
}

fn parse_ip(family: Family, t: &Token, s: &str) -> Res<IpAddr> {
    let ip: IpAddr = match s {
        "localhost" if family == Family::Ipv4 => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        "localhost" | "ip6-localhost" => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        _ => s.parse().map_err(|_| {
            let mut e = err_at(t, format!("invalid address `{s}`"));
            e.help = Some(match family {
                Family::Ipv4 => {
                    "expected an IPv4 address such as 10.0.0.1 (host names are not resolved)".into()
                }
                Family::Ipv6 => {
                    "expected an IPv6 address such as fd00::1 (host names are not resolved)".into()
                }
            });
            e
        })?,
    };
    match (family, ip) {
        (Family::Ipv4, IpAddr::V6(_)) => Err(err_at(
            t,
            format!("IPv6 address `{s}` in an IPv4 rule"),
        )
        .with_help(
            "IPv6 rules belong to ip6tables (the second block of a file, after `ip6tables-save`)",
        )),
        (Family::Ipv6, IpAddr::V4(_)) => {
            Err(err_at(t, format!("IPv4 address `{s}` in an IPv6 rule")))
        }
        _ => Ok(ip),
    }
}

fn parse_addresses(family: Family, t: &Token) -> Res<Vec<Cidr>> {
    let mut out = Vec::new();
    for part in t.text.split(',') {
        let (addr, len) = match part.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (part, None),
        };
        let ip = parse_ip(family, t, addr)?;
        let width: u8 = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match len {
            None => width,
            Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => {
                let n: u32 = l.parse().unwrap_or(u32::MAX);
                if n > u32::from(width) {
                    return Err(err_at(t, format!("prefix length `/{l}` over {width}")));
                }
                u8::try_from(n).unwrap_or(width)
            }
            Some(l) => {
                // A dotted mask: only contiguous ones are supported.
                let m = match l.parse::<IpAddr>() {
                    Ok(m) if m.is_ipv4() == ip.is_ipv4() => m,
                    _ => {
                        return Err(err_at(t, format!("invalid mask `{l}`")).with_help(format!(
                            "expected a prefix length from 0 to {width} or a dotted mask"
                        )))
                    }
                };
                let bits: u128 = match m {
                    IpAddr::V4(m) => u128::from(u32::from(m)) << 96,
                    IpAddr::V6(m) => u128::from(m),
                };
                let ones = bits.leading_ones();
                if bits.checked_shl(ones).unwrap_or(0) != 0 {
                    return Err(err_at(t, format!("mask `{l}` is not contiguous"))
                        .with_help("give the mask as a prefix length, e.g. /16"));
                }
                u8::try_from(ones.min(u32::from(width))).unwrap_or(width)
            }
        };
        out.push(Cidr::new(ip, prefix));
    }
    Ok(out)
}

fn parse_nat_range(family: Family, t: &Token) -> Res<NatRange> {
    let s = t.text.as_str();
    let bad = || {
        err_at(t, format!("invalid address range `{s}`"))
            .with_help("expected ADDR[-ADDR][:PORT[-PORT]], with [ADDR] for IPv6 and a port")
    };
    if family == Family::Ipv4
        && s.split('-')
            .any(|p| p.parse::<std::net::Ipv6Addr>().is_ok())
    {
        return Err(err_at(t, format!("IPv6 address `{s}` in an IPv4 rule"))
            .with_help("IPv6 rules belong to ip6tables (the second block of a file, after `ip6tables-save`)"));
    }
    let (addrs, ports) = if let Some(rest) = s.strip_prefix('[') {
        let (inner, after) = rest.split_once(']').ok_or_else(bad)?;
        let ports = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(bad()),
        };
        (inner, ports)
    } else if family == Family::Ipv6 {
        (s, None)
    } else {
        match s.split_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        }
    };
    let (addr_lo, addr_hi) = if addrs.is_empty() {
        (None, None)
    } else {
        match addrs.split_once('-') {
            Some((a, b)) => (Some(parse_ip(family, t, a)?), Some(parse_ip(family, t, b)?)),
            None => (Some(parse_ip(family, t, addrs)?), None),
        }
    };
    let addr_hi = addr_hi.filter(|h| Some(*h) != addr_lo);
    let ports = match ports {
        Some(p) => Some(parse_port_range(t, p, '-')?),
        None => None,
    };
    Ok(NatRange {
        addr_lo,
        addr_hi,
        ports,
    })
}
