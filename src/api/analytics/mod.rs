//! Dashboards over what visitors do on a company's cards: the latest events with a summary, time
//! series in the caller's time zone, breakdowns by device and region, the employee leaderboard,
//! and the CSV export of the raw events. The SQL and its rows live in
//! [`crate::model::analytics`]; here the requests are checked and the answers shaped.

mod endpoints;
pub mod export;
pub mod live;
mod outputs;
pub mod params;

pub use endpoints::{AnalyticsApi, check_employee_access, series};
pub use live::LiveFeedApi;
pub use outputs::*;
