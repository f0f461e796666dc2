//! Keeping the running totals (`sql/V18__analytics_running_totals.sql`) in the statement that
//! stores a batch of events.
//!
//! A running table holds, for each key (an employee; a device and region; the company itself),
//! one row per day or hour from the key's first event to its last, each the total up to and
//! including that day or hour; the key's `_latest` row holds the total so far and where the rows
//! start and end. A batch brings counts per key and day (or hour), `g`. For a key, with `T(x)`
//! the stored total at `x`, the new total at `x` is `T(x) + Σ g(d) for d ≤ x`, so:
//!
//! - rows already stored (from `first` to `last`) from the batch's earliest day on get that sum
//!   added (usually one row: today's);
//! - days without a row yet, from the batch's earliest day (or the day after `last`) to its
//!   latest (or the day before `first`), are inserted: after `last` starting from the latest
//!   total, before `first` (or for a new key) from 0, so the rows stay dense;
//! - the `_latest` row gets the whole batch and its new bounds.
//!
//! The three touch different rows, so they fit in one statement. They read the totals as the
//! statement found them: two transactions must not do this for one company at once, which
//! [`LOCK_COMPANY`], sent before the statement, ensures.

/// Taken before the ingest statement, in the same transaction: batches of one company are then
/// written one after another across instances, and each sees the totals the previous committed.
pub const LOCK_COMPANY: &str = "SELECT pg_advisory_xact_lock(hashtextextended('callingcard.analytics_running.' || $1::uuid::text, 0))";

/// The columns of the running tables that ingestion adds to, as the daily rollups' actions.
const ACTIONS: [&str; 10] = [
    "view",
    "scan_qr",
    "call",
    "email",
    "whatsapp",
    "download_vcard",
    "link_click",
    "share",
    "lead",
    "preview",
];

/// One running table and its `_latest` companion.
pub struct Running {
    /// The prefix of the CTEs; the caller's CTE `{name}_g` holds the batch's counts as
    /// `(keys…, time, columns…)`.
    pub name: &'static str,
    pub table: &'static str,
    pub latest: &'static str,
    pub keys: &'static [&'static str],
    /// `day` or `hour`.
    pub time: &'static str,
    pub with_visitors: bool,
}

impl Running {
    fn columns(&self) -> Vec<&'static str> {
        let mut columns = ACTIONS.to_vec();
        if self.with_visitors {
            columns.push("visitors");
        }
        columns
    }

    fn first(&self) -> String {
        format!("first_{}", self.time)
    }

    fn last(&self) -> String {
        format!("last_{}", self.time)
    }

    /// `{a}.k = {b}.k AND …` for every key, each followed by ` AND `.
    fn same_keys(&self, a: &str, b: &str) -> String {
        self.keys
            .iter()
            .map(|k| format!("{a}.{k} = {b}.{k} AND "))
            .collect()
    }

    /// `{alias}.k, …` for every key, each followed by `, `.
    fn key_list(&self, alias: &str) -> String {
        self.keys.iter().map(|k| format!("{alias}.{k}, ")).collect()
    }

    fn group_by_keys(&self) -> String {
        if self.keys.is_empty() {
            "()".to_owned()
        } else {
            self.keys.join(", ")
        }
    }

    /// Every day (hour) that may need a new row, as `x.t`: from the batch's earliest, or the one
    /// after the key's last row if that is earlier (the days between had no events), to the
    /// batch's latest, or the one before the key's first row if that is later.
    fn each_step(&self) -> &'static str {
        if self.time == "day" {
            "SELECT g::date AS t
             FROM generate_series(least(s.lo, s.last_t + 1)::timestamp,
                                  greatest(s.hi, s.first_t - 1)::timestamp, interval '1 day') g"
        } else {
            "SELECT g AS t
             FROM generate_series(least(s.lo, s.last_t + interval '1 hour'),
                                  greatest(s.hi, s.first_t - interval '1 hour'), interval '1 hour') g"
        }
    }

    /// The CTEs keeping the table, each led by `, ` (to follow the caller's `{name}_g`).
    pub fn ctes(&self) -> String {
        let Self {
            name,
            table,
            latest,
            time,
            ..
        } = self;
        let (first, last) = (self.first(), self.last());
        let columns = self.columns();
        let list = |f: &dyn Fn(&str) -> String| -> String {
            columns.iter().map(|c| f(c)).collect::<Vec<_>>().join(", ")
        };
        let base = list(&|c| format!("l.{c} AS base_{c}"));
        let new_values =
            list(&|c| format!("CASE WHEN s.last_t < x.t THEN s.base_{c} ELSE 0 END + a.{c}"));
        let sums_g = list(&|c| format!("coalesce(sum(g.{c}), 0)::bigint AS {c}"));
        let plain_sums = list(&|c| format!("sum({c})::bigint"));
        let add_a = list(&|c| format!("{c} = r.{c} + a.{c}"));
        let add_excluded = list(&|c| format!("{c} = r.{c} + excluded.{c}"));
        let column_names = columns.join(", ");
        let keys_s = self.key_list("s");
        let keys_x = self.key_list("x");
        let keys_plain: String = self.keys.iter().map(|k| format!("{k}, ")).collect();
        let group = self.group_by_keys();
        let step = self.each_step();
        let l_k = self.same_keys("l", "k");
        let g_s = self.same_keys("g", "s");
        let x_s = self.same_keys("x", "s");
        let r_a = self.same_keys("r", "a");
        let conflict = std::iter::once("company_id")
            .chain(self.keys.iter().copied())
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "
     ), {name}_span AS (
         SELECT k.*, l.{first} AS first_t, l.{last} AS last_t, {base}
         FROM (SELECT {keys_plain}min({time}) AS lo, max({time}) AS hi FROM {name}_g
               GROUP BY {group} HAVING count(*) > 0) k
         LEFT JOIN {latest} l ON {l_k}l.company_id = $1
     ), {name}_new AS (
         INSERT INTO {table} (company_id, {time}, {keys_plain}{column_names})
         SELECT $1, x.t, {keys_s}{new_values}
         FROM {name}_span s
         CROSS JOIN LATERAL ({step}) x
         CROSS JOIN LATERAL (SELECT {sums_g} FROM {name}_g g WHERE {g_s}g.{time} <= x.t) a
         WHERE s.first_t IS NULL OR x.t < s.first_t OR x.t > s.last_t
     ), {name}_old AS (
         UPDATE {table} AS r SET {add_a}
         FROM (SELECT {keys_x}x.{time}, {sums_g}
               FROM {name}_span s
               JOIN {table} x ON {x_s}x.company_id = $1
                             AND x.{time} >= greatest(s.lo, s.first_t) AND x.{time} <= s.last_t
               JOIN {name}_g g ON {g_s}g.{time} <= x.{time}
               GROUP BY {keys_x}x.{time}) a
         WHERE {r_a}r.company_id = $1 AND r.{time} = a.{time}
     ), {name}_latest AS (
         INSERT INTO {latest} AS r (company_id, {keys_plain}{first}, {last}, {column_names})
         SELECT $1, {keys_plain}min({time}), max({time}), {plain_sums}
         FROM {name}_g GROUP BY {group} HAVING count(*) > 0
         ON CONFLICT ({conflict}) DO UPDATE SET {first} = least(r.{first}, excluded.{first}),
             {last} = greatest(r.{last}, excluded.{last}), {add_excluded}"
        )
    }
}

/// Per employee and UTC day, with the card's unique visitors: the leaderboard and one card's
/// series.
pub const EMPLOYEES: Running = Running {
    name: "running_employee",
    table: "card_running_employee_daily",
    latest: "card_running_employee_latest",
    keys: &["employee_id"],
    time: "day",
    with_visitors: true,
};

/// Per device, region and UTC day: the breakdowns.
pub const DEVICES_AND_REGIONS: Running = Running {
    name: "running_company",
    table: "card_running_company_daily",
    latest: "card_running_company_latest",
    keys: &["device", "region"],
    time: "day",
    with_visitors: false,
};

/// Per hour, with unique visitors: the company's time series.
pub const HOURS: Running = Running {
    name: "running_hourly",
    table: "card_running_hourly",
    latest: "card_running_hourly_latest",
    keys: &[],
    time: "hour",
    with_visitors: true,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_columns_are_the_daily_rollups_actions() {
        let rollup: Vec<&str> = crate::analytics::ACTION_COLUMNS.split(", ").collect();
        assert_eq!(ACTIONS.to_vec(), rollup);
    }

    #[test]
    fn a_table_without_keys_groups_the_whole_batch() {
        let sql = HOURS.ctes();
        assert!(sql.contains("GROUP BY () HAVING count(*) > 0"), "{sql}");
        assert!(sql.contains("ON CONFLICT (company_id) DO UPDATE"), "{sql}");
        assert!(sql.contains("visitors = r.visitors + a.visitors"), "{sql}");
        let sql = DEVICES_AND_REGIONS.ctes();
        assert!(
            sql.contains("ON CONFLICT (company_id, device, region)"),
            "{sql}"
        );
        assert!(
            sql.contains("l.device = k.device AND l.region = k.region AND"),
            "{sql}"
        );
    }
}
