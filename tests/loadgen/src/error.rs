//! The one error type of the load generator.

use std::io;

/// Everything that can go wrong in a run, a worker or one connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `--target` is not `http://IP:PORT` (or `localhost`).
    #[error("bad --target {url:?}: {reason}")]
    Target {
        /// What was given.
        url: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// `--source-ips` is not a list/range of IPv4 addresses.
    #[error("bad --source-ips {0:?}: expected e.g. 127.0.0.2-127.0.0.9 or 127.0.0.2,127.0.0.3")]
    SourceIps(String),
    /// A flag value outside its allowed range.
    #[error("bad flag: {0}")]
    Flag(String),
    /// A socket, pipe or process error.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// A bounded wait ran out.
    #[error("timed out while {0}")]
    Timeout(&'static str),
    /// The peer closed the connection before a complete response head.
    #[error("connection closed by the server")]
    Closed,
    /// The response head could not be parsed or was too large.
    #[error("malformed HTTP response: {0}")]
    Http(&'static str),
    /// The server answered with a non-success status.
    #[error("HTTP status {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The start of the body, for the operator.
        body: String,
    },
    /// A `Transfer-Encoding: chunked` body broke the framing rules.
    #[error("malformed chunked body")]
    Chunked,
    /// An SSE line longer than the parser accepts.
    #[error("SSE line longer than {0} bytes")]
    LineTooLong(usize),
    /// JSON that had to parse did not.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// A worker process misbehaved.
    #[error("worker {id}: {reason}")]
    Worker {
        /// The worker's index.
        id: u32,
        /// What went wrong.
        reason: String,
    },
    /// `/proc/PID/status` could not be read or had no `VmRSS`.
    #[error("rss of pid {pid}: {reason}")]
    Rss {
        /// The sampled process.
        pid: u32,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    /// A short stable label, used to count connection failures by kind.
    #[must_use]
    pub fn kind(&self) -> String {
        match self {
            Self::Io(e) => format!("io:{:?}", e.kind()),
            Self::Timeout(what) => format!("timeout:{what}"),
            Self::Closed => "closed".into(),
            Self::Http(_) => "http".into(),
            Self::Status { status, .. } => format!("status:{status}"),
            Self::Chunked => "chunked".into(),
            Self::LineTooLong(_) => "line_too_long".into(),
            Self::Json(_) => "json".into(),
            Self::Target { .. } | Self::SourceIps(_) | Self::Flag(_) => "config".into(),
            Self::Worker { .. } => "worker".into(),
            Self::Rss { .. } => "rss".into(),
        }
    }
}
