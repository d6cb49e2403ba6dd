//! Profiles from TOML (`base`, overrides, errors with positions) and owner-name resolution.

#![cfg(test)]

use std::collections::BTreeMap;

use sidecar_model::ast::{IdSpec, Match};
use sidecar_model::parse;
use sidecar_model::pod::{InboundSource, Profile};

#[test]
fn base_ambient_keeps_ambient_values_and_applies_overrides() {
    let p = Profile::from_toml("base = \"ambient\"\ndns_capture_port = 15053\n").unwrap();
    assert_eq!(p.proxy_mark, Some(0x539));
    assert_eq!(p.proxy_mark_mask, 0xfff);
    assert_eq!(p.inbound_source, InboundSource::Original);
    assert_eq!(p.dns_capture_port, Some(15053));
    assert_eq!(p.exclude_inbound_ports, vec![15008]);
    // Without a base, the istio profile: identity by owner.
    let q = Profile::from_toml("dns_capture_port = 15053\n").unwrap();
    assert_eq!(q.proxy_mark, None);
    assert_eq!(q.inbound_source, InboundSource::Passthrough);
    assert!(q.exclude_inbound_ports.contains(&15090));
}

#[test]
fn profile_errors_say_where() {
    let e = Profile::from_toml("base = \"ambient\"\nno_such_key = 1\n").unwrap_err();
    assert!(e.contains("line 2"), "{e}");
    assert!(e.contains("no_such_key"), "{e}");
    let e = Profile::from_toml("base = \"linkerd\"\n").unwrap_err();
    assert!(e.contains("unknown base profile `linkerd`"), "{e}");
    let e = Profile::from_toml("base = 3\n").unwrap_err();
    assert!(e.contains("`base`"), "{e}");
}

#[test]
fn owner_names_resolve_from_the_maps_and_unknown_ones_are_reported() {
    let text = b"*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m owner --uid-owner web --gid-owner java -j RETURN\n-A OUTPUT -m owner ! --gid-owner ftp -j RETURN\nCOMMIT\n";
    let mut rs = parse("t.rules", text).unwrap().ruleset;
    let users = BTreeMap::from([("web".to_string(), 33u32)]);
    let groups = BTreeMap::from([("java".to_string(), 2001u32)]);
    let missing = rs.resolve_owner_names(&users, &groups);
    assert_eq!(missing, vec!["ftp".to_string()]);
    let rules = &rs.ipv4[0]
        .chains
        .iter()
        .find(|c| c.name == "OUTPUT")
        .unwrap()
        .rules;
    let Match::Owner { uid, gid, .. } = &rules[0].matches[0] else {
        panic!("{:?}", rules[0].matches);
    };
    assert_eq!(
        uid.as_ref().unwrap().value,
        IdSpec::Range { lo: 33, hi: 33 }
    );
    assert_eq!(
        gid.as_ref().unwrap().value,
        IdSpec::Range { lo: 2001, hi: 2001 }
    );
    let Match::Owner { gid, .. } = &rules[1].matches[0] else {
        panic!("{:?}", rules[1].matches);
    };
    let g = gid.as_ref().unwrap();
    assert!(g.negated);
    assert_eq!(g.value, IdSpec::Name("ftp".into()));
}
