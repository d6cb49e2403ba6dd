//! `LOG` and `NFLOG`: log the packet (to the kernel log or through netlink) and go on.

use std::fmt::Write as _;

use super::{Given, TargetDef};
use crate::ast::Target;
use crate::parse::lex::Token;
use crate::parse::rule::values::parse_u32_tok;
use crate::parse::rule::{err_at, Res, WithHelp};
use crate::print::save_string;

/// LOG's options without a value, in print order.
const LOG_FLAGS: [&str; 5] = [
    "--log-tcp-sequence",
    "--log-tcp-options",
    "--log-ip-options",
    "--log-uid",
    "--log-macdecode",
];

/// `-j LOG`.
pub(crate) const LOG: TargetDef = TargetDef {
    name: "LOG",
    options: &[
        "--log-prefix",
        "--log-level",
        LOG_FLAGS[0],
        LOG_FLAGS[1],
        LOG_FLAGS[2],
        LOG_FLAGS[3],
        LOG_FLAGS[4],
    ],
    flags: &LOG_FLAGS,
    verbatim: &[],
    port_options: &[],
    allowed: None,
    finish: finish_log,
};

/// `-j NFLOG`.
pub(crate) const NFLOG: TargetDef = TargetDef {
    name: "NFLOG",
    options: &[
        "--nflog-group",
        "--nflog-prefix",
        "--nflog-range",
        "--nflog-size",
        "--nflog-threshold",
    ],
    flags: &[],
    finish: finish_nflog,
    ..LOG
};

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

/// The prefix option `opt`, at most `max` bytes.
fn prefix(g: &Given<'_>, opt: &str, max: usize) -> Res<Option<String>> {
    let prefix = g.value(opt).map(|(v, _)| v.to_string());
    if let Some(p) = &prefix {
        if p.len() > max {
            return Err(err_at(
                g.token(opt),
                format!("`{opt}` longer than {max} characters"),
            ));
        }
    }
    Ok(prefix)
}

/// The 16-bit number option `opt`; the range error names it `what` and adds `range`.
fn u16_option(g: &Given<'_>, opt: &str, what: &str, range: &str) -> Res<Option<u16>> {
    let Some((v, _)) = g.value(opt) else {
        return Ok(None);
    };
    let t = g.value_token(opt, v);
    u16::try_from(parse_u32_tok(&t)?)
        .map(Some)
        .map_err(|_| err_at(&t, format!("{what} `{v}` out of range{range}")))
}

fn finish_log(g: &Given<'_>) -> Res<Target> {
    let level = match g.value("--log-level") {
        Some((v, _)) => log_level(&g.value_token("--log-level", v))?,
        None => 4,
    };
    let flags = LOG_FLAGS
        .into_iter()
        .filter(|f| g.has(f))
        .map(str::to_string)
        .collect();
    Ok(Target::Log {
        prefix: prefix(g, "--log-prefix", 29)?,
        level,
        flags,
    })
}

fn finish_nflog(g: &Given<'_>) -> Res<Target> {
    let group = u16_option(g, "--nflog-group", "group", " (0 to 65535)")?.unwrap_or(0);
    let size = match g.value("--nflog-size").or_else(|| g.value("--nflog-range")) {
        Some((v, t)) => Some(parse_u32_tok(&Token {
            text: v.into(),
            start: t.start,
            end: t.end,
        })?),
        None => None,
    };
    let threshold = u16_option(g, "--nflog-threshold", "threshold", "")?.filter(|n| *n != 1);
    Ok(Target::Nflog {
        prefix: prefix(g, "--nflog-prefix", 63)?,
        group,
        size,
        threshold,
    })
}

pub(crate) fn print_log(s: &mut String, prefix: &Option<String>, level: u8, flags: &[String]) {
    if let Some(p) = prefix {
        let _ = write!(s, " --log-prefix {}", save_string(p));
    }
    if level != 4 {
        let _ = write!(s, " --log-level {level}");
    }
    for f in flags {
        let _ = write!(s, " {f}");
    }
}

pub(crate) fn print_nflog(
    s: &mut String,
    prefix: &Option<String>,
    group: u16,
    size: Option<u32>,
    threshold: Option<u16>,
) {
    if let Some(p) = prefix {
        let _ = write!(s, " --nflog-prefix {}", save_string(p));
    }
    if group != 0 {
        let _ = write!(s, " --nflog-group {group}");
    }
    if let Some(n) = size {
        let _ = write!(s, " --nflog-size {n}");
    }
    if let Some(n) = threshold {
        let _ = write!(s, " --nflog-threshold {n}");
    }
}
