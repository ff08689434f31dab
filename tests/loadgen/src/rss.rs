//! Resident memory of a process, from `/proc/PID/status`.

use crate::error::Error;

/// `VmRSS` of `pid` in KiB.
///
/// # Errors
/// [`Error::Rss`] when the file cannot be read or has no `VmRSS` line.
pub fn rss_kib(pid: u32) -> Result<u64, Error> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| Error::Rss {
        pid,
        reason: if e.kind() == std::io::ErrorKind::NotFound {
            format!("no such process (is the server running? {path}: {e})")
        } else {
            format!("{path}: {e}")
        },
    })?;
    parse_vm_rss(&status).ok_or_else(|| Error::Rss {
        pid,
        reason: "no VmRSS line".into(),
    })
}

/// `VmRSS` of each of `pids` in KiB, in order.
///
/// # Errors
/// [`Error::Rss`] for the first pid that cannot be read.
pub fn rss_kib_each(pids: &[u32]) -> Result<Vec<u64>, Error> {
    pids.iter().map(|&pid| rss_kib(pid)).collect()
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

    #[test]
    fn each_reads_in_order_and_reports_a_missing_pid() {
        let me = std::process::id();
        assert_eq!(rss_kib_each(&[]).ok(), Some(vec![]));
        assert_eq!(rss_kib_each(&[me, me]).map(|v| v.len()).ok(), Some(2));
        // Above the kernel's pid_max (at most 2^22), so never a live process.
        let gone = 4_194_305;
        match rss_kib_each(&[me, gone]) {
            Err(Error::Rss { pid, reason }) => {
                assert_eq!(pid, gone);
                assert!(reason.contains("no such process"), "{reason}");
            }
            other => panic!("expected an Rss error, got {other:?}"),
        }
    }
}
