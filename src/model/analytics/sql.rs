//! The statements of the dashboards and the export. Every one is led by `company_id = $1`, which
//! row-level security checks again; the tenant's transaction is the only way they run.

/// Where the company's event detail starts: `now()` minus the retention of its current plan
/// (`d30` without an active subscription, as ingestion assumes). A scalar sub-select on `$1`,
/// evaluated once per statement.
macro_rules! retention_start {
    () => {
        "(SELECT CASE coalesce(max(p.retention), 'd30')
                     WHEN 'd30' THEN now() - interval '30 days'
                     WHEN 'd365' THEN now() - interval '365 days'
                     ELSE '-infinity'::timestamptz
                 END
          FROM subscriptions s JOIN plans p ON p.plan = s.plan
          WHERE s.company_id = $1 AND s.active)"
    };
}

/// The columns of `card_running_hourly` (and its latest row) under `$alias`, in `Action` order,
/// then visitors.
macro_rules! running_columns {
    ($alias:literal) => {
        concat!(
            $alias,
            ".view, ",
            $alias,
            ".scan_qr, ",
            $alias,
            ".call, ",
            $alias,
            ".email, ",
            $alias,
            ".whatsapp, ",
            $alias,
            ".download_vcard, ",
            $alias,
            ".link_click, ",
            $alias,
            ".share, ",
            $alias,
            ".lead, ",
            $alias,
            ".preview, ",
            $alias,
            ".visitors"
        )
    };
}

/// Each key's running total through the end of `$day` (a date expression): its row of that day,
/// or its latest totals when the day is past its last row (no row at all before its first).
macro_rules! totals_through {
    ($table:literal, $latest:literal, $keys:literal, $day:literal) => {
        concat!(
            "SELECT ",
            $keys,
            ", view, scan_qr, call, email, whatsapp, download_vcard, link_click,
                    share, lead
             FROM ",
            $latest,
            " WHERE company_id = $1 AND ",
            $day,
            " > last_day
             UNION ALL
             SELECT ",
            $keys,
            ", view, scan_qr, call, email, whatsapp, download_vcard, link_click,
                    share, lead
             FROM ",
            $table,
            " WHERE company_id = $1 AND day = ",
            $day
        )
    };
}

pub(super) use crate::model::company::COMPANY_EXISTS;
use crate::model::employee::linked_to_login;

/// Whether the employee `$3` of company `$1` exists, and whether the caller's login `$2` is
/// linked to it.
pub(super) const EMPLOYEE_ACCESS: &str = concat!(
    "SELECT EXISTS (SELECT 1 FROM employees e WHERE e.company_id = $1 AND e.id = $3) AS found,
            EXISTS (SELECT 1 FROM employees e WHERE e.company_id = $1 AND e.id = $3 AND ",
    linked_to_login!(),
    ") AS linked"
);

/// One page, newest first, below the keyset `($3, $4)`; served by
/// `card_events_company_time_idx (company_id, occurred_at DESC, id DESC)`.
pub(super) const COMPANY_EVENTS: &str = concat!(
    "SELECT id, occurred_at, employee_id, action, link, device, region
     FROM card_events
     WHERE company_id = $1
       AND occurred_at > ",
    retention_start!(),
    "
       AND occurred_at >= coalesce($2::timestamptz, '-infinity')
       AND (occurred_at, id) < ($3::timestamptz, $4::uuid)
     ORDER BY occurred_at DESC, id DESC
     LIMIT $5"
);

/// As [`COMPANY_EVENTS`], for one employee (`card_events_employee_time_idx`).
pub(super) const EMPLOYEE_EVENTS: &str = concat!(
    "SELECT id, occurred_at, employee_id, action, link, device, region
     FROM card_events
     WHERE company_id = $1 AND employee_id = $6
       AND occurred_at > ",
    retention_start!(),
    "
       AND occurred_at >= coalesce($2::timestamptz, '-infinity')
       AND (occurred_at, id) < ($3::timestamptz, $4::uuid)
     ORDER BY occurred_at DESC, id DESC
     LIMIT $5"
);

/// Counts per action over whole hours: `from` (default: the start of retention) rounded down,
/// `to` rounded up (an hour starting before `to` counts).
pub(super) const COMPANY_SUMMARY: &str = concat!(
    "SELECT action, sum(events)::bigint
     FROM card_rollup_action_hourly
     WHERE company_id = $1
       AND hour >= date_trunc('hour', coalesce($2::timestamptz, ",
    retention_start!(),
    "), 'UTC')
       AND hour < $3
     GROUP BY action"
);

pub(super) const EMPLOYEE_SUMMARY: &str = concat!(
    "SELECT action, sum(events)::bigint
     FROM card_rollup_employee_hourly
     WHERE company_id = $1 AND employee_id = $4
       AND hour >= date_trunc('hour', coalesce($2::timestamptz, ",
    retention_start!(),
    "), 'UTC')
       AND hour < $3
     GROUP BY action"
);

// The time series: the buckets' bounds are computed in Rust (chrono-tz, DST-correct) and sent as
// a sorted array; `width_bucket` files each UTC hour under the bucket its start falls in. One
// time-zone database (the service's) decides both the labels and the grouping, so a zone the
// server's tzdata spells differently cannot disagree with the labels.

/// The company's running totals at each bound of `$2` (1-based `i`): everything in the hours
/// starting before the bound, so that a bucket is the difference of its bounds' totals, as
/// `width_bucket` would file the hours. A bound before the first event has no row (0); one past
/// the last event reads the latest totals. Columns: `i`, the actions (in `Action` order),
/// visitors.
pub(super) const COMPANY_TOTALS_AT_BOUNDS: &str = concat!(
    "WITH at (i, hour) AS (
         SELECT i, date_trunc('hour', at - interval '1 microsecond', 'UTC')
         FROM unnest($2::timestamptz[]) WITH ORDINALITY AS b (at, i)
     )
     SELECT at.i, ",
    running_columns!("r"),
    "
     FROM at JOIN card_running_hourly r ON r.company_id = $1 AND r.hour = at.hour
     UNION ALL
     SELECT at.i, ",
    running_columns!("l"),
    "
     FROM at JOIN card_running_hourly_latest l ON l.company_id = $1 AND at.hour > l.last_hour"
);

/// One card's (`$3`) running totals at each bound of `$2`, columns as
/// [`COMPANY_TOTALS_AT_BOUNDS`]: the daily running total through the UTC midnight nearest the
/// bound, with the hourly rollups between that midnight and the bound added (or, before it,
/// taken away). A local day's bound is at most 12 hours from a UTC midnight, so a year of a
/// card reads 366 daily rows and at most 12 hours per bound (none in UTC).
pub(super) const EMPLOYEE_TOTALS_AT_BOUNDS: &str = concat!(
    "WITH at (i, bound, anchor) AS (
         SELECT i, at, date_trunc('day', at + interval '12 hours', 'UTC')
         FROM unnest($2::timestamptz[]) WITH ORDINALITY AS b (at, i)
     ), edge (i, lo, hi, sign) AS (
         SELECT i, least(bound, anchor), greatest(bound, anchor),
                CASE WHEN bound > anchor THEN 1 ELSE -1 END
         FROM at WHERE bound <> anchor
     ), parts (i, view, scan_qr, call, email, whatsapp, download_vcard, link_click, share, lead,
               preview, visitors) AS (
         SELECT at.i, ",
    running_columns!("r"),
    "
         FROM at JOIN card_running_employee_daily r
              ON r.company_id = $1 AND r.employee_id = $3
             AND r.day = (at.anchor AT TIME ZONE 'UTC')::date - 1
         UNION ALL
         SELECT at.i, ",
    running_columns!("l"),
    "
         FROM at JOIN card_running_employee_latest l
              ON l.company_id = $1 AND l.employee_id = $3
             AND (at.anchor AT TIME ZONE 'UTC')::date - 1 > l.last_day
         UNION ALL
         SELECT edge.i, n * (h.action = 'view')::int, n * (h.action = 'scan_qr')::int,
                n * (h.action = 'call')::int, n * (h.action = 'email')::int,
                n * (h.action = 'whatsapp')::int, n * (h.action = 'download_vcard')::int,
                n * (h.action = 'link_click')::int, n * (h.action = 'share')::int,
                n * (h.action = 'lead')::int, n * (h.action = 'preview')::int, 0
         FROM edge JOIN card_rollup_employee_hourly h
              ON h.company_id = $1 AND h.employee_id = $3 AND h.hour >= edge.lo AND h.hour < edge.hi
         CROSS JOIN LATERAL (SELECT edge.sign * h.events AS n) signed
         UNION ALL
         SELECT edge.i, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, edge.sign * v.visitors
         FROM edge JOIN card_rollup_visitors_hourly v
              ON v.company_id = $1 AND v.card = $3 AND v.hour >= edge.lo AND v.hour < edge.hi
     )
     SELECT i, sum(view)::bigint, sum(scan_qr)::bigint, sum(call)::bigint, sum(email)::bigint,
            sum(whatsapp)::bigint, sum(download_vcard)::bigint, sum(link_click)::bigint,
            sum(share)::bigint, sum(lead)::bigint, sum(preview)::bigint, sum(visitors)::bigint
     FROM parts GROUP BY i"
);

// Breakdowns and the leaderboard need no time zone: a range is whole UTC hours, read as whole UTC
// days from the running totals (the total at the end of the last day minus the total at the end
// of the day before the first) and the hours before the first and after the last whole day from
// the hourly rollups (see [`Tiers`]): `$2..$3` the head hours, `$4..$5` the days, `$6..$7` the
// tail hours. A range of any length reads two rows per employee (or device and region) and at
// most 46 hours.

/// People's events and views per device or region (`''`, unknown, reads `unknown`).
macro_rules! breakdown {
    ($column:literal) => {
        concat!(
            "WITH days_end AS (",
            totals_through!("card_running_company_daily", "card_running_company_latest",
                            "device, region", "$5::date - 1"),
            "), days_start AS (",
            totals_through!("card_running_company_daily", "card_running_company_latest",
                            "device, region", "$4::date - 1"),
            "), counts (value, events, views) AS (
                 SELECT ", $column, ", view + scan_qr + call + email + whatsapp + download_vcard
                                       + link_click + share + lead, view + scan_qr
                 FROM days_end
                 UNION ALL
                 SELECT ", $column, ", -(view + scan_qr + call + email + whatsapp + download_vcard
                                         + link_click + share + lead), -(view + scan_qr)
                 FROM days_start
                 UNION ALL
                 SELECT ", $column, ", events,
                        CASE WHEN action IN ('view', 'scan_qr') THEN events ELSE 0 END
                 FROM card_rollup_company_hourly
                 WHERE company_id = $1 AND ((hour >= $2 AND hour < $3) OR (hour >= $6 AND hour < $7))
                   AND action <> 'preview'
             )
             SELECT coalesce(nullif(value, ''), 'unknown') AS value, sum(events)::bigint,
                    sum(views)::bigint
             FROM counts
             GROUP BY 1
             HAVING sum(events) > 0
             ORDER BY 2 DESC, 1"
        )
    };
}

pub(super) const BREAKDOWN_BY_DEVICE: &str = breakdown!("device");
pub(super) const BREAKDOWN_BY_REGION: &str = breakdown!("region");

/// Ranked on the running totals and rollups first, joined to the (possibly deleted) employees
/// after. Engagements are the actions of [`crate::analytics::Action::is_engagement`]; leads are
/// counted apart; an employee with nothing but previews is not listed.
pub(super) const LEADERBOARD: &str = concat!(
    "WITH days_end AS (",
    totals_through!(
        "card_running_employee_daily",
        "card_running_employee_latest",
        "employee_id",
        "$5::date - 1"
    ),
    "), days_start AS (",
    totals_through!(
        "card_running_employee_daily",
        "card_running_employee_latest",
        "employee_id",
        "$4::date - 1"
    ),
    "), counts (employee_id, views, engagements, saved_contacts, leads) AS (
         SELECT employee_id, view + scan_qr,
                call + email + whatsapp + download_vcard + link_click + share, download_vcard, lead
         FROM days_end
         UNION ALL
         SELECT employee_id, -(view + scan_qr),
                -(call + email + whatsapp + download_vcard + link_click + share), -download_vcard,
                -lead
         FROM days_start
         UNION ALL
         SELECT employee_id,
                CASE WHEN action IN ('view', 'scan_qr') THEN events ELSE 0 END,
                CASE WHEN action IN ('call', 'email', 'whatsapp', 'download_vcard', 'link_click',
                                     'share') THEN events ELSE 0 END,
                CASE WHEN action = 'download_vcard' THEN events ELSE 0 END,
                CASE WHEN action = 'lead' THEN events ELSE 0 END
         FROM card_rollup_employee_hourly
         WHERE company_id = $1 AND ((hour >= $2 AND hour < $3) OR (hour >= $6 AND hour < $7))
     ), ranked AS (
         SELECT employee_id, sum(views)::bigint AS views, sum(engagements)::bigint AS engagements,
                sum(saved_contacts)::bigint AS saved_contacts, sum(leads)::bigint AS leads
         FROM counts
         GROUP BY employee_id
         HAVING sum(views) + sum(engagements) + sum(leads) > 0
         ORDER BY engagements DESC, views DESC, employee_id
         LIMIT $8
     )
     SELECT r.employee_id, e.full_name, r.views, r.engagements, r.saved_contacts, r.leads
     FROM ranked r LEFT JOIN employees e ON e.company_id = $1 AND e.id = r.employee_id
     ORDER BY r.engagements DESC, r.views DESC, r.employee_id"
);

pub(super) const COMPANY_SLUG: &str = "SELECT slug FROM companies WHERE id = $1";

/// One page of the export, oldest first, after the keyset `($4, $5)` (the backward scan of
/// `card_events_company_time_idx`).
pub(super) const EXPORT_PAGE: &str = concat!(
    "SELECT id, occurred_at, employee_id, action, link, device, region
     FROM card_events
     WHERE company_id = $1
       AND occurred_at > ",
    retention_start!(),
    "
       AND occurred_at >= coalesce($2::timestamptz, '-infinity')
       AND occurred_at < $3
       AND (occurred_at, id) > (coalesce($4::timestamptz, '-infinity'), $5::uuid)
     ORDER BY occurred_at, id
     LIMIT $6"
);
