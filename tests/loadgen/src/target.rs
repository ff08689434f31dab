//! Where to connect: the server's address and the client source addresses.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::error::Error;

/// The server under test, parsed from `--target http://IP:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The socket address to connect to.
    pub addr: SocketAddr,
    /// The `Host` header value (`IP:PORT` as given).
    pub host: String,
}

impl Target {
    /// Parses `http://IP:PORT` (`localhost` means 127.0.0.1; a trailing
    /// `/` is allowed, any other path is refused: paths are separate flags).
    ///
    /// # Errors
    /// [`Error::Target`] when the URL is not of that form.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let bad = |reason| Error::Target {
            url: url.to_string(),
            reason,
        };
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// is supported"))?;
        let host = rest.strip_suffix('/').unwrap_or(rest);
        if host.contains('/') {
            return Err(bad("give paths with --stream-path / --publish-path"));
        }
        let (name, port) = host.rsplit_once(':').ok_or_else(|| bad("missing :PORT"))?;
        let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
        let ip: IpAddr = if name == "localhost" {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            name.trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| bad("host must be an IP literal or localhost"))?
        };
        Ok(Self {
            addr: SocketAddr::new(ip, port),
            host: host.to_string(),
        })
    }
}

/// Most source addresses accepted (one /24 of loopback).
pub const MAX_SOURCE_IPS: usize = 256;

/// Parses `--source-ips`: comma-separated addresses or inclusive ranges
/// `A-B` of IPv4 addresses (`127.0.0.2-127.0.0.9,127.0.1.1`). An empty
/// string means "let the kernel pick" and yields an empty list.
///
/// # Errors
/// [`Error::SourceIps`] on anything else or more than [`MAX_SOURCE_IPS`].
pub fn parse_source_ips(spec: &str) -> Result<Vec<Ipv4Addr>, Error> {
    let bad = || Error::SourceIps(spec.to_string());
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
        let b: Ipv4Addr = b.trim().parse().map_err(|_| bad())?;
        let (a, b) = (u32::from(a), u32::from(b));
        if b < a || (b - a) as usize >= MAX_SOURCE_IPS {
            return Err(bad());
        }
        out.extend((a..=b).map(Ipv4Addr::from));
        if out.len() > MAX_SOURCE_IPS {
            return Err(bad());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() -> Result<(), Error> {
        assert_eq!(Target::parse("http://127.0.0.1:8000")?.addr.port(), 8000);
        assert_eq!(Target::parse("http://localhost:9/")?.host, "localhost:9");
        assert!(Target::parse("https://127.0.0.1:1").is_err());
        assert!(Target::parse("http://127.0.0.1:1/api").is_err());
        assert!(Target::parse("http://example.com:80").is_err());
        Ok(())
    }

    #[test]
    fn source_ips() -> Result<(), Error> {
        let ips = parse_source_ips("127.0.0.2-127.0.0.4, 127.0.1.1")?;
        assert_eq!(ips.len(), 4);
        assert_eq!(ips[3], Ipv4Addr::new(127, 0, 1, 1));
        assert!(parse_source_ips("")?.is_empty());
        assert!(parse_source_ips("127.0.0.9-127.0.0.2").is_err());
        assert!(parse_source_ips("127.0.0.0-127.0.2.0").is_err());
        Ok(())
    }
}
