//! The field checks, where the JSON door's handlers look for them (they are shared with the
//! model, which checks imported rows the same way: see [`crate::validate`]).

pub use crate::validate::*;
