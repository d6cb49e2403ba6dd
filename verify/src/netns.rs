//! Scratch network namespaces for asking the kernel: created under a unique name, deleted when
//! dropped (also when a test fails or panics).
//!
//! Only namespaces this module creates are touched; nothing here sends traffic.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

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
