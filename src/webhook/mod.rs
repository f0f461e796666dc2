//! Webhooks on the wire: where an endpoint may point (no server-side request forgery), how a
//! delivery is signed and sent, and the worker that sends what transactions queued (the rows and
//! their SQL are `model::webhook`'s).

pub mod address;
pub mod client;
pub mod config;
pub mod notice;
pub mod signature;
pub mod worker;
