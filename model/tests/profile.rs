//! Profiles from TOML (`base`, overrides, errors with positions) and owner-name resolution.

#![cfg(test)]

use std::collections::BTreeMap;

use sidecar_model::ast::{IdSpec, Match};
use sidecar_model::matches::Owner;
use sidecar_model::parse;
use sidecar_model::pod::{Credential, Identity, InboundSource, Profile};
use sidecar_model::profile::{ProfileError, BUILTIN};

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
    assert!(matches!(e, ProfileError::Toml(_)), "{e:?}");
    let e = e.to_string();
    assert!(e.contains("line 2"), "{e}");
    assert!(e.contains("no_such_key"), "{e}");
    assert_eq!(e, e.trim_end(), "no trailing newline");
    let e = Profile::from_toml("base = \"osm\"\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown base profile `osm` (istio, ambient, kuma, linkerd or consul)"
    );
    let e = Profile::from_toml("base = 3\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "`base` must be a profile name (istio, ambient, kuma, linkerd or consul)"
    );
}

#[test]
fn every_builtin_profile_is_found_by_its_own_name() {
    assert!(!BUILTIN.is_empty());
    for b in BUILTIN {
        let p = (b.make)();
        assert_eq!(p.name, b.name, "the table's name is the profile's");
        assert_eq!(Profile::named(b.name), Some(p.clone()));
        assert_eq!(Profile::load(b.name).unwrap(), p);
        // A file can build on it.
        let q = Profile::from_toml(&format!("base = \"{}\"\n", b.name)).unwrap();
        assert_eq!(q, p);
        assert!(
            !b.about.is_empty() && !b.about.ends_with('.'),
            "{}",
            b.about
        );
    }
    assert_eq!(
        Profile::default(),
        (BUILTIN[0].make)(),
        "the first is the default"
    );
    assert_eq!(Profile::named("osm"), None);
}

#[test]
fn an_unknown_profile_name_lists_the_builtin_ones() {
    let e = Profile::load("osm").unwrap_err();
    assert!(
        matches!(&e, ProfileError::Unknown(n) if n == "osm"),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.starts_with("unknown profile `osm`: "), "{msg}");
    for b in BUILTIN {
        assert!(msg.contains(b.name) && msg.contains(b.about), "{msg}");
    }
    // A path that is not there is a file that cannot be read, not an unknown name.
    let e = Profile::load("/nonexistent/kuma.toml").unwrap_err();
    assert!(matches!(e, ProfileError::Read { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("cannot read profile `/nonexistent/kuma.toml`: "),
        "{e}"
    );
}

#[test]
fn a_profile_file_error_names_the_file() {
    let path = std::env::temp_dir().join(format!("sv-profile-{}.toml", std::process::id()));
    std::fs::write(&path, "base = \"osm\"\n").unwrap();
    let spec = path.display().to_string();
    let e = Profile::load(&spec).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(
        matches!(&e, ProfileError::File { source, .. } if matches!(**source, ProfileError::UnknownBase(_))),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!("{spec}: unknown base profile `osm` (istio, ambient, kuma, linkerd or consul)")
    );
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
    let Match::Owner(o) = &rules[0].matches[0] else {
        panic!("{:?}", rules[0].matches);
    };
    let Owner { uid, gid, .. } = &**o;
    assert_eq!(
        uid.as_ref().unwrap().value,
        IdSpec::Range { lo: 33, hi: 33 }
    );
    assert_eq!(
        gid.as_ref().unwrap().value,
        IdSpec::Range { lo: 2001, hi: 2001 }
    );
    let Match::Owner(o) = &rules[1].matches[0] else {
        panic!("{:?}", rules[1].matches);
    };
    let Owner { gid, .. } = &**o;
    let g = gid.as_ref().unwrap();
    assert!(g.negated);
    assert_eq!(g.value, IdSpec::Name("ftp".into()));
}

/// `proxy_identity` says which credentials identify the proxy; without it every profile means
/// what it meant before the key: the built-in `istio` is uid 1337 or gid 1337, `ambient` is mark
/// 0x539/0xfff, and a file giving `proxy_mark` is identified by the mark alone.
#[test]
fn the_proxy_identity_is_what_the_profile_says_and_nothing_else() {
    let id = |p: &Profile| p.identity();
    assert_eq!(
        id(&Profile::istio()),
        Identity {
            uids: vec![1337],
            gids: vec![1337],
            mark: None
        }
    );
    assert_eq!(
        id(&Profile::ambient()),
        Identity {
            uids: vec![],
            gids: vec![],
            mark: Some((0x539, 0xfff))
        }
    );
    let legacy_mark = Profile::from_toml("proxy_mark = 0x10\nproxy_mark_mask = 0xff\n").unwrap();
    assert_eq!(legacy_mark.identity().mark, Some((0x10, 0xff)));
    assert!(legacy_mark.identity().uids.is_empty() && legacy_mark.identity().gids.is_empty());
    let more = Profile::from_toml("proxy_uids = [3, 1337]\nproxy_gids = [4]\n").unwrap();
    assert_eq!(
        id(&more),
        Identity {
            uids: vec![1337, 3],
            gids: vec![1337, 4],
            mark: None
        }
    );
    // Kuma's kuma-dp: uid 5678 alone; it still re-connects with gid 5678.
    let kuma = Profile::from_toml(
        "proxy_identity = [\"uid\"]\nproxy_uid = 5678\nproxy_gid = 5678\nproxy_uids = [5679]\n",
    )
    .unwrap();
    assert_eq!(
        id(&kuma),
        Identity {
            uids: vec![5678, 5679],
            gids: vec![],
            mark: None
        }
    );
    assert_eq!(kuma.proxy_gid, 5678);
    let gid_and_mark = Profile::from_toml(
        "base = \"ambient\"\nproxy_identity = [\"mark\", \"gid\", \"mark\"]\nproxy_gid = 7\n",
    )
    .unwrap();
    assert_eq!(
        gid_and_mark.identity_kinds(),
        vec![Credential::Gid, Credential::Mark]
    );
    assert_eq!(
        id(&gid_and_mark),
        Identity {
            uids: vec![],
            gids: vec![7],
            mark: Some((0x539, 0xfff))
        }
    );
}

/// A `proxy_identity` that contradicts the profile is refused where it stands; an unknown
/// credential is refused by TOML with its position.
#[test]
fn a_contradictory_proxy_identity_is_refused_with_its_position() {
    let e =
        Profile::from_toml("name = \"x\"\n\n  proxy_identity = [\"uid\", \"mark\"]\n").unwrap_err();
    assert!(matches!(e, ProfileError::Identity { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "line 3, column 3: `proxy_identity` names `mark` but the profile gives no `proxy_mark`"
    );
    let e = Profile::from_toml("proxy_identity = []\n").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("line 1, column 1: `proxy_identity` is empty"),
        "{e}"
    );
    let e = Profile::from_toml("proxy_identity = [\"pid\"]\n").unwrap_err();
    assert!(matches!(e, ProfileError::Toml(_)), "{e:?}");
    assert!(e.to_string().contains("line 1, column 19"), "{e}");
    assert!(e.to_string().contains("unknown variant `pid`"), "{e}");
    // With a mark to name, the same list is fine (the ambient base gives one).
    assert!(
        Profile::from_toml("base = \"ambient\"\nproxy_identity = [\"uid\", \"mark\"]\n").is_ok()
    );
}
