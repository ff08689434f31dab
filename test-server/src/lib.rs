//! The Tidings reference server.
