//! Domain tables: team answers, notifications, video jobs.

pub mod jobs;
pub mod notifications;
pub mod team_answers;
