//! `GET /app`: where the console opens. For an admin, the company at a glance: this week against
//! last week, the last 30 days as a chart, the cards people engage with most, and how much of the
//! plan is used. All of it reads the rollups (as the API's dashboards read them), in two
//! pipelined reads side by side: its cost follows the employees and days shown, not the events.
//!
//! An employee has no company overview: their start is their own card's analytics.

use chrono::Utc;
use chrono_tz::Tz;
use maud::{Markup, html};
use poem::{Request, Response, handler, web::Data};

use super::{
    chart,
    error::ConsoleError,
    form,
    layout::{self, Section, Shell},
    session::{self, SignedIn},
};
use crate::{
    api::{
        AppState,
        analytics::{
            Interval, PeopleCounts,
            params::{BucketPlan, hour_range, series_range},
            series,
        },
    },
    db::DbError,
    model::{self, analytics},
};

/// Cards shown under "Top cards".
const TOP_CARDS: i64 = 5;
/// Days in a week, of the 30-day series: its last 7 are this week, the 7 before last week.
const WEEK: usize = 7;

#[handler]
pub async fn page(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
) -> Result<Response, ConsoleError> {
    let caller = user.caller();
    if !caller.is_admin() {
        return Ok(session::see_other(req, Section::Analytics.path()));
    }
    let company_id = caller.company_id();
    let now = Utc::now();
    // The API's defaults: the 30 days ending today (UTC, as the company has no time zone).
    let tz = Tz::UTC;
    let (from, to) = series_range(tz, Interval::Day, None, None, now)?;
    let plan = BucketPlan::new(tz, Interval::Day, from, to);
    let tiers = hour_range(None, None, now)?.tiers();
    let bounds = &plan.bounds;
    // Every signed-in page reads through the caller's tenant, which also checks the session:
    // one ended elsewhere sends the browser to the login page here. The leaderboard, the
    // costliest statement, runs on a connection of its own beside the rest, so the page takes
    // as long as the slower of the two, not their sum.
    // Boxed: the joined reads make a large future, kept off the task's stack.
    let tenant = caller.tenant();
    let overview = Box::pin(state.db.read(&tenant, async |tx| {
        let (name, counts, subscription) = tokio::join!(
            model::company::name(&tx, company_id),
            analytics::company_series(&tx, company_id, bounds),
            model::subscription::current(&tx, company_id),
        );
        Ok::<_, DbError>((name?, counts?, subscription?))
    }));
    let leaders = Box::pin(state.db.read(&tenant, async |tx| {
        analytics::leaderboard(&tx, company_id, &tiers, TOP_CARDS).await
    }));
    let (overview, top) = tokio::join!(overview, leaders);
    let ((name, counts, subscription), top) = (overview?, top?);
    let counts = counts.ok_or_else(|| crate::error::ApiError::not_found("Company not found"))?;
    let series = series(tz, Interval::Day, &plan, counts);
    let days: Vec<&PeopleCounts> = series.buckets.iter().map(|b| &b.counts).collect();
    let split = days.len().saturating_sub(WEEK);
    let this_week = Week::of(&days[split..]);
    let last_week = Week::of(&days[split.saturating_sub(WEEK)..split]);

    let labels: Vec<String> = series.buckets.iter().map(|b| b.start.clone()).collect();
    let views: Vec<i64> = days.iter().map(|c| c.view).collect();
    let scans: Vec<i64> = days.iter().map(|c| c.scan_qr).collect();
    let saves: Vec<i64> = days.iter().map(|c| c.download_vcard).collect();
    let leads: Vec<i64> = days.iter().map(|c| c.lead).collect();
    let engagements: Vec<i64> = days.iter().map(|c| engagements(c)).collect();
    let employees = subscription.as_ref().map_or(0, |s| s.employee_count);
    let quiet = views
        .iter()
        .chain(&scans)
        .chain(&saves)
        .chain(&leads)
        .chain(&engagements)
        .all(|&n| n == 0);

    let token = form::token(req);
    let shell = Shell {
        title: "Home",
        user: Some(&user),
        csrf: &token,
        section: Some(Section::Home),
    };
    Ok(layout::page(
        &shell,
        html! {
            h1 { (name.unwrap_or_default()) }
            @if employees == 0 {
                div class="panel empty" {
                    h2 { "Add your first people" }
                    p { "Nobody has a card yet. Add the people of your company (one by one or "
                        "from a spreadsheet) and each gets a card to share." }
                    p { a class="button" href=(Section::People.path()) { "Add people" } }
                }
            } @else if quiet {
                div class="panel empty" {
                    h2 { "Share your cards" }
                    p { "Nobody has opened a card in the last 30 days. Send people their card's "
                        "link, or print its QR code on a badge or a desk sign: views, scans, "
                        "saved contacts and leads show up here as they happen." }
                    p { a href=(Section::People.path()) { "Go to people" } }
                }
            }
            section aria-labelledby="week-h" {
                h2 id="week-h" { "This week" }
                p class="muted" { "The last 7 days (UTC), against the 7 before." }
                ul class="grid stats" {
                    (stat("Views", this_week.views, last_week.views))
                    (stat("QR scans", this_week.scans, last_week.scans))
                    (stat("Saved contacts", this_week.saves, last_week.saves))
                    (stat("Leads", this_week.leads, last_week.leads))
                    (stat("Engagements", this_week.engagements, last_week.engagements))
                }
            }
            section class="panel" aria-labelledby="days-h" {
                h2 id="days-h" { "Last 30 days" }
                (chart::line(&chart::Chart {
                    id: "home-30-days",
                    title: "Views, QR scans, saved contacts, leads and engagements per day, last 30 days",
                    labels: &labels,
                    series: vec![
                        chart::Series { name: "Views", class: "series-1", values: &views },
                        chart::Series { name: "QR scans", class: "series-2", values: &scans },
                        chart::Series { name: "Saved contacts", class: "series-3", values: &saves },
                        chart::Series { name: "Leads", class: "series-6", values: &leads },
                        chart::Series { name: "Engagements", class: "series-4", values: &engagements },
                    ],
                }))
                p { a href=(Section::Analytics.path()) { "More in Analytics" } }
            }
            section class="panel" aria-labelledby="top-h" {
                h2 id="top-h" { "Top cards" }
                p class="muted" { "Most engagements, then most views, over the last 30 days." }
                @let top = top.unwrap_or_default();
                @if top.is_empty() {
                    p class="muted" { "No card has been viewed in the last 30 days." }
                } @else {
                    div class="table-wrap" role="region" tabindex="0" aria-label="Most engaging cards, last 30 days" {
                        table {
                            caption class="visually-hidden" { "Most engaging cards, last 30 days" }
                            thead { tr {
                                th scope="col" { "Card" }
                                th scope="col" class="num" { "Views" }
                                th scope="col" class="num" { "Engagements" }
                                th scope="col" class="num" { "Saved contacts" }
                                th scope="col" class="num" { "Leads" }
                            } }
                            tbody {
                                @for row in &top {
                                    tr {
                                        th scope="row" {
                                            a href=(format!("/app/analytics/employees/{}", row.employee_id)) {
                                                (row.full_name.as_deref().unwrap_or("(deleted)"))
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
            @if let Some(subscription) = &subscription {
                section class="panel" aria-labelledby="plan-h" {
                    h2 id="plan-h" { "Plan" }
                    (plan_usage(&subscription.plan, subscription.employee_count, subscription.employee_limit))
                }
            }
        },
    ))
}

/// `call`, `email`, `whatsapp`, `link_click` and `share`: what a visitor does to get in touch.
/// Saving the contact is counted on its own, so the leaderboard's engagements (which include
/// saves) are shown less its saved contacts.
pub fn engagements(c: &PeopleCounts) -> i64 {
    c.call + c.email + c.whatsapp + c.link_click + c.share
}

/// A week's totals.
#[derive(Default)]
struct Week {
    views: i64,
    scans: i64,
    saves: i64,
    leads: i64,
    engagements: i64,
}

impl Week {
    fn of(days: &[&PeopleCounts]) -> Self {
        days.iter().fold(Self::default(), |w, c| Week {
            views: w.views + c.view,
            scans: w.scans + c.scan_qr,
            saves: w.saves + c.download_vcard,
            leads: w.leads + c.lead,
            engagements: w.engagements + engagements(c),
        })
    }
}

/// The change from `before` to `now`, as shown: `+25%`, `−10%`, `no change`, `new`.
pub fn change(now: i64, before: i64) -> String {
    if now == before {
        return "no change".into();
    }
    if before == 0 {
        return "new this week".into();
    }
    let percent = ((now - before) as f64 / before as f64 * 100.0).round() as i64;
    if percent >= 0 {
        format!("+{percent}%")
    } else {
        format!("−{}%", -percent)
    }
}

fn stat(label: &str, now: i64, before: i64) -> Markup {
    let trend = match now.cmp(&before) {
        std::cmp::Ordering::Greater => "up",
        std::cmp::Ordering::Less => "down",
        std::cmp::Ordering::Equal => "flat",
    };
    html! {
        li class="stat" {
            span class="label" { (label) }
            span class="value" { (now) }
            span class=(format!("delta {trend}")) {
                (change(now, before)) span class="visually-hidden" { " against last week (" (before) ")" }
            }
        }
    }
}

fn plan_usage(plan: &str, used: i64, limit: Option<i32>) -> Markup {
    html! {
        @match limit {
            Some(limit) => {
                p { "Plan " strong { (plan) } ": " (used) " of " (limit) " employees used." }
                meter min="0" max=(limit) value=(used) aria-label="Employees used of the plan's limit" {
                    (used) " of " (limit)
                }
                @if i64::from(limit) <= used {
                    p class="alert warn" { "The plan is full: a new employee needs a larger plan." }
                }
            }
            None => p { "Plan " strong { (plan) } ": " (used) " employees, no limit." },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_as_people_say_them() {
        assert_eq!(change(5, 4), "+25%");
        assert_eq!(change(9, 10), "−10%");
        assert_eq!(change(3, 3), "no change");
        assert_eq!(change(0, 0), "no change");
        assert_eq!(change(2, 0), "new this week");
        assert_eq!(change(0, 4), "−100%");
    }
}
