//! For a test file not yet folded into `tests/api/` (tests/README.md says how): the same helpers,
//! under the old name. Such a file is a test binary of its own and starts a PostgreSQL cluster of
//! its own; fold it in.
#![allow(unused_imports)]

#[path = "../api/helpers.rs"]
mod helpers;

pub use helpers::*;
