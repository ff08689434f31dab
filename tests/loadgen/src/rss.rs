//! Resident memory of a process, from `/proc/PID/status`.

use crate::error::Error;

/// `VmRSS` of `pid` in KiB.
///
/// # Errors
/// [`Error::Rss`] when the file cannot be read or has no `VmRSS` line.
pub fn rss_kib(pid: u32) -> Result<u64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| Error::Rss { pid, reason: e.to_string() })?;
    parse_vm_rss(&status).ok_or_else(|| Error::Rss { pid, reason: "no VmRSS line".into() })
}

/// `VmRSS` of this process in KiB (0 when unavailable).
#[must_use]
pub fn own_rss_kib() -> u64 {
    rss_kib(std::process::id()).unwrap_or(0)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reads_self() {
        assert_eq!(parse_vm_rss("Name:\tx\nVmRSS:\t  1234 kB\n"), Some(1234));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert!(own_rss_kib() > 0);
    }
}
