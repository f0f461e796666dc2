//! `GET /app/analytics`: what visitors did on the company's cards over a range of local days
//! (`from`, `to`, `tz`: a GET form, so a range is a link), with the API's rules: its default
//! (the last 30 days), its limits (at most 400 days), its employee scoping (an employee sees only
//! their own card), and the model functions it reads the rollups with.
//!
//! Also `GET /app/analytics/employees/:id` (one card in detail) and
//! `GET /app/analytics/export.csv` (the API's export, the same bytes).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    http::StatusCode,
    web::{Data, Path, Query},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    chart,
    error::ConsoleError,
    form::{self, Field, FieldErrors},
    home::engagements,
    layout::{self, Section, Shell},
    live_feed::{self, FeedLine},
    session::{ConsoleUser, SignedIn},
};
use crate::{
    api::{
        AppState,
        analytics::{
            Interval, Timeseries, check_employee_access,
            export::csv_export,
            params::{BucketPlan, hour_range, parse_tz, series_range},
            series,
        },
        time_bound::day_start,
    },
    db::{DbError, TenantTx},
    error::ApiError,
    model::{
        self,
        analytics::{
            self as model_analytics, BreakdownCount, Cursor, Dimension, EventRow, EventWindow,
            LeaderboardRow,
        },
    },
};

/// Days of the default range, as the API's.
const DEFAULT_DAYS: i64 = 30;
/// Events listed under "Latest activity".
const LATEST_EVENTS: i64 = 10;
/// How far back "Latest activity" looks.
const LATEST_DAYS: i64 = 7;
const LEADERBOARD_SIZE: i64 = 10;

/// The range form, as sent (every field optional: empty means the default).
#[derive(Debug, Default, Deserialize)]
pub struct RangeQuery {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    tz: Option<String>,
}

impl RangeQuery {
    fn field(value: &Option<String>) -> Option<&str> {
        value.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
}

/// The query string of a range, for links that keep it (the export's).
fn range_query(range: &Range) -> String {
    format!(
        "from={}&to={}&tz={}",
        range.from_day,
        range.to_day,
        percent_encoding::utf8_percent_encode(range.tz.name(), percent_encoding::NON_ALPHANUMERIC)
    )
}

/// A checked range: whole local days `from_day..=to_day` of `tz`.
#[derive(Debug)]
pub struct Range {
    pub tz: Tz,
    pub from_day: NaiveDate,
    pub to_day: NaiveDate,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

fn parse_day(raw: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .filter(|d| (1970..=9999).contains(&chrono::Datelike::year(d)))
}

/// The range a form asks for, or the errors to show next to its fields. Defaults: the 30 days
/// ending today in `tz`, UTC when no zone is given (a browser's zone is not known without
/// script; the company has none).
pub fn parse_range(query: &RangeQuery, now: DateTime<Utc>) -> Result<Range, FieldErrors> {
    let mut errors = FieldErrors::new();
    let tz = match parse_tz(RangeQuery::field(&query.tz)) {
        Ok(tz) => tz,
        Err(e) => {
            errors.add("tz", e.detail());
            Tz::UTC
        }
    };
    let mut day = |name: &str, raw: Option<&str>| match raw.map(|r| (r, parse_day(r))) {
        None => None,
        Some((_, Some(day))) => Some(day),
        Some((raw, None)) => {
            errors.add(
                name,
                format!("“{raw}” is not a date: enter one as YYYY-MM-DD, e.g. 2026-11-30"),
            );
            None
        }
    };
    let from = day("from", RangeQuery::field(&query.from));
    let to = day("to", RangeQuery::field(&query.to));
    if !errors.is_empty() {
        return Err(errors);
    }
    let today = now.with_timezone(&tz).date_naive();
    let span = TimeDelta::days(DEFAULT_DAYS - 1);
    let (from_day, to_day) = match (from, to) {
        (Some(from), Some(to)) => (from, to),
        (Some(from), None) => (from, today.max(from)),
        (None, Some(to)) => (to - span, to),
        (None, None) => (today - span, today),
    };
    if to_day < from_day {
        errors.add("to", "The end date must be on or after the start date");
        return Err(errors);
    }
    let start = day_start(tz, from_day);
    let end = day_start(tz, to_day.succ_opt().unwrap_or(to_day));
    // The API's rule for a series of days (its longest range).
    match series_range(tz, Interval::Day, Some(start), Some(end), now) {
        Ok((from, to)) => Ok(Range {
            tz,
            from_day,
            to_day,
            from,
            to,
        }),
        Err(e) => {
            errors.add("to", e.detail().replace('`', ""));
            Err(errors)
        }
    }
}

/// The range form: a GET, so it works without script and a range can be bookmarked.
fn range_form(
    action: &str,
    query: &RangeQuery,
    range: Option<&Range>,
    errors: &FieldErrors,
) -> Markup {
    let shown = |raw: &Option<String>, day: Option<NaiveDate>| {
        raw.clone()
            .filter(|r| !r.trim().is_empty())
            .or_else(|| day.map(|d| d.to_string()))
            .unwrap_or_default()
    };
    let from = shown(&query.from, range.map(|r| r.from_day));
    let to = shown(&query.to, range.map(|r| r.to_day));
    let tz = shown(&query.tz, None);
    let tz = if tz.is_empty() {
        range.map_or("UTC", |r| r.tz.name()).to_owned()
    } else {
        tz
    };
    html! {
        form class="range" method="get" action=(action) {
            (errors.summary(&["from", "to", "tz"]))
            (Field::new("from", "From").kind("date").value(&from).required().render(errors))
            (Field::new("to", "To").kind("date").value(&to).required()
                .hint("Included. At most 400 days.").render(errors))
            (Field::new("tz", "Time zone").value(&tz).required()
                .hint("An IANA name, such as Europe/Berlin or America/New_York.").render(errors))
            button type="submit" { "Show" }
        }
    }
}

fn shell<'a>(
    user: &'a ConsoleUser,
    token: &'a super::csrf::CsrfToken,
    title: &'a str,
) -> Shell<'a> {
    Shell {
        title,
        user: Some(user),
        csrf: token,
        section: Some(Section::Analytics),
    }
}

/// The page again with the form's errors next to its fields: 422.
fn invalid(
    req: &Request,
    user: &ConsoleUser,
    action: &str,
    query: &RangeQuery,
    errors: &FieldErrors,
) -> Response {
    let token = form::token(req);
    layout::page_with_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        &shell(user, &token, "Analytics"),
        html! {
            h1 { "Analytics" }
            (range_form(action, query, None, errors))
        },
    )
}

/// What the company page reads (beside the latest events).
struct CompanyData {
    series: Option<model_analytics::SeriesCounts>,
    devices: Option<Vec<BreakdownCount>>,
    regions: Option<Vec<BreakdownCount>>,
    leaders: Option<Vec<LeaderboardRow>>,
}

/// The latest events of the week before `now`, newest first. Bounded, because the list's read
/// also sums the hourly rollups over its range (a summary this page does not show).
fn latest_window(now: DateTime<Utc>) -> EventWindow {
    EventWindow {
        from: Some(now - TimeDelta::days(LATEST_DAYS)),
        to: now,
        below: Cursor {
            occurred_at: now,
            id: Uuid::nil(),
        },
        limit: LATEST_EVENTS,
    }
}

/// The names of the employees of `events` (one lookup each, sent at once).
async fn names_of(tx: &TenantTx, events: &[EventRow]) -> Result<HashMap<Uuid, String>, DbError> {
    let mut ids: Vec<Uuid> = events.iter().map(|e| e.employee_id).collect();
    ids.sort();
    ids.dedup();
    let found = futures::future::join_all(ids.iter().map(|id| model::employee::get(tx, *id))).await;
    let mut names = HashMap::new();
    for employee in found {
        if let Some(employee) = employee? {
            names.insert(employee.id, employee.full_name);
        }
    }
    Ok(names)
}

#[handler]
pub async fn page(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Query(query): Query<RangeQuery>,
) -> Result<Response, ConsoleError> {
    let now = Utc::now();
    let range = match parse_range(&query, now) {
        Ok(range) => range,
        Err(errors) => {
            return Ok(invalid(
                req,
                &user,
                Section::Analytics.path(),
                &query,
                &errors,
            ));
        }
    };
    let caller = user.caller();
    if !caller.is_admin() {
        // An employee: their own card, as the API scopes them.
        let (company_id, user_id) = (caller.company_id(), caller.user_id());
        let access = state
            .db
            .read(&caller.tenant(), async |tx| {
                model_analytics::live::live_access(&tx, company_id, user_id).await
            })
            .await?;
        return match access.and_then(|a| a.linked_employee) {
            Some(employee_id) => {
                employee_page(&state, req, &user, employee_id, &query, range).await
            }
            None => {
                let token = form::token(req);
                Ok(layout::page(
                    &shell(&user, &token, "Analytics"),
                    html! {
                        h1 { "Analytics" }
                        div class="panel empty" {
                            p { "Your login is not linked to a card, so there is nothing to show "
                                "here. Ask an admin of your company to link it to yours." }
                        }
                    },
                ))
            }
        };
    }

    let company_id = caller.company_id();
    let plan = BucketPlan::new(range.tz, Interval::Day, range.from, range.to);
    let tiers = hour_range(Some(range.from), Some(range.to), now)?.tiers();
    let bounds = &plan.bounds;
    let window = latest_window(now);
    // Two reads side by side, each on a connection of its own: the leaderboard (the costliest
    // statement) with the series, and the breakdowns with the latest events and then their
    // cards' names. The page takes as long as the slower of the two, not their sum.
    let tenant = caller.tenant();
    // Boxed: the joined reads make large futures, kept off the task's stack.
    let ranking = Box::pin(state.db.read(&tenant, async |tx| {
        let (series, leaders) = tokio::join!(
            model_analytics::company_series(&tx, company_id, bounds),
            model_analytics::leaderboard(&tx, company_id, &tiers, LEADERBOARD_SIZE),
        );
        Ok::<_, DbError>((series?, leaders?))
    }));
    let activity = Box::pin(async {
        let (devices, regions, latest) = state
            .db
            .read(&tenant, async |tx| {
                let (devices, regions, latest) = tokio::join!(
                    model_analytics::breakdown(&tx, company_id, Dimension::Device, &tiers),
                    model_analytics::breakdown(&tx, company_id, Dimension::Region, &tiers),
                    model_analytics::company_events(&tx, company_id, &window),
                );
                Ok::<_, DbError>((devices?, regions?, latest?))
            })
            .await?;
        let events = latest.map(|p| p.events).unwrap_or_default();
        // A read sends all its statements at once: the names of the events' cards need another.
        let names = if events.is_empty() {
            HashMap::new()
        } else {
            let events = &events;
            state
                .db
                .read(&tenant, async |tx| names_of(&tx, events).await)
                .await?
        };
        Ok::<_, DbError>((devices, regions, events, names))
    });
    let (ranking, activity) = tokio::join!(ranking, activity);
    let ((counts, leaders), (devices, regions, events, names)) = (ranking?, activity?);
    let data = CompanyData {
        series: counts,
        devices,
        regions,
        leaders,
    };
    let counts = data
        .series
        .ok_or_else(|| ApiError::not_found("Company not found"))?;
    let timeseries = series(range.tz, Interval::Day, &plan, counts);
    let export = format!("/app/analytics/export.csv?{}", range_query(&range));

    let token = form::token(req);
    Ok(layout::page(
        &shell(&user, &token, "Analytics"),
        html! {
            h1 { "Analytics" }
            (range_form(Section::Analytics.path(), &query, Some(&range), &FieldErrors::new()))
            (overview("company", &timeseries))
            div class="grid" {
                (breakdown_table("devices", "Devices", "Device", data.devices.as_deref().unwrap_or_default()))
                (breakdown_table("regions", "Regions", "Region", data.regions.as_deref().unwrap_or_default()))
            }
            (leaderboard(data.leaders.as_deref().unwrap_or_default()))
            section class="panel" aria-labelledby="export-h" {
                h2 id="export-h" { "Export" }
                p { "Every event of this range, one row each, as CSV (the same file as the API's export)." }
                p { a class="button" href=(export) download { "Download CSV" } }
            }
            (live_section(&events, &names))
        },
    ))
}

/// `GET /app/analytics/employees/:id`: one card in detail. Another company's id is a 404; an
/// employee may open only their own card (403 otherwise), as in the API.
#[handler]
pub async fn employee_detail(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Path(employee_id): Path<String>,
    Query(query): Query<RangeQuery>,
) -> Result<Response, ConsoleError> {
    let employee_id: Uuid = employee_id
        .parse()
        .map_err(|_| ApiError::not_found("Employee not found"))?;
    let range = match parse_range(&query, Utc::now()) {
        Ok(range) => range,
        Err(errors) => {
            let action = format!("/app/analytics/employees/{employee_id}");
            return Ok(invalid(req, &user, &action, &query, &errors));
        }
    };
    employee_page(&state, req, &user, employee_id, &query, range).await
}

async fn employee_page(
    state: &AppState,
    req: &Request,
    user: &ConsoleUser,
    employee_id: Uuid,
    query: &RangeQuery,
    range: Range,
) -> Result<Response, ConsoleError> {
    let caller = user.caller();
    let tenant = caller.employee_tenant(&state.db, employee_id).await?;
    let (company_id, user_id) = (tenant.company_id(), caller.user_id());
    let plan = BucketPlan::new(range.tz, Interval::Day, range.from, range.to);
    let bounds = &plan.bounds;
    let now = Utc::now();
    let window = latest_window(now);
    // Boxed: the joined reads make a large future, kept off the task's stack.
    let (access, counts, events, employee) = Box::pin(state.db.read(&tenant, async |tx| {
        let (series, events, employee) = tokio::join!(
            model_analytics::employee_series(&tx, company_id, employee_id, user_id, bounds),
            model_analytics::employee_latest_events(&tx, company_id, employee_id, user_id, &window),
            model::employee::get(&tx, employee_id),
        );
        let (access, counts) = series?;
        let (_, events) = events?;
        Ok::<_, DbError>((access, counts, events, employee?))
    }))
    .await?;
    check_employee_access(caller, access)?;
    let employee = employee.ok_or_else(|| ApiError::not_found("Employee not found"))?;
    let timeseries = series(range.tz, Interval::Day, &plan, counts);
    let names = HashMap::from([(employee.id, employee.full_name.clone())]);
    let action = format!("/app/analytics/employees/{employee_id}");
    let token = form::token(req);
    let title = format!("Analytics: {}", employee.full_name);
    let own = !caller.is_admin();
    Ok(layout::page(
        &shell(user, &token, &title),
        html! {
            @if !own { p { a href=(Section::Analytics.path()) { "← All cards" } } }
            h1 { (employee.full_name) }
            @if let Some(job) = &employee.job_title { p class="muted" { (job) } }
            (range_form(&action, query, Some(&range), &FieldErrors::new()))
            (overview("employee", &timeseries))
            @if own {
                (live_section(&events, &names))
            } @else {
                (latest_section(&events, &names))
            }
        },
    ))
}

/// `GET /app/analytics/export.csv`: the API's CSV export of the range (admins only).
#[handler]
pub async fn export_csv(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Query(query): Query<RangeQuery>,
) -> Result<Response, ConsoleError> {
    let caller = user.caller();
    caller.require_admin()?;
    let range = match parse_range(&query, Utc::now()) {
        Ok(range) => range,
        Err(errors) => {
            return Ok(invalid(
                req,
                &user,
                Section::Analytics.path(),
                &query,
                &errors,
            ));
        }
    };
    let to = range.to.min(Utc::now());
    let (slug, body) = csv_export(
        &state,
        caller.tenant(),
        caller.company_id(),
        Some(range.from),
        Some(to),
    )
    .await?;
    Ok(layout::csv_download(&format!("{slug}-events.csv"), body))
}

/// Totals, conversion and the charts of a series.
fn overview(id: &str, series: &Timeseries) -> Markup {
    let labels: Vec<String> = series.buckets.iter().map(|b| b.start.clone()).collect();
    let pick = |f: fn(&crate::api::analytics::PeopleCounts) -> i64| -> Vec<i64> {
        series.buckets.iter().map(|b| f(&b.counts)).collect()
    };
    let views = pick(|c| c.view);
    let scans = pick(|c| c.scan_qr);
    let saves = pick(|c| c.download_vcard);
    let leads = pick(|c| c.lead);
    let engaged = pick(engagements);
    let visitors: Vec<i64> = series.buckets.iter().map(|b| b.unique_visitors).collect();
    let totals = &series.totals;
    let conversion = &series.conversion;
    html! {
        section aria-labelledby=(format!("{id}-totals-h")) {
            h2 id=(format!("{id}-totals-h")) { "Totals" }
            ul class="grid stats" {
                li class="stat" { span class="label" { "Views" } span class="value" { (totals.view) } }
                li class="stat" { span class="label" { "QR scans" } span class="value" { (totals.scan_qr) } }
                li class="stat" { span class="label" { "Saved contacts" } span class="value" { (totals.download_vcard) } }
                li class="stat" { span class="label" { "Leads" } span class="value" { (totals.lead) } }
                li class="stat" { span class="label" { "Engagements" } span class="value" { (engaged.iter().sum::<i64>()) } }
                li class="stat" { span class="label" { "Unique visitors" } span class="value" { (series.unique_visitors) } }
            }
            p {
                "Conversion (views and scans → saved contacts): "
                strong { (format!("{:.1}%", conversion.rate * 100.0)) }
                " (" (conversion.saved_contacts) " of " (conversion.views) ")."
            }
            p {
                "Conversion (views and scans → leads): "
                strong { (format!("{:.1}%", conversion.lead_rate * 100.0)) }
                " (" (conversion.leads) " of " (conversion.views) "); "
                (format!("{:.2}", conversion.leads_per_saved_contact)) " leads per saved contact."
            }
        }
        section class="panel" aria-labelledby=(format!("{id}-time-h")) {
            h2 id=(format!("{id}-time-h")) { "Over time (" (series.tz) ")" }
            (chart::line(&chart::Chart {
                id: &format!("{id}-views"),
                title: "Views, QR scans and unique visitors per day",
                labels: &labels,
                series: vec![
                    chart::Series { name: "Views", class: "series-1", values: &views },
                    chart::Series { name: "QR scans", class: "series-2", values: &scans },
                    chart::Series { name: "Unique visitors", class: "series-5", values: &visitors },
                ],
            }))
            (chart::bars(&chart::Chart {
                id: &format!("{id}-actions"),
                title: "Saved contacts, leads and engagements per day",
                labels: &labels,
                series: vec![
                    chart::Series { name: "Saved contacts", class: "series-3", values: &saves },
                    chart::Series { name: "Leads", class: "series-6", values: &leads },
                    chart::Series { name: "Engagements", class: "series-4", values: &engaged },
                ],
            }))
        }
    }
}

fn breakdown_table(id: &str, title: &str, what: &str, rows: &[BreakdownCount]) -> Markup {
    html! {
        section class="panel" aria-labelledby=(format!("{id}-h")) {
            h2 id=(format!("{id}-h")) { (title) }
            @if rows.is_empty() {
                p class="muted" { "Nothing in this range yet." }
            } @else {
                div class="table-wrap" role="region" tabindex="0" aria-label=(title) {
                    table {
                        thead { tr {
                            th scope="col" { (what) }
                            th scope="col" class="num" { "Events" }
                            th scope="col" class="num" { "Views" }
                        } }
                        tbody {
                            @for row in rows {
                                tr {
                                    th scope="row" { (row.value) }
                                    td class="num" { (row.events) }
                                    td class="num" { (row.views) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn leaderboard(rows: &[LeaderboardRow]) -> Markup {
    html! {
        section class="panel" aria-labelledby="leaders-h" {
            h2 id="leaders-h" { "Leaderboard" }
            @if rows.is_empty() {
                p class="muted" { "No card has been viewed in this range. Share your people's cards "
                    "(their link or QR code) and they show up here." }
            } @else {
                div class="table-wrap" role="region" tabindex="0" aria-label="Leaderboard" {
                    table {
                        thead { tr {
                            th scope="col" { "Card" }
                            th scope="col" class="num" { "Views" }
                            th scope="col" class="num" { "Engagements" }
                            th scope="col" class="num" { "Saved contacts" }
                            th scope="col" class="num" { "Leads" }
                        } }
                        tbody {
                            @for row in rows {
                                tr {
                                    th scope="row" {
                                        @match &row.full_name {
                                            Some(name) => a href=(format!("/app/analytics/employees/{}", row.employee_id)) { (name) },
                                            None => span class="muted" { "(deleted)" },
                                        }
                                    }
                                    td class="num" { (row.views) }
                                    td class="num" { (row.engagements - row.saved_contacts) }
                                    td class="num" { (row.saved_contacts) }
                                    td class="num" { (row.leads) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn feed_items(events: &[EventRow], names: &HashMap<Uuid, String>) -> Markup {
    html! {
        @for event in events {
            (live_feed::item(&FeedLine {
                occurred_at: event.occurred_at,
                action: &event.action,
                employee_id: event.employee_id,
                employee_name: names.get(&event.employee_id).map(String::as_str),
                device: event.device.as_deref(),
                region: event.region.as_deref(),
            }))
        }
        @if events.is_empty() {
            li class="muted" data-empty { "Nothing in the past 7 days." }
        }
    }
}

/// The latest events, and (with script) the events as they happen, prepended.
fn live_section(events: &[EventRow], names: &HashMap<Uuid, String>) -> Markup {
    html! {
        section class="panel" aria-labelledby="live-h" {
            h2 id="live-h" { "Live activity" }
            p class="muted" id="live-note" {
                "The latest events of the past 7 days, newest first. While this page is open, new ones appear at the "
                "top by themselves; without JavaScript, reload the page to see them."
            }
            ul class="feed" id="live-feed" aria-live="polite" aria-describedby="live-note"
                data-live-src=(live_feed::PATH) {
                (feed_items(events, names))
            }
        }
    }
}

/// The latest events of a card, without the live stream (an admin's view of one card: the
/// stream shows the whole company).
fn latest_section(events: &[EventRow], names: &HashMap<Uuid, String>) -> Markup {
    html! {
        section class="panel" aria-labelledby="latest-h" {
            h2 id="latest-h" { "Latest activity" }
            ul class="feed" { (feed_items(events, names)) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(from: &str, to: &str, tz: &str) -> RangeQuery {
        let some = |s: &str| Some(s.to_owned());
        RangeQuery {
            from: some(from),
            to: some(to),
            tz: some(tz),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_default_range_is_the_last_30_days_in_utc() {
        let range = parse_range(&RangeQuery::default(), now()).unwrap();
        assert_eq!(range.tz, Tz::UTC);
        assert_eq!(range.to_day.to_string(), "2026-12-02");
        assert_eq!(range.from_day.to_string(), "2026-11-03");
        assert_eq!((range.to - range.from).num_days(), 30);
    }

    #[test]
    fn local_days_start_at_local_midnight() {
        let range =
            parse_range(&query("2026-11-01", "2026-11-01", "Europe/Berlin"), now()).unwrap();
        assert_eq!(range.from.to_rfc3339(), "2026-10-31T23:00:00+00:00");
        assert_eq!(range.to.to_rfc3339(), "2026-11-01T23:00:00+00:00");
    }

    #[test]
    fn bad_ranges_name_their_field() {
        let errors = parse_range(&query("2026-11-10", "2026-11-01", ""), now()).unwrap_err();
        assert!(errors.get("to").is_some(), "{errors:?}");
        let errors = parse_range(&query("yesterday", "", ""), now()).unwrap_err();
        assert!(errors.get("from").is_some(), "{errors:?}");
        let errors = parse_range(&query("", "", "Mars/Olympus"), now()).unwrap_err();
        assert!(errors.get("tz").is_some(), "{errors:?}");
        let errors = parse_range(&query("2020-01-01", "2026-01-01", ""), now()).unwrap_err();
        assert!(errors.get("to").unwrap().contains("400 days"), "{errors:?}");
    }
}
