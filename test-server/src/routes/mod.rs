//! HTTP handlers, one module per seed system plus auth and stats.

pub mod channels;
pub mod dev_auth;
pub mod dev_faults;
pub mod mux;
pub mod notifications;
pub mod stats;
pub mod team_answers;
pub mod video;
