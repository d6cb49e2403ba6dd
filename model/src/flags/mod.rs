//! Profiles from the generators' own flags: the words a mesh's rule generator was run with
//! (istio-iptables' flags and environment, the Istio sidecar injector's pod annotations; Kuma's
//! and Linkerd's in their own modules) read into the values of a [`Profile`] that they determine.
//!
//! Each generator is one module: its flag table (long name, short name, whether it takes a
//! value, what it sets), where each flag's meaning was taken from, and `apply`, which sets the
//! profile's values the flags determine and leaves every other value as the profile had it. So
//! the flags *refine* a profile: the built-in profile of the mesh, or a `--profile` file giving
//! what no flag says (the application's uid, the pod image's `users` and `groups`, what the
//! rules' version does with the proxy's own pod-local connections).
//!
//! The words are split as a POSIX shell splits them ([`shell_words`]): quotes group, `-x ''` is a
//! flag with an empty value. Flags are read as the generators' command-line library (Go's
//! `spf13/pflag`, under cobra) reads them: `--name value`, `--name=value`, `-n value`, `-nvalue`,
//! `-n=value`; a boolean flag alone is true, `--name=false` false (`--name false` is refused: the
//! word `false` would be an argument, which the generators silently ignore); the last of two
//! settings wins; `--` ends the flags. Leading `NAME=VALUE` words are the generator's
//! environment, read before the flags (a flag overrides its variable), as a shell prefix gives
//! them; a leading word naming the generator's program is skipped. An unknown flag, an unknown
//! variable, an argument or a bad value is refused, naming it in backticks ([`FlagError`]).

pub mod istio;
pub mod kuma;
pub mod linkerd;

use std::net::IpAddr;

/// Why flags could not be read into a profile. Every message names the flag (as it was
/// spelled), the variable or the annotation at fault in backticks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum FlagError {
    /// The words do not split (an unbalanced quote, a lone backslash at the end).
    #[error("{what}: cannot split into words: {reason}")]
    Words {
        /// What was being split (`` `--istio-args` ``).
        what: String,
        /// The splitter's reason.
        reason: String,
    },
    /// A flag the generator does not have.
    #[error("unknown {generator} flag `{flag}`")]
    UnknownFlag {
        /// The generator (`istio-iptables`).
        generator: &'static str,
        /// The flag as spelled.
        flag: String,
    },
    /// A flag that takes a value came last.
    #[error("{generator} flag `{flag}` needs a value")]
    MissingValue {
        /// The generator.
        generator: &'static str,
        /// The flag as spelled.
        flag: String,
    },
    /// A word that is no flag: the generators take flags only.
    #[error("unexpected argument `{word}`: {generator} takes flags only{hint}")]
    Argument {
        /// The generator.
        generator: &'static str,
        /// The word.
        word: String,
        /// More, when the word looks like a boolean flag's value.
        hint: String,
    },
    /// A leading `NAME=VALUE` naming no variable the generator reads.
    #[error("`{name}` is not an environment variable {generator} reads")]
    UnknownEnv {
        /// The generator.
        generator: &'static str,
        /// The variable's name.
        name: String,
    },
    /// A value the flag cannot take.
    #[error("`{flag}`: `{value}` {reason}")]
    BadValue {
        /// The flag, variable or annotation as spelled.
        flag: String,
        /// The value given (or the part of it at fault).
        value: String,
        /// What it should be.
        reason: String,
    },
    /// An annotation not of the form `KEY=VALUE`.
    #[error("`--annotation {0}`: expected KEY=VALUE")]
    AnnotationSyntax(String),
    /// An annotation key the injector derives no flag from (or one this tool does not read).
    #[error("unknown annotation `{key}`: {reason}")]
    UnknownAnnotation {
        /// The key.
        key: String,
        /// Which keys are read, or why this one is not.
        reason: String,
    },
    /// A user or group name the profile's `users` or `groups` does not resolve.
    #[error("`{flag}`: {what} `{name}` is not a number and the profile's `{table}` does not name it (give `{table} = {{ {name} = ID }}` in a --profile file, as the pod image resolves it)")]
    Unresolved {
        /// The flag or variable as spelled.
        flag: String,
        /// `user` or `group`.
        what: &'static str,
        /// The name.
        name: String,
        /// `users` or `groups`.
        table: &'static str,
    },
    /// Settings that contradict each other.
    #[error("{0}")]
    Conflict(String),
}

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Takes {
    /// The next word (or the rest of this one after `=`).
    Value,
    /// None: present means true; `--name=false` says otherwise.
    Bool,
}

/// One flag of a generator's table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec<K> {
    /// Its long name, without `--`.
    pub long: &'static str,
    /// Its one-letter name, if any.
    pub short: Option<char>,
    /// Whether it takes a value.
    pub takes: Takes,
    /// What it sets.
    pub key: K,
    /// Its environment variable, if the generator reads one for it.
    pub env: Option<&'static str>,
}

/// One setting read from the words: what it sets, as it was spelled, its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Given<K> {
    /// What it sets.
    pub key: K,
    /// The flag or variable as the user spelled it (`-p`, `--envoy-port`, `ISTIO_INBOUND_PORTS`).
    pub spelled: String,
    /// Its value (`true` for a boolean flag given alone).
    pub value: String,
}

/// A generator's command line: its name, the program words to skip, its flags, and the
/// variables it reads that are no flag's.
pub(crate) struct Grammar<'a, K> {
    /// Its name in messages (`istio-iptables`).
    pub generator: &'static str,
    /// Program names a leading word may be (its basename), skipped.
    pub programs: &'a [&'a str],
    /// Its flags.
    pub specs: &'a [Spec<K>],
    /// Variables read besides the flags' own, after them (a later one overrides an earlier).
    pub extra_env: &'a [(&'a str, K)],
}

/// `text` split into words as a shell splits them; `what` names the option in errors.
pub(crate) fn split_words(what: &str, text: &str) -> Result<Vec<String>, FlagError> {
    shell_words::split(text).map_err(|e| FlagError::Words {
        what: what.to_string(),
        reason: e.to_string(),
    })
}

impl<K: Copy> Grammar<'_, K> {
    /// The settings `words` give, the environment's first (flags' own variables, then the extra
    /// ones), then the flags in order: a later setting of a key overrides an earlier one.
    pub(crate) fn read(&self, words: &[String]) -> Result<Vec<Given<K>>, FlagError> {
        let mut rest = words;
        let mut env: Vec<(usize, Given<K>)> = Vec::new();
        while let Some((w, tail)) = rest.split_first() {
            let Some((name, value)) = w.split_once('=').filter(|(n, _)| is_env_name(n)) else {
                break;
            };
            env.push(self.env_given(name, value)?);
            rest = tail;
        }
        // Variables are read in the generator's order, not the words'.
        env.sort_by_key(|(rank, _)| *rank);
        let mut out: Vec<Given<K>> = env.into_iter().map(|(_, g)| g).collect();
        if let Some((w, tail)) = rest.split_first() {
            let base = w.rsplit('/').next().unwrap_or(w);
            if self.programs.contains(&base) {
                rest = tail;
            }
        }
        let mut i = 0;
        let mut last_bool: Option<String> = None;
        while let Some(w) = rest.get(i) {
            i += 1;
            if w == "--" {
                if let Some(extra) = rest.get(i) {
                    return Err(self.argument(extra, None));
                }
                break;
            }
            if let Some(long) = w.strip_prefix("--") {
                let (name, inline) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (long, None),
                };
                let spec = self
                    .specs
                    .iter()
                    .find(|s| s.long == name)
                    .ok_or_else(|| self.unknown(w.split('=').next().unwrap_or(w)))?;
                let spelled = format!("--{name}");
                let value = match (spec.takes, inline) {
                    (_, Some(v)) => v.to_string(),
                    (Takes::Bool, None) => "true".to_string(),
                    (Takes::Value, None) => {
                        let v = rest.get(i).ok_or_else(|| self.missing(&spelled))?;
                        i += 1;
                        v.clone()
                    }
                };
                last_bool =
                    (spec.takes == Takes::Bool && inline.is_none()).then(|| spelled.clone());
                out.push(Given {
                    key: spec.key,
                    spelled,
                    value,
                });
                continue;
            }
            let Some(shorts) = w.strip_prefix('-').filter(|s| !s.is_empty()) else {
                return Err(self.argument(w, last_bool.as_deref()));
            };
            last_bool = None;
            // A cluster of one-letter flags: booleans, then at most one taking a value (the
            // rest of the word, after an optional `=`, or the next word).
            for (at, c) in shorts.char_indices() {
                let spec = self
                    .specs
                    .iter()
                    .find(|s| s.short == Some(c))
                    .ok_or_else(|| self.unknown(&format!("-{c}")))?;
                let spelled = format!("-{c}");
                let after = shorts.get(at + c.len_utf8()..).unwrap_or("");
                match spec.takes {
                    Takes::Bool => {
                        if let Some(v) = after.strip_prefix('=') {
                            out.push(Given {
                                key: spec.key,
                                spelled,
                                value: v.to_string(),
                            });
                            break;
                        }
                        last_bool = after.is_empty().then(|| spelled.clone());
                        out.push(Given {
                            key: spec.key,
                            spelled,
                            value: "true".to_string(),
                        });
                    }
                    Takes::Value => {
                        let value = if after.is_empty() {
                            let v = rest.get(i).ok_or_else(|| self.missing(&spelled))?;
                            i += 1;
                            v.clone()
                        } else {
                            after.strip_prefix('=').unwrap_or(after).to_string()
                        };
                        out.push(Given {
                            key: spec.key,
                            spelled,
                            value,
                        });
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// The setting a leading `NAME=VALUE` gives, with its rank among the variables.
    fn env_given(&self, name: &str, value: &str) -> Result<(usize, Given<K>), FlagError> {
        let own = self
            .specs
            .iter()
            .find(|s| s.env == Some(name))
            .map(|s| (0, s.key));
        let extra = || {
            self.extra_env
                .iter()
                .position(|(n, _)| *n == name)
                .and_then(|p| self.extra_env.get(p).map(|(_, k)| (p + 1, *k)))
        };
        let (rank, key) = own.or_else(extra).ok_or_else(|| FlagError::UnknownEnv {
            generator: self.generator,
            name: name.to_string(),
        })?;
        Ok((
            rank,
            Given {
                key,
                spelled: name.to_string(),
                value: value.to_string(),
            },
        ))
    }

    fn unknown(&self, flag: &str) -> FlagError {
        FlagError::UnknownFlag {
            generator: self.generator,
            flag: flag.to_string(),
        }
    }

    fn missing(&self, flag: &str) -> FlagError {
        FlagError::MissingValue {
            generator: self.generator,
            flag: flag.to_string(),
        }
    }

    fn argument(&self, word: &str, after_bool: Option<&str>) -> FlagError {
        let hint = match after_bool {
            Some(f) if parse_bool(word).is_some() => {
                format!(" (a boolean flag takes its value as `{f}={word}`)")
            }
            _ => String::new(),
        };
        FlagError::Argument {
            generator: self.generator,
            word: word.to_string(),
            hint,
        }
    }
}

/// Whether `n` can name an environment variable (`[A-Za-z_][A-Za-z0-9_]*`).
fn is_env_name(n: &str) -> bool {
    let mut cs = n.chars();
    cs.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A boolean as Go's `strconv.ParseBool` reads it (pflag's boolean flags and istio's variables).
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// `g.value` as a boolean, or an error naming `g.spelled`.
pub(crate) fn bool_of<K>(g: &Given<K>) -> Result<bool, FlagError> {
    parse_bool(&g.value).ok_or_else(|| bad(g, &g.value, "is not a boolean (true or false)"))
}

/// An error naming the setting `g` and the part `value` of its value.
pub(crate) fn bad<K>(g: &Given<K>, value: &str, reason: &str) -> FlagError {
    FlagError::BadValue {
        flag: g.spelled.clone(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// The items of a comma-separated list, trimmed; empty items (`6000,7000,`) are skipped, as
/// Istio's lists skip them.
pub(crate) fn items(s: &str) -> Vec<&str> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .collect()
}

/// A port (1-65535).
pub(crate) fn port<K>(g: &Given<K>, s: &str) -> Result<u16, FlagError> {
    match s.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ if s.contains([':', '-']) => Err(bad(
            g,
            s,
            "is a port range, which a profile cannot say (give the ports one by one)",
        )),
        _ => Err(bad(g, s, "is not a port (1-65535)")),
    }
}

/// A comma-separated list of ports.
pub(crate) fn ports<K>(g: &Given<K>) -> Result<Vec<u16>, FlagError> {
    items(&g.value).into_iter().map(|s| port(g, s)).collect()
}

/// A comma-separated list of CIDRs (an address alone is refused, as `netip.ParsePrefix` refuses
/// it), each reduced to its network (`10.1.2.3/8` is 10.0.0.0/8, as Go's `net.ParseCIDR` and
/// iptables read it).
pub(crate) fn cidrs<K>(g: &Given<K>) -> Result<Vec<ipnet::IpNet>, FlagError> {
    items(&g.value)
        .into_iter()
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .map(|n| n.trunc())
                .map_err(|_| bad(g, s, "is not a CIDR (address/prefix length)"))
        })
        .collect()
}

/// A comma-separated list of addresses.
pub(crate) fn addresses<K>(g: &Given<K>) -> Result<Vec<IpAddr>, FlagError> {
    items(&g.value)
        .into_iter()
        .map(|s| {
            s.parse::<IpAddr>()
                .map_err(|_| bad(g, s, "is not an IP address"))
        })
        .collect()
}

/// A comma-separated list of interface names (1-15 bytes, no `/`, no whitespace).
pub(crate) fn interfaces<K>(g: &Given<K>) -> Result<Vec<String>, FlagError> {
    items(&g.value)
        .into_iter()
        .map(|s| {
            if s.len() > 15 || s.contains('/') || s.contains(char::is_whitespace) {
                Err(bad(g, s, "is not an interface name"))
            } else {
                Ok(s.to_string())
            }
        })
        .collect()
}

/// A number in decimal or `0x` hex.
pub(crate) fn number<K>(g: &Given<K>) -> Result<u32, FlagError> {
    let s = g.value.trim();
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| bad(g, &g.value, "is not a number"))
}

/// A user or group as a flag names it: a number, or a name the pod image resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OwnerWord {
    /// A numeric id.
    Id(u32),
    /// A name.
    Name(String),
}

/// A comma-separated list of users or groups.
pub(crate) fn owners<K>(g: &Given<K>) -> Result<Vec<OwnerWord>, FlagError> {
    let v: Vec<OwnerWord> = items(&g.value)
        .into_iter()
        .map(|s| match s.parse::<u32>() {
            Ok(n) => OwnerWord::Id(n),
            Err(_) => OwnerWord::Name(s.to_string()),
        })
        .collect();
    if v.is_empty() {
        return Err(bad(g, &g.value, "names no user or group"));
    }
    Ok(v)
}

/// `words` as ids: numbers as they are, names through `table` (a profile's `users` or
/// `groups`); an unresolved name is an error naming `flag`.
pub(crate) fn resolve(
    words: &[OwnerWord],
    table: &std::collections::BTreeMap<String, u32>,
    flag: &str,
    what: &'static str,
) -> Result<Vec<u32>, FlagError> {
    words
        .iter()
        .map(|w| match w {
            OwnerWord::Id(n) => Ok(*n),
            OwnerWord::Name(name) => {
                table
                    .get(name)
                    .copied()
                    .ok_or_else(|| FlagError::Unresolved {
                        flag: flag.to_string(),
                        what,
                        name: name.clone(),
                        table: if what == "user" { "users" } else { "groups" },
                    })
            }
        })
        .collect()
}

/// `v` without repeats, first occurrence kept.
pub(crate) fn dedup<T: PartialEq + Clone>(v: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for x in v {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// `ports` (a profile's `proxy_ports`) with each `(old, new)` listener replaced in place, and the
/// new ones it lacks appended: the order of a profile's list is kept when nothing changes.
pub(crate) fn replace_listeners(ports: &[u16], pairs: &[(Option<u16>, u16)]) -> Vec<u16> {
    let mut out: Vec<u16> = ports
        .iter()
        .map(|x| {
            pairs
                .iter()
                .find(|(old, _)| *old == Some(*x))
                .map_or(*x, |(_, new)| *new)
        })
        .collect();
    out.extend(pairs.iter().map(|(_, new)| *new));
    dedup(out)
}

/// `KEY=VALUE` split at the first `=`, as `--annotation` takes it.
pub fn annotation(s: &str) -> Result<(String, String), FlagError> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(FlagError::AnnotationSyntax(s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum K {
        Port,
        On,
        Dry,
        Env,
    }

    const SPECS: &[Spec<K>] = &[
        Spec {
            long: "port",
            short: Some('p'),
            takes: Takes::Value,
            key: K::Port,
            env: Some("PORT"),
        },
        Spec {
            long: "on",
            short: None,
            takes: Takes::Bool,
            key: K::On,
            env: None,
        },
        Spec {
            long: "dry",
            short: Some('n'),
            takes: Takes::Bool,
            key: K::Dry,
            env: None,
        },
    ];

    fn read(s: &str) -> Result<Vec<(K, String, String)>, FlagError> {
        let g = Grammar {
            generator: "gen",
            programs: &["gen"],
            specs: SPECS,
            extra_env: &[("EXTRA", K::Env)],
        };
        let words = split_words("`--x`", s)?;
        Ok(g.read(&words)?
            .into_iter()
            .map(|g| (g.key, g.spelled, g.value))
            .collect())
    }

    fn s(k: K, f: &str, v: &str) -> (K, String, String) {
        (k, f.to_string(), v.to_string())
    }

    #[test]
    fn every_spelling_of_a_value() {
        for w in ["-p 1", "-p1", "-p=1", "--port 1", "--port=1"] {
            let spelled = if w.starts_with("--") { "--port" } else { "-p" };
            assert_eq!(read(w).unwrap(), vec![s(K::Port, spelled, "1")], "{w}");
        }
        // A value may begin with a dash, and may be empty.
        assert_eq!(read("-p -1").unwrap(), vec![s(K::Port, "-p", "-1")]);
        assert_eq!(read("-p ''").unwrap(), vec![s(K::Port, "-p", "")]);
    }

    #[test]
    fn booleans_clusters_program_and_environment() {
        assert_eq!(
            read("EXTRA=x PORT=3 gen --on --dry=false -np 4").unwrap(),
            vec![
                s(K::Port, "PORT", "3"),
                s(K::Env, "EXTRA", "x"),
                s(K::On, "--on", "true"),
                s(K::Dry, "--dry", "false"),
                s(K::Dry, "-n", "true"),
                s(K::Port, "-p", "4"),
            ]
        );
        assert_eq!(read("/usr/bin/gen").unwrap(), vec![]);
        assert_eq!(read("-n=false").unwrap(), vec![s(K::Dry, "-n", "false")]);
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let e = |w: &str| read(w).unwrap_err().to_string();
        assert_eq!(e("--prt 1"), "unknown gen flag `--prt`");
        assert_eq!(e("--prt=1"), "unknown gen flag `--prt`");
        assert_eq!(e("-x"), "unknown gen flag `-x`");
        assert_eq!(e("-nx"), "unknown gen flag `-x`");
        assert_eq!(e("--port"), "gen flag `--port` needs a value");
        assert_eq!(e("-p"), "gen flag `-p` needs a value");
        assert_eq!(
            e("stray"),
            "unexpected argument `stray`: gen takes flags only"
        );
        assert_eq!(
            e("--on false"),
            "unexpected argument `false`: gen takes flags only (a boolean flag takes its value as `--on=false`)"
        );
        assert_eq!(e("-- -p"), "unexpected argument `-p`: gen takes flags only");
        assert_eq!(e("-"), "unexpected argument `-`: gen takes flags only");
        assert_eq!(e("FOO=1"), "`FOO` is not an environment variable gen reads");
        assert!(
            e("-p 'x").starts_with("`--x`: cannot split into words"),
            "{}",
            e("-p 'x")
        );
        // An assignment after the flags is an argument, as a shell passes it.
        assert_eq!(
            e("-p 1 PORT=2"),
            "unexpected argument `PORT=2`: gen takes flags only"
        );
    }

    #[test]
    fn values() {
        let g = |v: &str| Given {
            key: (),
            spelled: "-d".to_string(),
            value: v.to_string(),
        };
        assert_eq!(ports(&g("1, 2,,3,")).unwrap(), vec![1, 2, 3]);
        assert_eq!(
            ports(&g("1,x")).unwrap_err().to_string(),
            "`-d`: `x` is not a port (1-65535)"
        );
        assert_eq!(
            ports(&g("0")).unwrap_err().to_string(),
            "`-d`: `0` is not a port (1-65535)"
        );
        assert_eq!(
            ports(&g("65536")).unwrap_err().to_string(),
            "`-d`: `65536` is not a port (1-65535)"
        );
        assert!(ports(&g("8000:8010"))
            .unwrap_err()
            .to_string()
            .contains("is a port range"));
        assert_eq!(
            cidrs(&g("10.1.2.3/8,::1/128")).unwrap(),
            vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]
        );
        assert_eq!(
            cidrs(&g("10.0.0.1")).unwrap_err().to_string(),
            "`-d`: `10.0.0.1` is not a CIDR (address/prefix length)"
        );
        assert_eq!(number(&g("0x539")).unwrap(), 0x539);
        assert_eq!(number(&g("1337")).unwrap(), 1337);
        assert!(number(&g("x")).is_err());
        assert!(interfaces(&g("a/b")).is_err());
        assert!(interfaces(&g("abcdefghijklmnop")).is_err());
        assert_eq!(interfaces(&g("eth1,eth2")).unwrap(), vec!["eth1", "eth2"]);
        assert!(owners(&g("")).is_err());
        assert_eq!(
            owners(&g("3,java")).unwrap(),
            vec![OwnerWord::Id(3), OwnerWord::Name("java".into())]
        );
        assert_eq!(bool_of(&g("T")), Ok(true));
        assert_eq!(bool_of(&g("0")), Ok(false));
        assert_eq!(
            bool_of(&g("yes")).unwrap_err().to_string(),
            "`-d`: `yes` is not a boolean (true or false)"
        );
        assert_eq!(
            annotation("a=b=c").unwrap(),
            ("a".to_string(), "b=c".to_string())
        );
        assert_eq!(
            annotation("ab").unwrap_err().to_string(),
            "`--annotation ab`: expected KEY=VALUE"
        );
    }
}
