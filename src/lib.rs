//! CallingCard: digital business cards for companies, on PostgreSQL row-level security.

pub mod analytics;
pub mod api;
pub mod auth;
pub mod card;
pub mod config;
pub mod console;
pub mod db;
pub mod error;
pub mod hex;
pub mod mail;
pub mod model;
pub mod startup;
pub mod telemetry;
pub mod validate;
pub mod webhook;
