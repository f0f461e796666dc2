//! Who is calling: tokens, passwords (hashed on a bounded pool, held to a policy), the throttle
//! on guessing them, and the guard every protected endpoint takes.

pub mod guard;
pub mod jwt;
pub mod password;
pub mod policy;
pub mod throttle;

pub use crate::db::Role;
pub use guard::{BearerAuth, Caller};
pub use jwt::{Claims, JwtKeys, SessionLifetimes};
