//! The dashboard endpoints: each parses, authorizes, makes one read of the model and shapes
//! the answer.

use chrono::Utc;
use chrono_tz::Tz;
use poem::web::Data;
use poem_openapi::{
    OpenApi,
    param::{Path, Query},
    payload::{Binary, Json},
};
use uuid::Uuid;

use super::{
    export::csv_export,
    outputs::*,
    params::{
        BucketPlan, DEFAULT_LEADERBOARD_SIZE, check_order, event_window, hour_range, parse_tz,
        series_range,
    },
};
use crate::{
    api::{
        ApiTags, AppState, page,
        time_bound::{self, TimeBound},
    },
    auth::{BearerAuth, Caller},
    error::ApiError,
    model::analytics::{self, Dimension, EmployeeAccess, EventsPage, SeriesCounts},
};

pub struct AnalyticsApi;

#[OpenApi(tag = "ApiTags::Analytics")]
impl AnalyticsApi {
    /// A company's latest events and summary
    ///
    /// Admins of the company and superadmins. Events newest first, keyset-paginated, limited to
    /// the plan's retention (30 days, 365 days, or all); the summary counts every action over
    /// `[from, to)` in whole hours, from the hourly rollups, which outlive the events.
    #[oai(
        path = "/analytics/company/:company_id",
        method = "get",
        operation_id = "getCompanyAnalyticsEvents"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn company_events(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        /// RFC 3339, or a date (from its midnight, UTC); default: the start of retention.
        from: Query<Option<TimeBound>>,
        /// RFC 3339, exclusive, or a date (included whole, UTC); default: now.
        to: Query<Option<TimeBound>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Events per page, 1 to 100 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
    ) -> Result<Json<EventPage>, ApiError> {
        let caller = auth.0;
        let tenant = caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        let (from, to) = time_bound::range(from.0.as_ref(), to.0.as_ref(), Tz::UTC)?;
        let window = event_window(from, to, cursor.0.as_deref(), limit.0, Utc::now())?;
        let company_id = company_id.0;
        let page = state
            .db
            .read(&tenant, async |tx| {
                analytics::company_events(&tx, company_id, &window).await
            })
            .await?
            .ok_or_else(company_not_found)?;
        Ok(Json(event_page(page)?))
    }

    /// An employee's latest events and summary
    ///
    /// Admins of the company, superadmins, and the employee whose login is linked to this
    /// employee. As the company's, for one employee's card.
    #[oai(
        path = "/analytics/employee/:employee_id",
        method = "get",
        operation_id = "getEmployeeAnalyticsEvents"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn employee_events(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        employee_id: Path<Uuid>,
        /// RFC 3339, or a date (from its midnight, UTC); default: the start of retention.
        from: Query<Option<TimeBound>>,
        /// RFC 3339, exclusive, or a date (included whole, UTC); default: now.
        to: Query<Option<TimeBound>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Events per page, 1 to 100 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
    ) -> Result<Json<EventPage>, ApiError> {
        let caller = auth.0;
        let tenant = caller.employee_tenant(&state.db, employee_id.0).await?;
        let (from, to) = time_bound::range(from.0.as_ref(), to.0.as_ref(), Tz::UTC)?;
        let window = event_window(from, to, cursor.0.as_deref(), limit.0, Utc::now())?;
        let (company_id, employee_id, user_id) =
            (tenant.company_id(), employee_id.0, caller.user_id());
        let (access, page) = state
            .db
            .read(&tenant, async |tx| {
                analytics::employee_events(&tx, company_id, employee_id, user_id, &window).await
            })
            .await?;
        check_employee_access(&caller, access)?;
        Ok(Json(event_page(page)?))
    }

    /// A company's activity over time
    ///
    /// Admins of the company and superadmins. Counts per local day (or hour) of `tz`, every
    /// bucket present; the range widens to whole buckets. Hours are the rollups' UTC hours: in a
    /// zone with a half-hour offset, an hour counts in the day its start falls in.
    #[oai(
        path = "/analytics/company/:company_id/timeseries",
        method = "get",
        operation_id = "getCompanyAnalyticsTimeseries"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn company_timeseries(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        /// RFC 3339, or a date (from its start in `tz`); default: 30 days (or 720 hours)
        /// before `to`.
        from: Query<Option<TimeBound>>,
        /// RFC 3339, exclusive, or a date (included whole, in `tz`); default: now.
        to: Query<Option<TimeBound>>,
        /// IANA time zone, e.g. `America/New_York` (default `UTC`).
        tz: Query<Option<String>>,
        /// `day` (default; at most 400 days) or `hour` (at most 31 days).
        interval: Query<Option<Interval>>,
    ) -> Result<Json<Timeseries>, ApiError> {
        let caller = auth.0;
        let tenant = caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        let tz = parse_tz(tz.0.as_deref())?;
        let interval = interval.0.unwrap_or(Interval::Day);
        let (from, to) = time_bound::range(from.0.as_ref(), to.0.as_ref(), tz)?;
        let (from, to) = series_range(tz, interval, from, to, Utc::now())?;
        let plan = BucketPlan::new(tz, interval, from, to);
        let company_id = company_id.0;
        let counts = state
            .db
            .read(&tenant, async |tx| {
                analytics::company_series(&tx, company_id, &plan.bounds).await
            })
            .await?
            .ok_or_else(company_not_found)?;
        Ok(Json(series(tz, interval, &plan, counts)))
    }

    /// An employee's activity over time
    ///
    /// Admins of the company, superadmins, and the employee whose login is linked to this
    /// employee. As the company's, for one employee's card.
    #[oai(
        path = "/analytics/employee/:employee_id/timeseries",
        method = "get",
        operation_id = "getEmployeeAnalyticsTimeseries"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn employee_timeseries(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        employee_id: Path<Uuid>,
        /// RFC 3339, or a date (from its start in `tz`); default: 30 days (or 720 hours)
        /// before `to`.
        from: Query<Option<TimeBound>>,
        /// RFC 3339, exclusive, or a date (included whole, in `tz`); default: now.
        to: Query<Option<TimeBound>>,
        /// IANA time zone, e.g. `America/New_York` (default `UTC`).
        tz: Query<Option<String>>,
        /// `day` (default; at most 400 days) or `hour` (at most 31 days).
        interval: Query<Option<Interval>>,
    ) -> Result<Json<Timeseries>, ApiError> {
        let caller = auth.0;
        let tenant = caller.employee_tenant(&state.db, employee_id.0).await?;
        let tz = parse_tz(tz.0.as_deref())?;
        let interval = interval.0.unwrap_or(Interval::Day);
        let (from, to) = time_bound::range(from.0.as_ref(), to.0.as_ref(), tz)?;
        let (from, to) = series_range(tz, interval, from, to, Utc::now())?;
        let plan = BucketPlan::new(tz, interval, from, to);
        let (company_id, employee_id, user_id) =
            (tenant.company_id(), employee_id.0, caller.user_id());
        let (access, counts) = state
            .db
            .read(&tenant, async |tx| {
                analytics::employee_series(&tx, company_id, employee_id, user_id, &plan.bounds)
                    .await
            })
            .await?;
        check_employee_access(&caller, access)?;
        Ok(Json(series(tz, interval, &plan, counts)))
    }

    /// A company's activity by device or region
    ///
    /// Admins of the company and superadmins. People's events only (previews excluded), over
    /// `[from, to)` in whole hours, most events first.
    #[oai(
        path = "/analytics/company/:company_id/breakdown",
        method = "get",
        operation_id = "getCompanyAnalyticsBreakdown"
    )]
    async fn company_breakdown(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        /// `device` or `region`.
        by: Query<BreakdownBy>,
        /// RFC 3339, or a date (from its midnight, UTC); default: 30 days before `to`.
        from: Query<Option<TimeBound>>,
        /// RFC 3339, exclusive, or a date (included whole, UTC); default: now.
        to: Query<Option<TimeBound>>,
    ) -> Result<Json<Breakdown>, ApiError> {
        let caller = auth.0;
        let tenant = caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        let (from, to) = time_bound::range(from.0.as_ref(), to.0.as_ref(), Tz::UTC)?;
        let tiers = hour_range(from, to, Utc::now())?.tiers();
        let dimension = match by.0 {
            BreakdownBy::Device => Dimension::Device,
            BreakdownBy::Region => Dimension::Region,
        };
        let company_id = company_id.0;
        let counts = state
            .db
            .read(&tenant, async |tx| {
                analytics::breakdown(&tx, company_id, dimension, &tiers).await
            })
            .await?
            .ok_or_else(company_not_found)?;
        let rows = counts
            .into_iter()
            .map(|c| BreakdownRow {
                value: c.value,
                events: c.events,
                views: c.views,
            })
            .collect();
        Ok(Json(Breakdown { by: by.0, rows }))
    }

    /// A company's most engaging cards
    ///
    /// Admins of the company and superadmins. Employees with activity over `[from, to)` (whole
    /// hours), deleted ones included with `full_name: null`.
    #[oai(
        path = "/analytics/company/:company_id/leaderboard",
        method = "get",
        operation_id = "getCompanyAnalyticsLeaderboard"
    )]
    async fn company_leaderboard(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        /// RFC 3339, or a date (from its midnight, UTC); default: 30 days before `to`.
        from: Query<Option<TimeBound>>,
        /// RFC 3339, exclusive, or a date (included whole, UTC); default: now.
        to: Query<Option<TimeBound>>,
        /// How many employees, 1 to 100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
    ) -> Result<Json<Leaderboard>, ApiError> {
        let caller = auth.0;
        let tenant = caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        let (from, to) = time_bound::range(from.0.as_ref(), to.0.as_ref(), Tz::UTC)?;
        let tiers = hour_range(from, to, Utc::now())?.tiers();
        let (_, limit) = page(None, Some(limit.0.unwrap_or(DEFAULT_LEADERBOARD_SIZE)))?;
        let company_id = company_id.0;
        let rows = state
            .db
            .read(&tenant, async |tx| {
                analytics::leaderboard(&tx, company_id, &tiers, limit).await
            })
            .await?
            .ok_or_else(company_not_found)?;
        let employees = rows
            .into_iter()
            .map(|r| LeaderboardEntry {
                employee_id: r.employee_id,
                full_name: r.full_name,
                views: r.views,
                engagements: r.engagements,
                saved_contacts: r.saved_contacts,
                leads: r.leads,
            })
            .collect();
        Ok(Json(Leaderboard { employees }))
    }

    /// Export a company's events as CSV
    ///
    /// Admins of the company and superadmins. Oldest first, within the plan's retention;
    /// streamed in pages of 5000 events, each read in a transaction of its own (an event stored
    /// during the export with a time before the page being read is not included). Columns:
    /// `occurred_at,event_id,employee_id,action,link,device,region`. Values a spreadsheet
    /// would run as formulas start with `'`.
    #[oai(
        path = "/analytics/company/:company_id/export.csv",
        method = "get",
        operation_id = "exportCompanyAnalyticsCsv"
    )]
    async fn company_export(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        /// RFC 3339, or a date (from its midnight, UTC); default: the start of retention.
        from: Query<Option<TimeBound>>,
        /// RFC 3339, exclusive, or a date (included whole, UTC); default: now (when the
        /// export starts).
        to: Query<Option<TimeBound>>,
    ) -> Result<CsvExport, ApiError> {
        let caller = auth.0;
        let tenant = caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        let (from, to) = time_bound::range(from.0.as_ref(), to.0.as_ref(), Tz::UTC)?;
        check_order(from, to)?;
        let (slug, body) = csv_export(&state, tenant, company_id.0, from, to).await?;
        Ok(CsvExport::Ok(
            Binary(body),
            format!("attachment; filename=\"{slug}-events.csv\""),
        ))
    }
}

fn company_not_found() -> ApiError {
    ApiError::not_found("Company not found")
}

/// Admins and superadmins, or the employee login linked to the employee.
pub fn check_employee_access(caller: &Caller, access: EmployeeAccess) -> Result<(), ApiError> {
    if !access.found {
        return Err(ApiError::not_found("Employee not found"));
    }
    if caller.require_admin().is_err() && !access.linked {
        return Err(ApiError::forbidden(
            "You can only see the analytics of your own card",
        ));
    }
    Ok(())
}

fn event_page(page: EventsPage) -> Result<EventPage, ApiError> {
    Ok(EventPage {
        events: page
            .events
            .into_iter()
            .map(AnalyticsEvent::try_from)
            .collect::<Result<_, _>>()?,
        summary: page.summary.into(),
        next_cursor: page.next.map(|cursor| cursor.encode()),
    })
}

/// A time series from the counts of its plan's buckets.
pub fn series(tz: Tz, interval: Interval, plan: &BucketPlan, counts: SeriesCounts) -> Timeseries {
    let mut totals = analytics::Tally::default();
    for tally in &counts.buckets {
        totals.merge(tally);
    }
    let buckets = plan
        .labels
        .iter()
        .zip(counts.buckets)
        .zip(counts.visitors)
        .map(|((label, tally), unique_visitors)| TimeseriesBucket {
            start: label.clone(),
            counts: tally.into(),
            unique_visitors,
        })
        .collect();
    Timeseries {
        tz: tz.name().to_owned(),
        interval,
        buckets,
        conversion: Conversion::from(&totals),
        totals: totals.into(),
        unique_visitors: counts.visitors_total,
    }
}
