//! The processes the kernel oracle runs inside its namespaces.
//!
//! * `__agent PORTS…` listens on every given TCP and UDP port (all addresses), and for each
//!   connection or datagram prints `accepted ID PROTO PORT ORIGDST` (ORIGDST from SO_ORIGINAL_DST
//!   for TCP, `-` for UDP); a TCP client then gets `ok`, so it knows it was logged. It also reads
//!   `connect ID PROTO UID GID SRC SPORT DST DPORT` lines on stdin and runs each with that uid and
//!   gid (supplementary groups cleared), printing `done ID CODE` when it ends: in a connector, an
//!   `__agent` without ports started with that uid and gid and kept for the next flows of the same
//!   identity (16 at most, the least recently used dropped), which runs `run ID PROTO SRC SPORT
//!   DST DPORT` lines in-process; or, should no connector start, as a `__connect` process.
//!   Two more commands, sent to the pod's agent only: `trace` subscribes to the namespace's
//!   nftables trace events (answer `trace ok` or `trace error MESSAGE`), and `flush` prints every
//!   event queued since as an `ev …` line ([`super::trace::TraceEvent`]), then `flushed` (or
//!   `flushed error MESSAGE` when events were lost).
//! * `__connect ID PROTO SRC SPORT DST DPORT` runs one flow: it binds SRC (`-` for any) and
//!   SPORT, connects or sends, writes the flow id, and for TCP waits for `ok`; it exits 0 when the
//!   peer answered (for UDP: when the datagram was sent), 1 when not. [`connect`] is the same
//!   in-process.
//!
//! Nothing here sends traffic anywhere but to the addresses it is given, which the oracle only
//! ever sets to addresses of its own namespaces.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a client waits for a connection or an answer before calling it dropped.
pub const FLOW_TIMEOUT: Duration = Duration::from_millis(400);

fn say(out: &Arc<Mutex<std::io::Stdout>>, line: &str) {
    if let Ok(mut o) = out.lock() {
        let _ = writeln!(o, "{line}");
        let _ = o.flush();
    }
}

/// A listening socket on `addr`; IPv6 ones only for IPv6, beside the IPv4 one.
fn listener(addr: SocketAddr, ty: socket2::Type) -> std::io::Result<socket2::Socket> {
    let s = socket2::Socket::new(socket2::Domain::for_address(addr), ty, None)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    // Transparent, so that TPROXY may hand it connections for any address (IP_TRANSPARENT also
    // marks IPv6 sockets).
    nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::IpTransparent, &true)
        .map_err(std::io::Error::from)?;
    s.bind(&addr.into())?;
    if ty == socket2::Type::STREAM {
        s.listen(128)?;
    }
    Ok(s)
}

fn original_dst(c: &TcpStream) -> Option<SocketAddr> {
    use nix::sys::socket::{getsockopt, sockopt};
    if c.local_addr().ok()?.is_ipv4() {
        let a = getsockopt(c, sockopt::OriginalDst).ok()?;
        let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
        Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(a.sin_port)))
    } else {
        let a = getsockopt(c, sockopt::Ip6tOriginalDst).ok()?;
        let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
        Some(SocketAddr::new(IpAddr::V6(ip), u16::from_be(a.sin6_port)))
    }
}

fn serve_tcp(l: TcpListener, port: u16, out: Arc<Mutex<std::io::Stdout>>) {
    for conn in l.incoming() {
        let Ok(mut c) = conn else { continue };
        let out = Arc::clone(&out);
        std::thread::spawn(move || {
            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
            let orig = original_dst(&c).map_or_else(|| "-".to_string(), |a| a.to_string());
            let mut line = String::new();
            let mut r = BufReader::new(&mut c);
            if r.read_line(&mut line).is_ok() {
                say(&out, &format!("accepted {} tcp {port} {orig}", line.trim()));
                let _ = c.write_all(b"ok\n");
            }
        });
    }
}

fn serve_udp(s: UdpSocket, port: u16, out: Arc<Mutex<std::io::Stdout>>) {
    let mut buf = [0u8; 256];
    loop {
        let Ok((n, from)) = s.recv_from(&mut buf) else {
            continue;
        };
        let id = String::from_utf8_lossy(buf.get(..n).unwrap_or(&[]))
            .trim()
            .to_string();
        // No answer: a reply from this wildcard socket would leave from whatever source routing
        // picks, not the address the datagram was sent to, and start a new connection of its
        // own through the rules. The oracle waits for this line instead.
        let _ = from;
        say(&out, &format!("accepted {id} udp {port} -"));
    }
}

/// Runs the agent: listeners on `ports`, connect commands from stdin. Returns when stdin closes.
pub fn agent(ports: &[u16]) -> u8 {
    let out = Arc::new(Mutex::new(std::io::stdout()));
    for &p in ports {
        for any in [
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        ] {
            if let Ok(l) = listener(SocketAddr::new(any, p), socket2::Type::STREAM) {
                let o = Arc::clone(&out);
                let l: TcpListener = l.into();
                std::thread::spawn(move || serve_tcp(l, p, o));
            }
            if let Ok(u) = listener(SocketAddr::new(any, p), socket2::Type::DGRAM) {
                let o = Arc::clone(&out);
                let u: UdpSocket = u.into();
                std::thread::spawn(move || serve_udp(u, p, o));
            }
        }
    }
    say(&out, "ready");
    // This very program, even if its file has been replaced since it started.
    let exe = std::path::PathBuf::from("/proc/self/exe");
    let stdin = std::io::stdin();
    let mut tracer: Option<super::trace::TraceSocket> = None;
    let mut pool = Pool::default();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["trace"] => {
                match super::trace::TraceSocket::open() {
                    Ok(t) => {
                        tracer = Some(t);
                        say(&out, "trace ok");
                    }
                    Err(e) => say(&out, &format!("trace error {e}")),
                }
                continue;
            }
            ["flush"] => {
                let drained = tracer
                    .as_ref()
                    .map_or_else(|| Ok(Vec::new()), super::trace::TraceSocket::drain);
                match drained {
                    Ok(events) => {
                        // One write for the lot.
                        let mut text = String::new();
                        for ev in events {
                            text.push_str(&ev.to_string());
                            text.push('\n');
                        }
                        text.push_str("flushed\n");
                        if let Ok(mut o) = out.lock() {
                            let _ = o.write_all(text.as_bytes());
                            let _ = o.flush();
                        }
                    }
                    Err(e) => say(&out, &format!("flushed error {e}")),
                }
                continue;
            }
            ["run", id, proto, src, sport, dst, dport] => {
                // A connector (below): the flow in this very process, as whoever it runs as.
                let code = connect(id, proto, src, sport, dst, dport);
                say(&out, &format!("done {id} {code}"));
                continue;
            }
            _ => {}
        }
        let (id, proto, uid, gid, src, sport, dst, dport, mark) = match f.as_slice() {
            [_, id, proto, uid, gid, src, sport, dst, dport] => {
                (id, proto, uid, gid, src, sport, dst, dport, "0")
            }
            [_, id, proto, uid, gid, src, sport, dst, dport, mark] => {
                (id, proto, uid, gid, src, sport, dst, dport, *mark)
            }
            _ => continue,
        };
        let (Ok(uid), Ok(gid), Ok(mark)) =
            (uid.parse::<u32>(), gid.parse::<u32>(), mark.parse::<u32>())
        else {
            say(&out, &format!("done {id} 2"));
            continue;
        };
        let args = [*id, *proto, *src, *sport, *dst, *dport];
        let code = if mark == 0 {
            pool.run(&exe, uid, gid, &args)
                .unwrap_or_else(|| run_process(&exe, uid, gid, &args))
        } else {
            run_marked(&exe, uid, gid, mark, &args)
        };
        say(&out, &format!("done {id} {code}"));
    }
    0
}

/// Runs one flow as a `__connect` process of its own with `uid` and `gid`; its exit code.
fn run_process(exe: &std::path::Path, uid: u32, gid: u32, args: &[&str; 6]) -> i32 {
    // std clears the supplementary groups when a root process sets a uid.
    let status = Command::new(exe)
        .arg("__connect")
        .args(args)
        .uid(uid)
        .gid(gid)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    status.ok().and_then(|s| s.code()).unwrap_or(3)
}

/// Runs one flow whose socket carries `mark` (SO_MARK): a `__connect` process that stays root, so
/// that it may set the mark, and opens its socket with filesystem uid and gid `uid`/`gid` (and
/// no supplementary groups), which is what `-m owner` reads (the socket file's fsuid/fsgid).
fn run_marked(exe: &std::path::Path, uid: u32, gid: u32, mark: u32, args: &[&str; 6]) -> i32 {
    let status = Command::new(exe)
        .arg("__connect")
        .args(args)
        .args(["--fsuid", &uid.to_string(), "--fsgid", &gid.to_string()])
        .args(["--mark", &mark.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    status.ok().and_then(|s| s.code()).unwrap_or(3)
}

/// How a `__connect` process opens its socket beyond its own credentials.
#[derive(Debug, Clone, Copy, Default)]
pub struct SocketAs {
    /// Filesystem uid and gid to open the socket with (root keeps its capabilities).
    pub fs_ids: Option<(u32, u32)>,
    /// SO_MARK.
    pub mark: u32,
}

impl SocketAs {
    /// Takes on the filesystem ids, so that the next socket's file carries them.
    fn enter(&self) -> std::io::Result<()> {
        if let Some((uid, gid)) = self.fs_ids {
            nix::unistd::setgroups(&[]).map_err(std::io::Error::from)?;
            // setfsgid first: after setfsuid to a non-root uid the process may lose the right.
            nix::unistd::setfsgid(nix::unistd::Gid::from_raw(gid));
            nix::unistd::setfsuid(nix::unistd::Uid::from_raw(uid));
        }
        Ok(())
    }

    fn apply(&self, s: &socket2::Socket) -> std::io::Result<()> {
        if self.mark != 0 {
            s.set_mark(self.mark)?;
            // The proxy binds its client's address for inbound re-connections (ztunnel).
            nix::sys::socket::setsockopt(s, nix::sys::socket::sockopt::IpTransparent, &true)
                .map_err(std::io::Error::from)?;
        }
        Ok(())
    }
}

/// An agent without listeners started with one uid and gid (supplementary groups cleared, as for
/// a `__connect` process), which runs `run` commands in-process: a socket it opens carries
/// exactly the credentials a `__connect` process with that uid and gid would give it, and
/// starting a process per flow costs more than the flow (3 ms, most of it loading libz3).
struct Connector {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    last_used: u64,
}

impl Drop for Connector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Connector {
    fn start(exe: &std::path::Path, uid: u32, gid: u32) -> std::io::Result<Connector> {
        let mut child = Command::new(exe)
            .arg("__agent")
            .uid(uid)
            .gid(gid)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let broken = || std::io::Error::other("connector without pipes");
        let stdin = child.stdin.take().ok_or_else(broken)?;
        let stdout = BufReader::new(child.stdout.take().ok_or_else(broken)?);
        let mut c = Connector {
            child,
            stdin,
            stdout,
            last_used: 0,
        };
        c.expect(|l| l == "ready")?;
        Ok(c)
    }

    /// Reads lines until one satisfies `want`.
    fn expect(&mut self, want: impl Fn(&str) -> bool) -> std::io::Result<String> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line)? == 0 {
                return Err(std::io::Error::other("connector exited"));
            }
            if want(line.trim_end()) {
                return Ok(line.trim_end().to_string());
            }
        }
    }

    fn run(&mut self, args: &[&str; 6]) -> std::io::Result<i32> {
        writeln!(self.stdin, "run {}", args.join(" "))?;
        self.stdin.flush()?;
        let prefix = format!("done {} ", args[0]);
        let line = self.expect(|l| l.starts_with(&prefix))?;
        Ok(line
            .get(prefix.len()..)
            .and_then(|c| c.parse().ok())
            .unwrap_or(3))
    }
}

/// Connectors by uid and gid, the least recently used dropped beyond [`Pool::SIZE`]: the fixed
/// identities of a run (root, the app, the proxy) keep theirs, random ones come and go.
#[derive(Default)]
struct Pool {
    by_id: std::collections::HashMap<(u32, u32), Connector>,
    clock: u64,
}

impl Pool {
    const SIZE: usize = 16;

    /// The flow's exit code, or none when no connector could run it.
    fn run(&mut self, exe: &std::path::Path, uid: u32, gid: u32, args: &[&str; 6]) -> Option<i32> {
        self.clock += 1;
        if !self.by_id.contains_key(&(uid, gid)) {
            if self.by_id.len() >= Pool::SIZE {
                let oldest = self
                    .by_id
                    .iter()
                    .min_by_key(|(_, c)| c.last_used)
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    self.by_id.remove(&k);
                }
            }
            let c = Connector::start(exe, uid, gid).ok()?;
            self.by_id.insert((uid, gid), c);
        }
        let c = self.by_id.get_mut(&(uid, gid))?;
        c.last_used = self.clock;
        match c.run(args) {
            Ok(code) => Some(code),
            Err(_) => {
                self.by_id.remove(&(uid, gid));
                None
            }
        }
    }
}

/// Runs one client flow from source port `sport`; exit 0 when the other end logged it and
/// answered.
pub fn connect(id: &str, proto: &str, src: &str, sport: &str, dst: &str, dport: &str) -> u8 {
    connect_as(id, proto, src, sport, dst, dport, SocketAs::default())
}

/// [`connect`] with the socket opened as `how` says.
pub fn connect_as(
    id: &str,
    proto: &str,
    src: &str,
    sport: &str,
    dst: &str,
    dport: &str,
    how: SocketAs,
) -> u8 {
    if how.enter().is_err() {
        return 2;
    }
    let (Ok(dst), Ok(dport), Ok(sport)) = (
        dst.parse::<IpAddr>(),
        dport.parse::<u16>(),
        sport.parse::<u16>(),
    ) else {
        return 2;
    };
    let src: Option<IpAddr> = src.parse().ok();
    let to = SocketAddr::new(dst, dport);
    let any = if to.is_ipv4() {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    };
    // The oracle picks the source port, so that no flow meets the conntrack entry of an earlier
    // one (and so that the model knows it).
    let from = SocketAddr::new(src.unwrap_or(any), sport);
    let ok = match proto {
        "udp" => (|| -> std::io::Result<bool> {
            let s =
                socket2::Socket::new(socket2::Domain::for_address(to), socket2::Type::DGRAM, None)?;
            how.apply(&s)?;
            s.set_reuse_address(true)?;
            s.bind(&from.into())?;
            let s: UdpSocket = s.into();
            s.send_to(format!("{id}\n").as_bytes(), to)?;
            Ok(true)
        })()
        .unwrap_or(false),
        _ => (|| -> std::io::Result<bool> {
            let sock = socket2::Socket::new(
                socket2::Domain::for_address(to),
                socket2::Type::STREAM,
                None,
            )?;
            how.apply(&sock)?;
            sock.set_reuse_address(true)?;
            sock.bind(&from.into())?;
            sock.connect_timeout(&to.into(), FLOW_TIMEOUT)?;
            let mut stream: TcpStream = sock.into();
            stream.set_read_timeout(Some(FLOW_TIMEOUT))?;
            stream.write_all(format!("{id}\n").as_bytes())?;
            let mut buf = [0u8; 3];
            Ok(stream.read_exact(&mut buf).is_ok())
        })()
        .unwrap_or(false),
    };
    if ok {
        0
    } else {
        1
    }
}
