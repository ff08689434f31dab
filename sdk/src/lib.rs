//! Tidings: real-time updates over Server-Sent Events for the browser.
