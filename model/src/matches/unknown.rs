//! What the model knows of modules it keeps verbatim ([`Match::Unknown`]): their arguments
//! print back as written, and a few facts about some of them matter all the same.

use super::Match;
use crate::print::verbatim_arg;

/// Options of modules kept verbatim whose value is an address or an address range: the model
/// does not interpret them, but an address of the other family is refused as iptables refuses
/// it (`-m policy --tunnel-src fd00::1` in an IPv4 rule). A module the model interprets lists
/// these in its own `ADDRESS_OPTIONS`.
pub const ADDRESS_OPTIONS: &[(&str, &[&str])] = &[("policy", &["--tunnel-src", "--tunnel-dst"])];

/// Modules kept verbatim that make the kernel track connections.
pub const CONNTRACK_MODULES: &[&str] =
    &["connlimit", "connbytes", "connlabel", "helper", "cluster"];

/// The address options of the verbatim module `name`.
pub fn address_options(name: &str) -> &'static [&'static str] {
    ADDRESS_OPTIONS
        .iter()
        .find(|(m, _)| *m == name)
        .map_or(&[], |(_, opts)| opts)
}

/// Whether `name` can be a module's name (the kernel's limit, and what reads back as one).
pub(crate) fn is_module_name(name: &str) -> bool {
    !(name.is_empty()
        || name.len() > 28
        || name.starts_with('-')
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
}

/// Prints ` -m NAME ARGS…`.
pub(crate) fn print(s: &mut String, name: &str, args: &[String]) {
    s.push_str(" -m ");
    s.push_str(name);
    for a in args {
        s.push(' ');
        s.push_str(&verbatim_arg(a));
    }
}

/// The generator's selector for a module kept verbatim.
pub const GEN_SLOT: u32 = 13;

/// The module kept verbatim that the generator makes.
pub(crate) fn generate() -> Match {
    Match::Unknown {
        name: "limit".into(),
        args: vec!["--limit".into(), "5/min".into()],
    }
}
