//! Email: the account messages (rendering, tokens queued with their emails), the transport
//! (SMTP with lettre, or `.eml` files in development), and the outbox worker that sends what
//! transactions queued.

pub mod account;
pub mod lead;
pub mod message;
pub mod transport;
pub mod worker;
