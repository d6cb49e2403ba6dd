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
//!
//! The pieces, in the order a line meets them: `bytes` (the input as text, its limits),
//! `detect` (which form each line is in), a front end per form (`restore`, `commands`, sharing
//! the iptables syntax of `iptables`, [`lex`] and [`rule`]) and the [`loader`] they drive, which
//! holds the tables and makes the kernel's checks. [`loader`] says how to add a front end.

mod bytes;
mod commands;
mod detect;
mod iptables;
pub mod lex;
pub mod loader;
mod restore;
pub mod rule;

pub use bytes::{read_bounded, MAX_LINE_BYTES};

use crate::ast::Ruleset;
use crate::error::ParseError;
use detect::{Detector, LineKind};
use loader::{FrontEnd, Line, Loader};

/// Declares [`Format`] and [`Format::ALL`] from one list, so that no form is left out of `ALL`.
macro_rules! formats {
    ($($(#[$doc:meta])* $variant:ident,)*) => {
        /// The form an input was written in.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum Format {
            $($(#[$doc])* $variant,)*
        }

        impl Format {
            /// Every form, in declaration order.
            pub const ALL: &'static [Format] = &[$(Format::$variant,)*];
        }
    };
}

formats! {
    /// `iptables-save` output or iptables-restore input.
    Restore,
    /// One `iptables`/`ip6tables` command per line.
    Commands,
    /// An nft script, or what `nft list ruleset` prints ([`crate::nft`]).
    Nft,
    /// What `nft -j list ruleset` prints, or an `nft -j -f` document ([`crate::nft::json`]).
    NftJson,
}

/// The reader of each line-based form (nft's is not line-based: [`crate::nft::parse`]).
fn front_end(format: Format) -> Option<Box<dyn FrontEnd>> {
    match format {
        Format::Restore => Some(Box::new(restore::Restore)),
        Format::Commands => Some(Box::new(commands::Commands)),
        Format::Nft | Format::NftJson => None,
    }
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
    let text = bytes::text(source_name, input)?;
    if crate::nft::json::looks_like_json(text) {
        return Ok(Parsed {
            ruleset: crate::nft::json::parse(source_name, text)?,
            format: Format::NftJson,
        });
    }
    if crate::nft::looks_like_nft(text) {
        return Ok(Parsed {
            ruleset: crate::nft::parse(source_name, text)?,
            format: Format::Nft,
        });
    }
    let mut loader = Loader::new(source_name, text);
    loader.start_in(detect::unmarked_family(text));
    let mut detector = Detector::default();
    // Chosen by the first line of a form; a line of another form is refused by the detector.
    let mut reader: Option<Box<dyn FrontEnd>> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let line = Line {
            source: source_name,
            number: i + 1,
            text: raw.strip_suffix('\r').unwrap_or(raw),
        };
        match detector.classify(&line)? {
            LineKind::Skip => {}
            LineKind::Header(family) => loader.generated_by(family),
            LineKind::SaveLine(family) => loader.save_line(family),
            LineKind::Form(format) => {
                if reader.is_none() {
                    reader = front_end(format);
                }
                if let Some(r) = reader.as_mut() {
                    r.line(&mut loader, &line)?;
                }
            }
        }
    }
    loader.finish(detector.format())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::print_ruleset;

    /// The same small ruleset in each form: IPv4 and IPv6, a user chain, a jump, an insertion.
    fn sample(format: Format) -> &'static str {
        match format {
            Format::Restore => concat!(
                "# Generated by iptables-save v1.8.9\n",
                "*nat\n",
                ":OUTPUT ACCEPT [0:0]\n",
                ":ISTIO_OUTPUT - [0:0]\n",
                "-A OUTPUT -p tcp -j ISTIO_OUTPUT\n",
                "-A ISTIO_OUTPUT -o lo -j RETURN\n",
                "-I ISTIO_OUTPUT 1 -m owner --uid-owner 1337 -j RETURN\n",
                "COMMIT\n",
                "# Generated by ip6tables-save v1.8.9\n",
                "*nat\n",
                "-N ISTIO_OUTPUT\n",
                "-A OUTPUT -p tcp -j ISTIO_OUTPUT\n",
                "COMMIT\n",
            ),
            Format::Commands => concat!(
                "iptables -t nat -N ISTIO_OUTPUT\n",
                "iptables -t nat -A OUTPUT -p tcp -j ISTIO_OUTPUT\n",
                "iptables -t nat -A ISTIO_OUTPUT -o lo -j RETURN\n",
                "iptables -w -t nat -I ISTIO_OUTPUT 1 -m owner --uid-owner 1337 -j RETURN\n",
                "ip6tables -t nat -N ISTIO_OUTPUT\n",
                "ip6tables -t nat -A OUTPUT -p tcp -j ISTIO_OUTPUT\n",
            ),
            Format::Nft => concat!(
                "add table inet t\n",
                "add chain inet t output { type nat hook output priority -100 ; }\n",
                "add chain inet t istio-output\n",
                "add rule inet t output meta l4proto tcp jump istio-output\n",
                "add rule inet t istio-output oifname lo return\n",
                "insert rule inet t istio-output index 0 skuid 1337 return\n",
            ),
            // What `nft -j list ruleset` printed after `nft -f` of the nft sample (1.0.6).
            Format::NftJson => concat!(
                r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, "#,
                r#"{"table": {"family": "inet", "name": "t", "handle": 1}}, "#,
                r#"{"chain": {"family": "inet", "table": "t", "name": "output", "handle": 1, "type": "nat", "hook": "output", "prio": -100, "policy": "accept"}}, "#,
                r#"{"chain": {"family": "inet", "table": "t", "name": "istio-output", "handle": 2}}, "#,
                r#"{"rule": {"family": "inet", "table": "t", "chain": "output", "handle": 3, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}, {"jump": {"target": "istio-output"}}]}}, "#,
                r#"{"rule": {"family": "inet", "table": "t", "chain": "istio-output", "handle": 5, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "skuid"}}, "right": 1337}}, {"return": null}]}}, "#,
                r#"{"rule": {"family": "inet", "table": "t", "chain": "istio-output", "handle": 4, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "lo"}}, {"return": null}]}}]}"#,
                "\n",
            ),
        }
    }

    /// What `nft list ruleset` prints after `nft -f` of the nft sample (nftables 1.0.6).
    const NFT_LISTED: &str = "table inet t {\n\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tmeta l4proto tcp jump istio-output\n\t}\n\n\tchain istio-output {\n\t\tmeta skuid 1337 return\n\t\toifname \"lo\" return\n\t}\n}\n";

    /// What `iptables-save; ip6tables-save` prints after loading the sample.
    fn sample_saved() -> String {
        let chains = concat!(
            ":PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n",
            ":POSTROUTING ACCEPT [0:0]\n:ISTIO_OUTPUT - [0:0]\n",
        );
        let jump = "-A OUTPUT -p tcp -j ISTIO_OUTPUT\n";
        format!(
            "# Generated by iptables-save (sidecar-verify)\n*nat\n{chains}{jump}\
             -A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN\n\
             -A ISTIO_OUTPUT -o lo -j RETURN\nCOMMIT\n# Completed\n\
             # Generated by ip6tables-save (sidecar-verify)\n*nat\n{chains}{jump}\
             COMMIT\n# Completed\n"
        )
    }

    /// Each front end's form is detected as itself and loads the sample's ruleset, which survives
    /// the canonical print (in the save form; nft's in its own) and a second parse.
    #[test]
    fn every_format_is_detected_and_round_trips() {
        for &format in Format::ALL {
            let parsed = parse("sample", sample(format).as_bytes()).unwrap();
            assert_eq!(parsed.format, format);
            let printed = print_ruleset(&parsed.ruleset);
            let expected = match format {
                Format::Nft | Format::NftJson => NFT_LISTED.to_string(),
                _ => sample_saved(),
            };
            assert_eq!(printed, expected, "{format:?}");
            let again = parse("printed", printed.as_bytes()).unwrap();
            assert_eq!(again.ruleset, parsed.ruleset, "{format:?}\n{printed}");
        }
    }

    #[test]
    fn forms_do_not_mix() {
        let mixed = sample(Format::Commands).replace("ip6tables -t nat -N", "-N");
        let e = parse("mixed", mixed.as_bytes()).unwrap_err();
        assert_eq!(e.line, 5);
        assert_eq!(
            e.message,
            "line does not fit the input's form (one iptables command per line, detected at line 1)"
        );
    }
}
