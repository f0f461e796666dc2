//! The data of each resource: its SQL, its rows and their mapping, its operations. Every
//! function takes the tenant-scoped transaction first; nothing in here knows about HTTP.

pub mod analytics;
