//! `kumactl install transparent-proxy`'s flags (what kuma-init runs on Kubernetes) read into the
//! profile values they determine ([`KumaFlags::apply`]), on the built-in `kuma` profile.
//!
//! # Where each meaning was taken from
//! Kuma's generated reference of the command, `docs/generated/cmd/kumactl/
//! kumactl_install_transparent-proxy.md` (kumahq/kuma): each flag's name, default and
//! sentence. A flag not given has its documented default (outbound 15001, inbound 15006, DNS
//! listener 15053, inbound redirected, no DNS redirected, nothing excluded), but for the proxy's
//! user, which the command requires and which otherwise stays the profile's (kuma: 5678).
//! kuma-dp is known by its uid alone (`proxy_identity = ["uid"]`, `--uid-owner` only).
//! `--redirect-dns` captures the queries to the servers of `/etc/resolv.conf`, given here as
//! `DNS_SERVERS=IP,…` before the flags (ours, as for istio-iptables); `--redirect-all-dns-traffic`
//! every query, the pod's own addresses too. Refused, because a profile cannot say them:
//! `--exclude-outbound-tcp-ports-for-uids` and `--exclude-outbound-udp-ports-for-uids` (an
//! exclusion for some users only), `--ebpf-enabled` (no iptables rules at all), and a
//! `--redirect-inbound-port-v6` other than the inbound port (a profile has one inbound
//! listener). Accepted and setting nothing a profile says: `--dry-run`, `--verbose`,
//! `--store-firewalld`, `--skip-dns-conntrack-zone-split`, `--redirect-dns-upstream-target-chain`,
//! `--experimental-transparent-proxy-engine`, the eBPF paths and the parent command's options.
//! The synopsis says SSH's 22 is left alone by default; the flag table gives no default, which
//! is what is read (a profile that then claims 22 captured reports it, it does not hide it).

use std::net::IpAddr;

use super::{
    addresses, bad, bool_of, ports, replace_listeners, resolve, split_words, FlagError, Given,
    Grammar, OwnerWord, Spec, Takes,
};
use crate::profile::{Credential, Profile};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    OutboundPort,
    InboundPort,
    InboundPortV6,
    Uid,
    User,
    ExcludeInbound,
    ExcludeOutbound,
    RedirectInbound,
    RedirectDns,
    RedirectAllDns,
    DnsPort,
    DnsServers,
    PerUid,
    Ebpf,
    NoEffectBool,
    NoEffect,
}

const fn f(long: &'static str, takes: Takes, key: Key) -> Spec<Key> {
    Spec {
        long,
        short: None,
        takes,
        key,
        env: None,
    }
}

const FLAGS: &[Spec<Key>] = &[
    f("redirect-outbound-port", Takes::Value, Key::OutboundPort),
    f("redirect-inbound-port", Takes::Value, Key::InboundPort),
    f("redirect-inbound-port-v6", Takes::Value, Key::InboundPortV6),
    f("kuma-dp-uid", Takes::Value, Key::Uid),
    f("kuma-dp-user", Takes::Value, Key::User),
    f("exclude-inbound-ports", Takes::Value, Key::ExcludeInbound),
    f("exclude-outbound-ports", Takes::Value, Key::ExcludeOutbound),
    f("redirect-inbound", Takes::Bool, Key::RedirectInbound),
    f("redirect-dns", Takes::Bool, Key::RedirectDns),
    f("redirect-all-dns-traffic", Takes::Bool, Key::RedirectAllDns),
    f("redirect-dns-port", Takes::Value, Key::DnsPort),
    f(
        "exclude-outbound-tcp-ports-for-uids",
        Takes::Value,
        Key::PerUid,
    ),
    f(
        "exclude-outbound-udp-ports-for-uids",
        Takes::Value,
        Key::PerUid,
    ),
    f("ebpf-enabled", Takes::Bool, Key::Ebpf),
    f("dry-run", Takes::Bool, Key::NoEffectBool),
    f("verbose", Takes::Bool, Key::NoEffectBool),
    f("store-firewalld", Takes::Bool, Key::NoEffectBool),
    f(
        "skip-dns-conntrack-zone-split",
        Takes::Bool,
        Key::NoEffectBool,
    ),
    f(
        "experimental-transparent-proxy-engine",
        Takes::Bool,
        Key::NoEffectBool,
    ),
    f(
        "redirect-dns-upstream-target-chain",
        Takes::Value,
        Key::NoEffect,
    ),
    f("ebpf-bpffs-path", Takes::Value, Key::NoEffect),
    f("ebpf-instance-ip", Takes::Value, Key::NoEffect),
    f("ebpf-programs-source-path", Takes::Value, Key::NoEffect),
    f("api-timeout", Takes::Value, Key::NoEffect),
    f("config-file", Takes::Value, Key::NoEffect),
    f("log-level", Takes::Value, Key::NoEffect),
    f("no-config", Takes::Bool, Key::NoEffectBool),
];

const GRAMMAR: Grammar<'static, Key> = Grammar {
    generator: "kumactl install transparent-proxy",
    programs: &["kumactl"],
    specs: FLAGS,
    extra_env: &[("DNS_SERVERS", Key::DnsServers)],
};

/// The profile values the flags determine (`proxy_uid` only when a user is given,
/// `nameservers` only when `DNS_SERVERS` is).
pub const DETERMINES: &[&str] = &[
    "proxy_uid",
    "proxy_mark",
    "proxy_identity",
    "outbound_port",
    "inbound_port",
    "proxy_ports",
    "inbound_ports",
    "exclude_inbound_ports",
    "exclude_outbound_ports",
    "dns_capture_port",
    "dns_servers",
    "dns_capture_local",
    "nameservers",
];

/// A `kumactl install transparent-proxy` configuration ([`KumaFlags::read`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KumaFlags {
    outbound_port: u16,
    inbound_port: u16,
    user: Option<(String, OwnerWord)>,
    exclude_inbound: Vec<u16>,
    exclude_outbound: Vec<u16>,
    redirect_inbound: bool,
    redirect_dns: bool,
    redirect_all_dns: bool,
    dns_port: u16,
    dns_servers: Option<Vec<IpAddr>>,
    inbound_v6: Option<(String, u16)>,
}

impl KumaFlags {
    /// Reads the command's words (`kumactl install transparent-proxy` may lead; `DNS_SERVERS=`
    /// before the flags).
    ///
    /// # Example
    /// ```
    /// use sidecar_model::flags::kuma::KumaFlags;
    /// use sidecar_model::pod::Profile;
    ///
    /// let p = KumaFlags::read("--kuma-dp-uid 5679 --exclude-inbound-ports 22 --redirect-all-dns-traffic")
    ///     .unwrap()
    ///     .profile(Profile::named("kuma").unwrap())
    ///     .unwrap();
    /// assert_eq!((p.proxy_uid, p.exclude_inbound_ports.clone()), (5679, vec![22]));
    /// ```
    pub fn read(args: &str) -> Result<KumaFlags, FlagError> {
        let mut words = split_words("`--kuma-args`", args)?;
        // `kumactl install transparent-proxy`: the program and its two command words.
        if let Some(at) = words.iter().position(|w| w == "transparent-proxy") {
            if words.get(..at).is_some_and(|pre| {
                pre.iter()
                    .all(|w| w.contains('=') || w.ends_with("kumactl") || w == "install")
            }) {
                words.retain(|w| w != "install" && w != "transparent-proxy");
            }
        }
        let mut k = KumaFlags {
            outbound_port: 15001,
            inbound_port: 15006,
            user: None,
            exclude_inbound: Vec::new(),
            exclude_outbound: Vec::new(),
            redirect_inbound: true,
            redirect_dns: false,
            redirect_all_dns: false,
            dns_port: 15053,
            dns_servers: None,
            inbound_v6: None,
        };
        for g in GRAMMAR.read(&words)? {
            k.set(&g)?;
        }
        if let Some((flag, v6)) = &k.inbound_v6 {
            if *v6 != k.inbound_port {
                return Err(FlagError::Conflict(format!(
                    "`{flag}` {v6} differs from the inbound port {}: a profile has one inbound listener (give a profile per family)",
                    k.inbound_port
                )));
            }
        }
        if k.redirect_dns && !k.redirect_all_dns && k.dns_servers.is_none() {
            return Err(FlagError::Conflict(
                "`--redirect-dns` captures DNS to the nameservers of /etc/resolv.conf: give them as `DNS_SERVERS=IP,…` before the flags (`DNS_SERVERS=` when it names none)".to_string(),
            ));
        }
        Ok(k)
    }

    fn set(&mut self, g: &Given<Key>) -> Result<(), FlagError> {
        let one = |g: &Given<Key>| super::port(g, &g.value);
        match g.key {
            Key::OutboundPort => self.outbound_port = one(g)?,
            Key::InboundPort => self.inbound_port = one(g)?,
            Key::InboundPortV6 => self.inbound_v6 = Some((g.spelled.clone(), one(g)?)),
            Key::DnsPort => self.dns_port = one(g)?,
            Key::Uid | Key::User => {
                let v = g.value.trim();
                if v.is_empty() {
                    return Err(bad(g, &g.value, "names no user"));
                }
                let w = match v.parse::<u32>() {
                    Ok(n) => OwnerWord::Id(n),
                    Err(_) => OwnerWord::Name(v.to_string()),
                };
                self.user = Some((g.spelled.clone(), w));
            }
            Key::ExcludeInbound => self.exclude_inbound = ports(g)?,
            Key::ExcludeOutbound => self.exclude_outbound = ports(g)?,
            Key::RedirectInbound => self.redirect_inbound = bool_of(g)?,
            Key::RedirectDns => self.redirect_dns = bool_of(g)?,
            Key::RedirectAllDns => self.redirect_all_dns = bool_of(g)?,
            Key::DnsServers => self.dns_servers = Some(addresses(g)?),
            Key::PerUid => {
                return Err(bad(
                    g,
                    &g.value,
                    "excludes ports for some users only, which a profile cannot say",
                ))
            }
            Key::Ebpf => {
                if bool_of(g)? {
                    return Err(bad(g, &g.value, "installs eBPF programs instead of iptables rules: there are no rules to profile"));
                }
            }
            Key::NoEffectBool => {
                bool_of(g)?;
            }
            Key::NoEffect => {}
        }
        Ok(())
    }

    /// `base` with the values the flags determine ([`DETERMINES`]) set from them.
    pub fn profile(&self, mut base: Profile) -> Result<Profile, FlagError> {
        self.apply(&mut base)?;
        Ok(base)
    }

    /// Sets the values of `p` the flags determine ([`DETERMINES`]).
    pub fn apply(&self, p: &mut Profile) -> Result<(), FlagError> {
        if let Some((flag, w)) = &self.user {
            let uid = resolve(std::slice::from_ref(w), &p.users, flag, "user")?;
            if let Some(u) = uid.first() {
                p.proxy_uid = *u;
            }
        }
        p.proxy_mark = None;
        p.proxy_identity = Some(vec![Credential::Uid]);
        let captured = self.redirect_all_dns
            || (self.redirect_dns && self.dns_servers.as_ref().is_some_and(|s| !s.is_empty()));
        p.proxy_ports = replace_listeners(
            &p.proxy_ports,
            &[
                (Some(p.outbound_port), self.outbound_port),
                (Some(p.inbound_port), self.inbound_port),
                (p.dns_capture_port, self.dns_port),
            ],
        );
        p.outbound_port = self.outbound_port;
        p.inbound_port = self.inbound_port;
        p.inbound_ports = (!self.redirect_inbound).then(Vec::new);
        p.exclude_inbound_ports = self.exclude_inbound.clone();
        p.exclude_outbound_ports = self.exclude_outbound.clone();
        p.dns_capture_port = captured.then_some(self.dns_port);
        p.dns_servers = (captured && !self.redirect_all_dns)
            .then(|| self.dns_servers.clone().unwrap_or_default());
        p.dns_capture_local = captured && self.redirect_all_dns;
        if let Some(s) = &self.dns_servers {
            p.nameservers = s.clone();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kuma() -> Profile {
        Profile::named("kuma").unwrap()
    }

    fn profile(s: &str) -> Profile {
        KumaFlags::read(s).unwrap().profile(kuma()).unwrap()
    }

    fn err(s: &str) -> String {
        KumaFlags::read(s)
            .and_then(|k| k.profile(kuma()))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_builtin_profile_is_kuma_inits_flags() {
        // kuma-init on Kubernetes: uid 5678, every query to the DNS listener.
        assert_eq!(
            profile(
                "kumactl install transparent-proxy --kuma-dp-uid 5678 --redirect-all-dns-traffic"
            ),
            kuma()
        );
    }

    #[test]
    fn every_flag() {
        let mut base = kuma();
        base.users.insert("kuma-dp".into(), 5679);
        let p = KumaFlags::read(
            "DNS_SERVERS=10.96.0.10 --kuma-dp-user kuma-dp --redirect-outbound-port 16001 --redirect-inbound-port=16006 --redirect-inbound-port-v6 16006 --exclude-inbound-ports 22,443 --exclude-outbound-ports 25 --redirect-inbound=false --redirect-dns --redirect-dns-port 16053 --dry-run --verbose --store-firewalld --skip-dns-conntrack-zone-split --experimental-transparent-proxy-engine --redirect-dns-upstream-target-chain RETURN --ebpf-enabled=false --ebpf-bpffs-path /x --ebpf-instance-ip 10.0.0.1 --ebpf-programs-source-path /y --log-level info --no-config --config-file f --api-timeout 1m",
        )
        .unwrap()
        .profile(base)
        .unwrap();
        assert_eq!(p.proxy_uid, 5679);
        assert_eq!(p.identity_kinds(), vec![Credential::Uid]);
        assert_eq!((p.outbound_port, p.inbound_port), (16001, 16006));
        assert_eq!(p.proxy_ports, vec![16001, 16006, 16053, 9901]);
        assert_eq!(p.inbound_ports, Some(vec![]));
        assert_eq!(p.exclude_inbound_ports, vec![22, 443]);
        assert_eq!(p.exclude_outbound_ports, vec![25]);
        assert_eq!(p.dns_capture_port, Some(16053));
        assert_eq!(p.dns_servers, Some(vec!["10.96.0.10".parse().unwrap()]));
        assert!(!p.dns_capture_local);
        // No DNS flag: no DNS captured; no user: the profile's.
        let p = profile("");
        assert_eq!((p.dns_capture_port, p.proxy_uid), (None, 5678));
        assert_eq!(p.inbound_ports, None);
    }

    #[test]
    fn refusals() {
        assert_eq!(
            err("--redirect-outbound-port x"),
            "`--redirect-outbound-port`: `x` is not a port (1-65535)"
        );
        assert_eq!(err("--kuma-dp-uid ''"), "`--kuma-dp-uid`: `` names no user");
        assert!(err("--kuma-dp-user envoy").contains("user `envoy` is not a number"));
        assert!(
            err("--redirect-inbound-port-v6 15010").contains("a profile has one inbound listener")
        );
        assert!(err("--redirect-dns").contains("DNS_SERVERS"));
        assert!(err("--exclude-outbound-tcp-ports-for-uids 80:0").contains("for some users only"));
        assert!(err("--ebpf-enabled").contains("eBPF"));
        assert_eq!(
            err("--kuma-cp-ip 10.0.0.1"),
            "unknown kumactl install transparent-proxy flag `--kuma-cp-ip`"
        );
        assert_eq!(
            err("-p 1"),
            "unknown kumactl install transparent-proxy flag `-p`"
        );
        assert_eq!(
            err("--verbose=maybe"),
            "`--verbose`: `maybe` is not a boolean (true or false)"
        );
    }
}
