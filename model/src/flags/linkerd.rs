//! Linkerd's proxy-init flags (linkerd2-proxy-init) read into the profile values they determine
//! ([`LinkerdFlags::apply`]), on the built-in `linkerd` profile.
//!
//! # Where each meaning was taken from
//! linkerd/linkerd2-proxy-init: `proxy-init/cmd/root.go` (the flags, their one-letter names,
//! `--incoming-proxy-port` and `--outgoing-proxy-port` required, the list flags as pflag's
//! slices: comma-separated, and a repeated flag adds to the list) and
//! `proxy-init/internal/iptables/iptables.go` (what they do: the proxy's uid returned in
//! PROXY_INIT_OUTPUT, every connection over lo returned, `--outbound-ports-to-ignore` returned
//! outbound, `--inbound-ports-to-ignore` and `--subnets-to-ignore` (by source) returned inbound,
//! `--ports-to-redirect` the only inbound ports redirected, else every one). The proxy is known
//! by its uid alone (`proxy_identity = ["uid"]`); without `--proxy-uid` proxy-init writes no
//! uid rule and the profile keeps its proxy (linkerd: 2102), whose connections `check` then
//! shows captured. `metrics_ports` are the ignored inbound ports among the proxy's admin port
//! 4191 (metrics and health). Port ranges (`4000-4100`), which proxy-init accepts in the ignore
//! lists, are refused: a profile lists ports. Accepted and setting nothing a profile says:
//! `--simulate`, `--netns`, `-w`, `--timeout-close-wait-secs`, `--log-format`, `--log-level`,
//! `--firewall-bin-path`, `--firewall-save-bin-path`.

use super::{
    bool_of, cidrs, number, ports, replace_listeners, split_words, FlagError, Given, Grammar, Spec,
    Takes,
};
use crate::profile::{Credential, Profile};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Incoming,
    Outgoing,
    Uid,
    Redirect,
    IgnoreInbound,
    IgnoreOutbound,
    Subnets,
    NoEffectBool,
    NoEffect,
}

const fn f(long: &'static str, short: Option<char>, takes: Takes, key: Key) -> Spec<Key> {
    Spec {
        long,
        short,
        takes,
        key,
        env: None,
    }
}

const FLAGS: &[Spec<Key>] = &[
    f(
        "incoming-proxy-port",
        Some('p'),
        Takes::Value,
        Key::Incoming,
    ),
    f(
        "outgoing-proxy-port",
        Some('o'),
        Takes::Value,
        Key::Outgoing,
    ),
    f("proxy-uid", Some('u'), Takes::Value, Key::Uid),
    f("ports-to-redirect", Some('r'), Takes::Value, Key::Redirect),
    f(
        "inbound-ports-to-ignore",
        None,
        Takes::Value,
        Key::IgnoreInbound,
    ),
    f(
        "outbound-ports-to-ignore",
        None,
        Takes::Value,
        Key::IgnoreOutbound,
    ),
    f("subnets-to-ignore", None, Takes::Value, Key::Subnets),
    f("simulate", None, Takes::Bool, Key::NoEffectBool),
    f("netns", None, Takes::Value, Key::NoEffect),
    f("use-wait-flag", Some('w'), Takes::Bool, Key::NoEffectBool),
    f("timeout-close-wait-secs", None, Takes::Value, Key::NoEffect),
    f("log-format", None, Takes::Value, Key::NoEffect),
    f("log-level", None, Takes::Value, Key::NoEffect),
    f("firewall-bin-path", None, Takes::Value, Key::NoEffect),
    f("firewall-save-bin-path", None, Takes::Value, Key::NoEffect),
];

const GRAMMAR: Grammar<'static, Key> = Grammar {
    generator: "proxy-init",
    programs: &["proxy-init", "linkerd2-proxy-init"],
    specs: FLAGS,
    extra_env: &[],
};

/// The proxy's admin port (metrics and health), which the injector has proxy-init ignore.
pub const ADMIN_PORT: u16 = 4191;

/// The profile values the flags determine (`proxy_uid` only when `--proxy-uid` is given).
pub const DETERMINES: &[&str] = &[
    "proxy_uid",
    "proxy_mark",
    "proxy_identity",
    "outbound_port",
    "inbound_port",
    "proxy_ports",
    "metrics_ports",
    "inbound_ports",
    "exclude_inbound_ports",
    "exclude_outbound_ports",
    "exclude_inbound_cidrs",
];

/// A proxy-init configuration ([`LinkerdFlags::read`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkerdFlags {
    incoming: u16,
    outgoing: u16,
    uid: Option<u32>,
    redirect: Vec<u16>,
    ignore_inbound: Vec<u16>,
    ignore_outbound: Vec<u16>,
    subnets: Vec<ipnet::IpNet>,
}

impl LinkerdFlags {
    /// Reads proxy-init's words.
    ///
    /// # Example
    /// ```
    /// use sidecar_model::flags::linkerd::LinkerdFlags;
    /// use sidecar_model::pod::Profile;
    ///
    /// let f = LinkerdFlags::read("--incoming-proxy-port 4143 --outgoing-proxy-port 4140 --proxy-uid 2102 --inbound-ports-to-ignore 4190,4191,4567,4568 --outbound-ports-to-ignore 4567,4568").unwrap();
    /// let linkerd = Profile::named("linkerd").unwrap();
    /// assert_eq!(f.profile(linkerd.clone()).unwrap(), linkerd);
    /// ```
    pub fn read(args: &str) -> Result<LinkerdFlags, FlagError> {
        let mut incoming = None;
        let mut outgoing = None;
        let mut l = LinkerdFlags {
            incoming: 0,
            outgoing: 0,
            uid: None,
            redirect: Vec::new(),
            ignore_inbound: Vec::new(),
            ignore_outbound: Vec::new(),
            subnets: Vec::new(),
        };
        let given = GRAMMAR.read(&split_words("`--linkerd-args`", args)?)?;
        for g in &given {
            let one = |g: &Given<Key>| super::port(g, &g.value);
            match g.key {
                Key::Incoming => incoming = Some(one(g)?),
                Key::Outgoing => outgoing = Some(one(g)?),
                Key::Uid => {
                    let n = number(g)?;
                    // proxy-init writes the uid rule for a uid above 0 only.
                    l.uid = (n > 0).then_some(n);
                }
                // pflag's slices: a repeated flag adds to the list.
                Key::Redirect => l.redirect.extend(ports(g)?),
                Key::IgnoreInbound => l.ignore_inbound.extend(ports(g)?),
                Key::IgnoreOutbound => l.ignore_outbound.extend(ports(g)?),
                Key::Subnets => l.subnets.extend(cidrs(g)?),
                Key::NoEffectBool => {
                    bool_of(g)?;
                }
                Key::NoEffect => {}
            }
        }
        let need = |v: Option<u16>, flag: &str| {
            v.ok_or_else(|| {
                FlagError::Conflict(format!(
                    "proxy-init needs `{flag}` (it refuses to run without a valid port)"
                ))
            })
        };
        l.incoming = need(incoming, "--incoming-proxy-port")?;
        l.outgoing = need(outgoing, "--outgoing-proxy-port")?;
        Ok(l)
    }

    /// `base` with the values the flags determine ([`DETERMINES`]) set from them.
    pub fn profile(&self, mut base: Profile) -> Result<Profile, FlagError> {
        self.apply(&mut base);
        Ok(base)
    }

    /// Sets the values of `p` the flags determine ([`DETERMINES`]).
    pub fn apply(&self, p: &mut Profile) {
        if let Some(u) = self.uid {
            p.proxy_uid = u;
        }
        p.proxy_mark = None;
        p.proxy_identity = Some(vec![Credential::Uid]);
        p.proxy_ports = replace_listeners(
            &p.proxy_ports,
            &[
                (Some(p.outbound_port), self.outgoing),
                (Some(p.inbound_port), self.incoming),
            ],
        );
        p.outbound_port = self.outgoing;
        p.inbound_port = self.incoming;
        p.inbound_ports = (!self.redirect.is_empty()).then(|| self.redirect.clone());
        p.exclude_inbound_ports = super::dedup(self.ignore_inbound.iter().copied());
        p.metrics_ports = self
            .ignore_inbound
            .iter()
            .copied()
            .filter(|x| *x == ADMIN_PORT)
            .take(1)
            .collect();
        p.exclude_outbound_ports = super::dedup(self.ignore_outbound.iter().copied());
        p.exclude_inbound_cidrs = self.subnets.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linkerd() -> Profile {
        Profile::named("linkerd").unwrap()
    }

    fn profile(s: &str) -> Profile {
        LinkerdFlags::read(s).unwrap().profile(linkerd()).unwrap()
    }

    fn err(s: &str) -> String {
        LinkerdFlags::read(s).unwrap_err().to_string()
    }

    #[test]
    fn every_flag() {
        let p = profile(
            "proxy-init -p 5143 -o 5140 -u 2103 -r 80 -r 8080,9090 --inbound-ports-to-ignore 4191 --inbound-ports-to-ignore 25 --outbound-ports-to-ignore 3306 --subnets-to-ignore 10.0.0.0/8 --simulate -w --netns /x --timeout-close-wait-secs 1 --log-format json --log-level debug --firewall-bin-path iptables --firewall-save-bin-path iptables-save",
        );
        assert_eq!(
            (p.inbound_port, p.outbound_port, p.proxy_uid),
            (5143, 5140, 2103)
        );
        assert_eq!(p.identity_kinds(), vec![Credential::Uid]);
        assert_eq!(p.proxy_ports, vec![5140, 5143, 4190, 4191]);
        assert_eq!(p.inbound_ports, Some(vec![80, 8080, 9090]));
        assert_eq!(p.exclude_inbound_ports, vec![4191, 25]);
        assert_eq!(p.metrics_ports, vec![4191]);
        assert_eq!(p.exclude_outbound_ports, vec![3306]);
        assert_eq!(p.exclude_inbound_cidrs, vec!["10.0.0.0/8".parse().unwrap()]);
        // No --proxy-uid (or 0): no uid rule, the profile's proxy stays.
        assert_eq!(profile("-p 4143 -o 4140").proxy_uid, 2102);
        assert_eq!(profile("-p 4143 -o 4140 -u 0").proxy_uid, 2102);
        // Nothing ignored, every inbound port redirected.
        let p = profile("-p 4143 -o 4140");
        assert_eq!((p.inbound_ports, p.metrics_ports.len()), (None, 0));
    }

    #[test]
    fn refusals() {
        assert_eq!(
            err("-o 4140"),
            "proxy-init needs `--incoming-proxy-port` (it refuses to run without a valid port)"
        );
        assert_eq!(
            err("-p 4143"),
            "proxy-init needs `--outgoing-proxy-port` (it refuses to run without a valid port)"
        );
        assert_eq!(err("-p x -o 1"), "`-p`: `x` is not a port (1-65535)");
        assert_eq!(err("-p 1 -o 1 -u x"), "`-u`: `x` is not a number");
        assert!(err("-p 1 -o 1 --inbound-ports-to-ignore 4000-4100").contains("is a port range"));
        assert_eq!(
            err("-p 1 -o 1 --subnets-to-ignore 10.0.0.1"),
            "`--subnets-to-ignore`: `10.0.0.1` is not a CIDR (address/prefix length)"
        );
        assert_eq!(
            err("-p 1 -o 1 --proxy-gid 5"),
            "unknown proxy-init flag `--proxy-gid`"
        );
        assert_eq!(
            err("-p 1 -o 1 --simulate=maybe"),
            "`--simulate`: `maybe` is not a boolean (true or false)"
        );
    }
}
