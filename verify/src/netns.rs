//! Scratch network namespaces for asking the kernel: created under a unique name, deleted when
//! dropped (also when a test fails or panics). A process killed before it could drop them (a
//! run cut short by SIGKILL) leaves them behind; the next process that creates one deletes
//! those first ([`reap_stale`]).
//!
//! Only namespaces this module creates are touched; nothing here sends traffic.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);
static REAPED: std::sync::Once = std::sync::Once::new();

/// The pid in the name of a namespace this module made (`sv-<purpose>-<pid>-<n>`).
fn owner(name: &str) -> Option<u32> {
    let mut parts = name.strip_prefix("sv-")?.rsplitn(3, '-');
    let (n, pid, purpose) = (parts.next()?, parts.next()?, parts.next()?);
    if purpose.is_empty() || n.parse::<u32>().is_err() {
        return None;
    }
    pid.parse().ok()
}

/// Deletes the namespaces of this module's naming whose process no longer runs (`ip netns`
/// keeps its names in /run/netns). Another live process's namespaces are left alone.
pub fn reap_stale() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let gone = owner(&name).is_some_and(|pid| {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        });
        if gone {
            let _ = Command::new("ip")
                .args(["netns", "del", &name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Whether an executable file named `tool` is in a directory of `PATH` (what a shell's
/// `command -v` finds, without a shell).
pub fn on_path(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(tool))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Why the kernel cannot be asked on this machine.
pub fn unavailable() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok();
    let root = uid.is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        return Some("not running as root".into());
    }
    for tool in [
        "ip",
        "iptables-restore",
        "iptables-save",
        "ip6tables-restore",
        "ip6tables-save",
    ] {
        if !on_path(tool) {
            return Some(format!(
                "`{tool}` not found (install iproute2 and iptables)"
            ));
        }
    }
    match Netns::create("probe") {
        Ok(_) => None,
        Err(e) => Some(format!("cannot create a network namespace: {e}")),
    }
}

/// A network namespace that exists as long as this value.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `sv-<purpose>-<pid>-<n>`.
    pub fn create(purpose: &str) -> Result<Netns, String> {
        REAPED.call_once(reap_stale);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("sv-{purpose}-{}-{n}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .map_err(|e| format!("cannot run `ip`: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Netns { name })
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `program args…` inside the namespace, feeding `stdin`.
    pub fn exec(&self, program: &str, args: &[&str], stdin: &[u8]) -> std::io::Result<Output> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut i) = child.stdin.take() {
            // A tool that exits early closes its stdin; that is not our error.
            let _ = i.write_all(stdin);
        }
        child.wait_with_output()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::{owner, reap_stale, unavailable, Command};

    #[test]
    fn owners_are_read_from_this_modules_names_only() {
        assert_eq!(owner("sv-pod-2530-7"), Some(2530));
        assert_eq!(owner("sv-dns-pod-12-0"), Some(12));
        for other in [
            "sv-pod-7",
            "sv--1-2",
            "pod-2530-7",
            "sv-pod-x-7",
            "sv-pod-1-x",
            "cni-1234",
        ] {
            assert_eq!(owner(other), None, "{other}");
        }
    }

    /// A namespace named for a process that has exited is deleted; one of a live process (this
    /// one) is not.
    #[test]
    fn a_dead_processs_namespaces_are_reaped() {
        if let Some(why) = unavailable() {
            println!("skipping: {why}");
            return;
        }
        let mut child = Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = format!("sv-reaptest-{dead}-0");
        let live = format!("sv-reaptest-{}-999", std::process::id());
        for n in [&stale, &live] {
            assert!(Command::new("ip")
                .args(["netns", "add", n])
                .status()
                .unwrap()
                .success());
        }
        reap_stale();
        let exists = |n: &str| std::path::Path::new("/run/netns").join(n).exists();
        let (stale_left, live_left) = (exists(&stale), exists(&live));
        let _ = Command::new("ip").args(["netns", "del", &live]).status();
        let _ = Command::new("ip").args(["netns", "del", &stale]).status();
        assert!(!stale_left && live_left);
    }
}
