//! The statements of an nft rule, and the one target of the model's that a statement list is.

use std::net::IpAddr;

use super::{addr, family_of, num_u32, port, port_range, restrict, Cursor, Res};
use crate::ast::{CtZone, Family, MarkMask, NatRange, NftFamily, Rule, Target};
use crate::nft::lex::Token;

/// A parsed statement, before the list is turned into one target.
pub(super) enum Stmt {
    Target(Target),
    Tproxy { port: u16, on_ip: Option<IpAddr> },
    MarkSet(MarkMask),
}

/// A statement at the cursor, or `None` (the cursor unmoved) when there is none the model knows.
pub(super) fn statement(c: &mut Cursor<'_, '_>, r: &mut Rule) -> Res<Option<Stmt>> {
    let start = c.at;
    let Some(t) = c.next() else { return Ok(None) };
    let s = match t.text {
        "accept" => Stmt::Target(Target::Accept),
        "drop" => Stmt::Target(Target::Drop),
        "return" => Stmt::Target(Target::Return),
        "notrack" => Stmt::Target(Target::Notrack),
        "jump" | "goto" => {
            let n = c.want("a chain name")?;
            if !super::super::script::valid_name(n.text) {
                return Err(c.err(
                    &n,
                    format!("`{}` is not a chain name this model reads", n.text),
                ));
            }
            let chain = n.text.to_string();
            Stmt::Target(if t.text == "jump" {
                Target::Jump { chain }
            } else {
                Target::Goto { chain }
            })
        }
        "reject" => {
            if c.peek_is("with") {
                c.at = start;
                return Ok(None);
            }
            Stmt::Target(Target::Reject {
                with: String::new(),
            })
        }
        "redirect" => {
            let mut ports = None;
            if c.peek_is("to") {
                c.at += 1;
                let p = c.want("`:PORT`")?;
                let Some(s) = p.text.strip_prefix(':') else {
                    return Err(c.err(&p, format!("expected `:PORT`, found `{}`", p.text)));
                };
                let pt = Token { text: s, ..p };
                ports = Some(port_range(c, &pt)?);
            }
            Stmt::Target(Target::Redirect {
                ports,
                random: false,
            })
        }
        "masquerade" => Stmt::Target(Target::Masquerade {
            ports: None,
            random: false,
            random_fully: false,
        }),
        "dnat" | "snat" => {
            let mut fam = match c.table_family {
                NftFamily::Ip => Some(Family::Ipv4),
                NftFamily::Ip6 => Some(Family::Ipv6),
                NftFamily::Inet => None,
            };
            if let Some(f) = c.peek().and_then(|x| family_of(x.text)) {
                c.at += 1;
                fam = Some(f);
            }
            let to = c.want("`to`")?;
            let Some(fam) = fam.filter(|_| to.is("to")) else {
                c.at = start;
                return Ok(None);
            };
            restrict(c, r, &t, fam)?;
            let a = c.want("an address")?;
            let range = nat_range(c, &a, fam)?;
            Stmt::Target(if t.text == "dnat" {
                Target::Dnat {
                    to: range,
                    random: false,
                    persistent: false,
                }
            } else {
                Target::Snat {
                    to: range,
                    random: false,
                    random_fully: false,
                    persistent: false,
                }
            })
        }
        "tproxy" => {
            let mut fam = None;
            if let Some(f) = c.peek().and_then(|x| family_of(x.text)) {
                c.at += 1;
                fam = Some(f);
            }
            let to = c.want("`to`")?;
            if !to.is("to") {
                c.at = start;
                return Ok(None);
            }
            let a = c.want("`[ADDRESS]:PORT`")?;
            let (host, p) = match a.text.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') || h.starts_with('[') => (h, p),
                _ => {
                    c.at = start;
                    return Ok(None);
                }
            };
            let port = port(c, &a, p)?;
            let on_ip = if host.is_empty() {
                None
            } else {
                let h = host.trim_start_matches('[').trim_end_matches(']');
                let Some(f) = fam else {
                    c.at = start;
                    return Ok(None);
                };
                Some(addr(c, &a, h, f)?)
            };
            if let Some(f) = fam {
                restrict(c, r, &t, f)?;
            }
            Stmt::Tproxy { port, on_ip }
        }
        "meta" | "mark" | "ct" => {
            let mut word = t.text;
            if word == "meta" {
                let k = c.want("a meta key")?;
                if k.text != "mark" {
                    c.at = start;
                    return Ok(None);
                }
                word = "mark";
            }
            if word == "ct" {
                let k = c.want("a conntrack key")?;
                match k.text {
                    "mark" => word = "ctmark",
                    "zone" => word = "ctzone",
                    _ => {
                        c.at = start;
                        return Ok(None);
                    }
                }
            }
            if !c.peek_is("set") {
                c.at = start;
                return Ok(None);
            }
            c.at += 1;
            match mark_source(c)? {
                Some(src) => match (word, src) {
                    ("mark", Src::Value(value)) => Stmt::MarkSet(MarkMask {
                        value,
                        mask: u32::MAX,
                    }),
                    ("ctmark", Src::Value(value)) => Stmt::Target(Target::ConnmarkSet(MarkMask {
                        value,
                        mask: u32::MAX,
                    })),
                    // `meta mark set ct mark`, `ct mark set meta mark`: the whole mark copied.
                    (
                        "mark",
                        Src::Mark {
                            ct: true,
                            masked: None,
                        },
                    ) => Stmt::Target(Target::ConnmarkRestore {
                        nfmask: u32::MAX,
                        ctmask: u32::MAX,
                    }),
                    (
                        "ctmark",
                        Src::Mark {
                            ct: false,
                            masked: None,
                        },
                    ) => Stmt::Target(Target::ConnmarkSave {
                        nfmask: u32::MAX,
                        ctmask: u32::MAX,
                    }),
                    // `KEY set KEY & A | V`: the bits outside A cleared, V set.
                    (
                        "ctmark",
                        Src::Mark {
                            ct: true,
                            masked: Some((and, or)),
                        },
                    ) => Stmt::Target(Target::ConnmarkSet(MarkMask {
                        value: or,
                        mask: !and | or,
                    })),
                    (
                        "mark",
                        Src::Mark {
                            ct: false,
                            masked: Some((and, or)),
                        },
                    ) => Stmt::MarkSet(MarkMask {
                        value: or,
                        mask: !and | or,
                    }),
                    ("ctzone", Src::Value(v)) => {
                        let Ok(id) = u16::try_from(v) else {
                            let l = c.last();
                            return Err(c.err(&l, "a zone is at most 65535"));
                        };
                        Stmt::Target(Target::Ct {
                            notrack: false,
                            zone: Some(CtZone { id, orig: None }),
                        })
                    }
                    _ => {
                        c.at = start;
                        return Ok(None);
                    }
                },
                None => {
                    c.at = start;
                    return Ok(None);
                }
            }
        }
        "log" => {
            let mut prefix = None;
            let mut level = 4;
            loop {
                if c.peek_is("prefix") {
                    c.at += 1;
                    let p = c.want("a prefix")?;
                    prefix = Some(p.text.to_string());
                } else if c.peek_is("level") {
                    c.at += 1;
                    let l = c.want("a level")?;
                    level = match l.text {
                        "emerg" => 0,
                        "alert" => 1,
                        "crit" => 2,
                        "err" => 3,
                        "warn" => 4,
                        "notice" => 5,
                        "info" => 6,
                        "debug" => 7,
                        _ => return Err(c.err(&l, format!("unknown log level `{}`", l.text))),
                    };
                } else {
                    break;
                }
            }
            Stmt::Target(Target::Log {
                prefix,
                level,
                flags: Vec::new(),
            })
        }
        _ => {
            c.at = start;
            return Ok(None);
        }
    };
    Ok(Some(s))
}

/// The value a `set` statement writes.
enum Src {
    /// A constant (`0x539`).
    Value(u32),
    /// The packet's mark (`meta mark`, `mark`) or the connection's (`ct mark`, when `ct`), with
    /// the `& A | V` written after it (and-mask, or-value) when there is one.
    Mark {
        ct: bool,
        masked: Option<(u32, u32)>,
    },
}

fn mark_source(c: &mut Cursor<'_, '_>) -> Res<Option<Src>> {
    let t = c.want("a value")?;
    let from = match t.text {
        "ct" => {
            let k = c.want("`mark`")?;
            if k.text != "mark" {
                return Ok(None);
            }
            Some(true)
        }
        "meta" => {
            let k = c.want("`mark`")?;
            if k.text != "mark" {
                return Ok(None);
            }
            Some(false)
        }
        "mark" => Some(false),
        _ => None,
    };
    let Some(ct) = from else {
        return Ok(Some(Src::Value(num_u32(c, &t)?)));
    };
    let mut and = u32::MAX;
    let mut or = 0u32;
    let mut ops = false;
    while c.peek_is("&") || c.peek_is("and") || c.peek_is("|") || c.peek_is("or") {
        let op = c.next().map(|x| x.text).unwrap_or("");
        let v = c.want("a number")?;
        let n = num_u32(c, &v)?;
        ops = true;
        if op == "&" || op == "and" {
            and &= n;
            or &= n;
        } else {
            or |= n;
        }
    }
    Ok(Some(Src::Mark {
        ct,
        masked: ops.then_some((and, or)),
    }))
}

fn nat_range(c: &Cursor<'_, '_>, t: &Token<'_>, fam: Family) -> Res<NatRange> {
    let text = t.text;
    let (host, ports) = if fam == Family::Ipv4 {
        match text.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    } else if let Some(rest) = text.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Err(c.err(t, format!("expected `[ADDRESS]:PORT`, found `{text}`"))),
        }
    } else {
        (text, None)
    };
    let (lo, hi) = match host.split_once('-') {
        Some((a, b)) => (addr(c, t, a, fam)?, Some(addr(c, t, b, fam)?)),
        None if host.is_empty() => return Err(c.err(t, "expected an address")),
        None => (addr(c, t, host, fam)?, None),
    };
    let ports = match ports {
        Some(p) => {
            let pt = Token { text: p, ..*t };
            Some(port_range(c, &pt)?)
        }
        None => None,
    };
    Ok(NatRange {
        addr_lo: Some(lo),
        addr_hi: hi,
        ports,
    })
}

/// The statement list as one target: the model's targets are iptables', so a list is taken when
/// it is one of theirs (a single statement, or TPROXY's `tproxy … [meta mark set V] accept`);
/// `None` for any other list.
pub(super) fn target(stmts: Vec<Stmt>) -> Option<Option<Target>> {
    let mut it = stmts.into_iter();
    let first = it.next();
    let rest: Vec<Stmt> = it.collect();
    Some(match (first, rest.as_slice()) {
        (None, _) => None,
        (Some(Stmt::Target(t)), []) => Some(t),
        (Some(Stmt::MarkSet(m)), []) => Some(Target::Mark(m)),
        (Some(Stmt::Tproxy { port, on_ip, .. }), [Stmt::Target(Target::Accept)]) => {
            Some(Target::Tproxy {
                on_port: port,
                on_ip,
                mark: MarkMask { value: 0, mask: 0 },
            })
        }
        (
            Some(Stmt::Tproxy { port, on_ip, .. }),
            [Stmt::MarkSet(m), Stmt::Target(Target::Accept)],
        ) => Some(Target::Tproxy {
            on_port: port,
            on_ip,
            mark: *m,
        }),
        _ => return None,
    })
}
