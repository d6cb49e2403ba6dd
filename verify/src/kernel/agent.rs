//! The processes the kernel oracle runs inside its namespaces.
//!
//! * `__agent PORTS…` listens on every given TCP and UDP port (all addresses), and for each
//!   connection or datagram prints `accepted ID PROTO PORT ORIGDST` (ORIGDST from SO_ORIGINAL_DST
//!   for TCP, `-` for UDP); a TCP client then gets `ok`, so it knows it was logged. It also reads
//!   `connect ID PROTO UID GID SRC SPORT DST DPORT` lines on stdin and runs each as a child process
//!   with that uid and gid (supplementary groups cleared), printing `done ID CODE` when it ends.
//! * `__connect ID PROTO SRC SPORT DST DPORT` is that child: it binds SRC (`-` for any) and SPORT, connects or
//!   sends, writes the flow id, and for TCP waits for `ok`; it exits 0 when the peer answered (for
//!   UDP: when the datagram was sent), 1 when not.
//!
//! Nothing here sends traffic anywhere but to the addresses it is given, which the oracle only
//! ever sets to addresses of its own namespaces.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
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
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let f: Vec<&str> = line.split_whitespace().collect();
        let [_, id, proto, uid, gid, src, sport, dst, dport] = f.as_slice() else {
            continue;
        };
        let (Ok(uid), Ok(gid)) = (uid.parse::<u32>(), gid.parse::<u32>()) else {
            say(&out, &format!("done {id} 2"));
            continue;
        };
        // std clears the supplementary groups when a root process sets a uid.
        let status = Command::new(&exe)
            .args(["__connect", id, proto, src, sport, dst, dport])
            .uid(uid)
            .gid(gid)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let code = status.ok().and_then(|s| s.code()).unwrap_or(3);
        say(&out, &format!("done {id} {code}"));
    }
    0
}

/// Runs one client flow from source port `sport`; exit 0 when the other end logged it and
/// answered.
pub fn connect(id: &str, proto: &str, src: &str, sport: &str, dst: &str, dport: &str) -> u8 {
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
