//! The mesh profile the command line gives: `--profile`, refined by the generator's own flags
//! (`--istio-args`, `--annotation`, `--istio-cni`, `--kuma-args`, `--linkerd-args`), read by
//! `sidecar_model::flags`.

use sidecar_model::pod::Profile;

/// The generator options every profile-taking subcommand has (flattened into `PodArgs`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GeneratorArgs {
    /// istio-iptables' own flags (one string, split as a shell splits it; leading `NAME=VALUE`
    /// words are its environment, `DNS_SERVERS=…` stands for resolv.conf): they set the
    /// profile's values they determine, on `--profile` (see README, Subcommands).
    #[arg(long = "istio-args", value_name = "FLAGS", allow_hyphen_values = true, conflicts_with_all = ["kuma_args", "linkerd_args"])]
    pub istio_args: Option<String>,
    /// A pod annotation the sidecar injector derives istio-iptables flags from
    /// (`traffic.sidecar.istio.io/includeInboundPorts=80`); repeat for several.
    #[arg(long = "annotation", value_name = "KEY=VALUE", conflicts_with_all = ["kuma_args", "linkerd_args"])]
    pub annotation: Vec<String>,
    /// The istio-cni plugin, not istio-init, derived the flags from the annotations.
    #[arg(long = "istio-cni", conflicts_with_all = ["kuma_args", "linkerd_args"])]
    pub istio_cni: bool,
    /// `kumactl install transparent-proxy`'s flags, on `--profile` (default: kuma).
    #[arg(
        long = "kuma-args",
        value_name = "FLAGS",
        allow_hyphen_values = true,
        conflicts_with = "linkerd_args"
    )]
    pub kuma_args: Option<String>,
    /// Linkerd proxy-init's flags, on `--profile` (default: linkerd).
    #[arg(
        long = "linkerd-args",
        value_name = "FLAGS",
        allow_hyphen_values = true
    )]
    pub linkerd_args: Option<String>,
}

/// `--profile`'s profile, refined by the generator's flags when given
/// (`sidecar_model::flags`): the flags set the values they determine, the profile keeps the
/// rest. With `--kuma-args` or `--linkerd-args` and `--profile` left at its default, the base
/// is that mesh's built-in profile; a built-in profile of another mesh is refused.
pub fn profile(spec: &str, pod: &GeneratorArgs) -> Result<Profile, String> {
    use sidecar_model::flags::{annotation, istio, kuma::KumaFlags, linkerd::LinkerdFlags};
    let (mesh, option) = if pod.kuma_args.is_some() {
        ("kuma", "--kuma-args")
    } else if pod.linkerd_args.is_some() {
        ("linkerd", "--linkerd-args")
    } else if pod.istio_args.is_some() || !pod.annotation.is_empty() || pod.istio_cni {
        ("istio", "--istio-args")
    } else {
        return Profile::load(spec).map_err(|e| e.to_string());
    };
    // `--profile` left at its default means the generator's mesh.
    let spec = if spec == "istio" { mesh } else { spec };
    if Profile::named(spec).is_some() && spec != mesh {
        return Err(format!(
            "`{option}` describes {mesh}'s rules; `--profile {spec}` is another mesh's (give `--profile {mesh}` or a file whose `base` is `{mesh}`)"
        ));
    }
    let base = Profile::load(spec).map_err(|e| e.to_string())?;
    let e = |e: sidecar_model::flags::FlagError| e.to_string();
    if let Some(a) = &pod.kuma_args {
        return KumaFlags::read(a).and_then(|f| f.profile(base)).map_err(e);
    }
    if let Some(a) = &pod.linkerd_args {
        return LinkerdFlags::read(a)
            .and_then(|f| f.profile(base))
            .map_err(e);
    }
    let annotations = pod
        .annotation
        .iter()
        .map(|a| annotation(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(e)?;
    let installer = if pod.istio_cni {
        istio::Installer::Cni
    } else if annotations.is_empty() {
        istio::Installer::Flags
    } else {
        istio::Installer::Init
    };
    istio::IstioFlags::read(
        pod.istio_args.as_deref().unwrap_or(""),
        &annotations,
        installer,
    )
    .and_then(|f| f.profile(base))
    .map_err(e)
}
