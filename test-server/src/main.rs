//! `tidings-server` binary.
fn main() {}
