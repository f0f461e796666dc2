-- Running totals: what a dashboard over a long range reads instead of summing rollup rows.
--
-- A sum over a range is the running total at its end minus the running total at its start, so
-- a dashboard reads two rows per employee (or device and region, or one per bucket bound for the
-- company's time series) whatever the range: a year costs what a week costs.
--
-- The running tables are dense: a key (an employee; a device and region; the company itself for
-- the hourly series) has a row for every day (hour) from its first event to its last one, so the
-- total at a given day is that day's row, found by one index range over the day. Before the first
-- row the total is 0; after the last one it is the key's `_latest` row, which also says where the
-- rows start and end. Ingestion keeps them so in the statement that stores the events (see
-- src/analytics/running.rs), under a per-company advisory lock, so two instances never fill in the
-- same day for the same key at once. Totals include previews, as the daily rollups do; readers
-- leave them out.

-- Per employee, with the card's unique visitors (counted where first seen, as in
-- card_rollup_visitors_hourly): the leaderboard, and one card's series with the hourly rollups
-- at its buckets' edges.
CREATE TABLE card_running_employee_daily (
    company_id     uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    day            date NOT NULL,
    employee_id    uuid NOT NULL,
    view           bigint NOT NULL DEFAULT 0,
    scan_qr        bigint NOT NULL DEFAULT 0,
    call           bigint NOT NULL DEFAULT 0,
    email          bigint NOT NULL DEFAULT 0,
    whatsapp       bigint NOT NULL DEFAULT 0,
    download_vcard bigint NOT NULL DEFAULT 0,
    link_click     bigint NOT NULL DEFAULT 0,
    share          bigint NOT NULL DEFAULT 0,
    preview        bigint NOT NULL DEFAULT 0,
    visitors       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (company_id, day, employee_id)
);
-- Ingestion adds to one employee's rows from a day on.
CREATE INDEX card_running_employee_daily_employee_idx
    ON card_running_employee_daily (company_id, employee_id, day);

CREATE TABLE card_running_employee_latest (
    company_id     uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    employee_id    uuid NOT NULL,
    first_day      date NOT NULL,
    last_day       date NOT NULL CHECK (last_day >= first_day),
    view           bigint NOT NULL DEFAULT 0,
    scan_qr        bigint NOT NULL DEFAULT 0,
    call           bigint NOT NULL DEFAULT 0,
    email          bigint NOT NULL DEFAULT 0,
    whatsapp       bigint NOT NULL DEFAULT 0,
    download_vcard bigint NOT NULL DEFAULT 0,
    link_click     bigint NOT NULL DEFAULT 0,
    share          bigint NOT NULL DEFAULT 0,
    preview        bigint NOT NULL DEFAULT 0,
    visitors       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (company_id, employee_id)
);

CREATE TABLE card_running_company_daily (
    company_id     uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    day            date NOT NULL,
    device         text NOT NULL,
    region         text NOT NULL,
    view           bigint NOT NULL DEFAULT 0,
    scan_qr        bigint NOT NULL DEFAULT 0,
    call           bigint NOT NULL DEFAULT 0,
    email          bigint NOT NULL DEFAULT 0,
    whatsapp       bigint NOT NULL DEFAULT 0,
    download_vcard bigint NOT NULL DEFAULT 0,
    link_click     bigint NOT NULL DEFAULT 0,
    share          bigint NOT NULL DEFAULT 0,
    preview        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (company_id, day, device, region)
);
CREATE INDEX card_running_company_daily_key_idx
    ON card_running_company_daily (company_id, device, region, day);

CREATE TABLE card_running_company_latest (
    company_id     uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    device         text NOT NULL,
    region         text NOT NULL,
    first_day      date NOT NULL,
    last_day       date NOT NULL CHECK (last_day >= first_day),
    view           bigint NOT NULL DEFAULT 0,
    scan_qr        bigint NOT NULL DEFAULT 0,
    call           bigint NOT NULL DEFAULT 0,
    email          bigint NOT NULL DEFAULT 0,
    whatsapp       bigint NOT NULL DEFAULT 0,
    download_vcard bigint NOT NULL DEFAULT 0,
    link_click     bigint NOT NULL DEFAULT 0,
    share          bigint NOT NULL DEFAULT 0,
    preview        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (company_id, device, region)
);

-- The company's hourly series, with its unique visitors (counted where first seen, as in
-- card_rollup_visitors_hourly).
CREATE TABLE card_running_hourly (
    company_id     uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    hour           timestamptz NOT NULL CONSTRAINT card_running_hourly_hour_check CHECK (hour = date_trunc('hour', hour, 'UTC')),
    view           bigint NOT NULL DEFAULT 0,
    scan_qr        bigint NOT NULL DEFAULT 0,
    call           bigint NOT NULL DEFAULT 0,
    email          bigint NOT NULL DEFAULT 0,
    whatsapp       bigint NOT NULL DEFAULT 0,
    download_vcard bigint NOT NULL DEFAULT 0,
    link_click     bigint NOT NULL DEFAULT 0,
    share          bigint NOT NULL DEFAULT 0,
    preview        bigint NOT NULL DEFAULT 0,
    visitors       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (company_id, hour)
);

CREATE TABLE card_running_hourly_latest (
    company_id     uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    first_hour     timestamptz NOT NULL,
    last_hour      timestamptz NOT NULL CHECK (last_hour >= first_hour),
    view           bigint NOT NULL DEFAULT 0,
    scan_qr        bigint NOT NULL DEFAULT 0,
    call           bigint NOT NULL DEFAULT 0,
    email          bigint NOT NULL DEFAULT 0,
    whatsapp       bigint NOT NULL DEFAULT 0,
    download_vcard bigint NOT NULL DEFAULT 0,
    link_click     bigint NOT NULL DEFAULT 0,
    share          bigint NOT NULL DEFAULT 0,
    preview        bigint NOT NULL DEFAULT 0,
    visitors       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (company_id)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON card_running_employee_daily, card_running_employee_latest,
    card_running_company_daily, card_running_company_latest, card_running_hourly,
    card_running_hourly_latest TO callingcard_app;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['card_running_employee_daily', 'card_running_employee_latest',
                             'card_running_company_daily', 'card_running_company_latest',
                             'card_running_hourly', 'card_running_hourly_latest'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I
            USING (company_id = (SELECT nullif(current_setting(''app.company_id'', true), '''')::uuid))
            WITH CHECK (company_id = (SELECT nullif(current_setting(''app.company_id'', true), '''')::uuid))', t);
        EXECUTE format('CREATE POLICY not_for_visitors ON %I AS RESTRICTIVE
            USING ((SELECT current_setting(''app.role'', true)) IS DISTINCT FROM ''public'')', t);
    END LOOP;
END
$$;

-- The running totals of one company, computed again from its rollups. Owner only: this
-- migration fills them for the history so far, and the benchmarks after loading history
-- straight into the rollups. The owner is subject to the forced policies, so it acts as the
-- company's tenant for the transaction.
CREATE FUNCTION analytics_rebuild_running(p_company uuid)
RETURNS void
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    PERFORM set_config('app.role', 'superadmin', true);
    PERFORM set_config('app.company_id', p_company::text, true);
    DELETE FROM card_running_employee_daily WHERE company_id = p_company;
    DELETE FROM card_running_employee_latest WHERE company_id = p_company;
    DELETE FROM card_running_company_daily WHERE company_id = p_company;
    DELETE FROM card_running_company_latest WHERE company_id = p_company;
    DELETE FROM card_running_hourly WHERE company_id = p_company;
    DELETE FROM card_running_hourly_latest WHERE company_id = p_company;

    CREATE TEMP TABLE running_days ON COMMIT DROP AS
    SELECT employee_id, day, sum(view) AS view, sum(scan_qr) AS scan_qr, sum(call) AS call,
           sum(email) AS email, sum(whatsapp) AS whatsapp, sum(download_vcard) AS download_vcard,
           sum(link_click) AS link_click, sum(share) AS share, sum(preview) AS preview,
           sum(visitors) AS visitors
    FROM (SELECT employee_id, day, view, scan_qr, call, email, whatsapp, download_vcard,
                 link_click, share, preview, 0 AS visitors
          FROM card_rollup_employee_daily WHERE company_id = p_company
          UNION ALL
          SELECT card, (hour AT TIME ZONE 'UTC')::date, 0, 0, 0, 0, 0, 0, 0, 0, 0, visitors
          FROM card_rollup_visitors_hourly
          WHERE company_id = p_company AND card <> '00000000-0000-0000-0000-000000000000') d
    GROUP BY 1, 2;
    INSERT INTO card_running_employee_daily (company_id, day, employee_id, view, scan_qr, call,
                                             email, whatsapp, download_vcard, link_click, share,
                                             preview, visitors)
    SELECT p_company, d.day, s.employee_id,
           sum(coalesce(r.view, 0)) OVER w, sum(coalesce(r.scan_qr, 0)) OVER w,
           sum(coalesce(r.call, 0)) OVER w, sum(coalesce(r.email, 0)) OVER w,
           sum(coalesce(r.whatsapp, 0)) OVER w, sum(coalesce(r.download_vcard, 0)) OVER w,
           sum(coalesce(r.link_click, 0)) OVER w, sum(coalesce(r.share, 0)) OVER w,
           sum(coalesce(r.preview, 0)) OVER w, sum(coalesce(r.visitors, 0)) OVER w
    FROM (SELECT employee_id, min(day) AS lo, max(day) AS hi FROM pg_temp.running_days GROUP BY 1) s
    CROSS JOIN LATERAL (SELECT g::date AS day
                        FROM generate_series(s.lo::timestamp, s.hi::timestamp, interval '1 day') g) d
    LEFT JOIN pg_temp.running_days r ON r.employee_id = s.employee_id AND r.day = d.day
    WINDOW w AS (PARTITION BY s.employee_id ORDER BY d.day);
    INSERT INTO card_running_employee_latest (company_id, employee_id, first_day, last_day, view,
                                              scan_qr, call, email, whatsapp, download_vcard,
                                              link_click, share, preview, visitors)
    SELECT p_company, employee_id, min(day), max(day), sum(view), sum(scan_qr), sum(call),
           sum(email), sum(whatsapp), sum(download_vcard), sum(link_click), sum(share), sum(preview),
           sum(visitors)
    FROM pg_temp.running_days GROUP BY 2;
    DROP TABLE pg_temp.running_days;

    INSERT INTO card_running_company_daily (company_id, day, device, region, view, scan_qr, call,
                                            email, whatsapp, download_vcard, link_click, share,
                                            preview)
    SELECT p_company, d.day, s.device, s.region,
           sum(coalesce(r.view, 0)) OVER w, sum(coalesce(r.scan_qr, 0)) OVER w,
           sum(coalesce(r.call, 0)) OVER w, sum(coalesce(r.email, 0)) OVER w,
           sum(coalesce(r.whatsapp, 0)) OVER w, sum(coalesce(r.download_vcard, 0)) OVER w,
           sum(coalesce(r.link_click, 0)) OVER w, sum(coalesce(r.share, 0)) OVER w,
           sum(coalesce(r.preview, 0)) OVER w
    FROM (SELECT device, region, min(day) AS lo, max(day) AS hi FROM card_rollup_company_daily
          WHERE company_id = p_company GROUP BY 1, 2) s
    CROSS JOIN LATERAL (SELECT g::date AS day
                        FROM generate_series(s.lo::timestamp, s.hi::timestamp, interval '1 day') g) d
    LEFT JOIN card_rollup_company_daily r
           ON r.company_id = p_company AND r.device = s.device AND r.region = s.region
          AND r.day = d.day
    WINDOW w AS (PARTITION BY s.device, s.region ORDER BY d.day);
    INSERT INTO card_running_company_latest (company_id, device, region, first_day, last_day, view,
                                             scan_qr, call, email, whatsapp, download_vcard,
                                             link_click, share, preview)
    SELECT p_company, device, region, min(day), max(day), sum(view), sum(scan_qr), sum(call),
           sum(email), sum(whatsapp), sum(download_vcard), sum(link_click), sum(share), sum(preview)
    FROM card_rollup_company_daily WHERE company_id = p_company GROUP BY 2, 3;

    CREATE TEMP TABLE running_hours ON COMMIT DROP AS
    SELECT hour, sum(view) AS view, sum(scan_qr) AS scan_qr, sum(call) AS call,
           sum(email) AS email, sum(whatsapp) AS whatsapp, sum(download_vcard) AS download_vcard,
           sum(link_click) AS link_click, sum(share) AS share, sum(preview) AS preview,
           sum(visitors) AS visitors
    FROM (SELECT hour,
                 coalesce(sum(events) FILTER (WHERE action = 'view'), 0) AS view,
                 coalesce(sum(events) FILTER (WHERE action = 'scan_qr'), 0) AS scan_qr,
                 coalesce(sum(events) FILTER (WHERE action = 'call'), 0) AS call,
                 coalesce(sum(events) FILTER (WHERE action = 'email'), 0) AS email,
                 coalesce(sum(events) FILTER (WHERE action = 'whatsapp'), 0) AS whatsapp,
                 coalesce(sum(events) FILTER (WHERE action = 'download_vcard'), 0) AS download_vcard,
                 coalesce(sum(events) FILTER (WHERE action = 'link_click'), 0) AS link_click,
                 coalesce(sum(events) FILTER (WHERE action = 'share'), 0) AS share,
                 coalesce(sum(events) FILTER (WHERE action = 'preview'), 0) AS preview,
                 0 AS visitors
          FROM card_rollup_action_hourly WHERE company_id = p_company GROUP BY 1
          UNION ALL
          SELECT hour, 0, 0, 0, 0, 0, 0, 0, 0, 0, visitors
          FROM card_rollup_visitors_hourly
          WHERE company_id = p_company AND card = '00000000-0000-0000-0000-000000000000') h
    GROUP BY 1;
    INSERT INTO card_running_hourly (company_id, hour, view, scan_qr, call, email, whatsapp,
                                     download_vcard, link_click, share, preview, visitors)
    SELECT p_company, g.hour,
           sum(coalesce(r.view, 0)) OVER w, sum(coalesce(r.scan_qr, 0)) OVER w,
           sum(coalesce(r.call, 0)) OVER w, sum(coalesce(r.email, 0)) OVER w,
           sum(coalesce(r.whatsapp, 0)) OVER w, sum(coalesce(r.download_vcard, 0)) OVER w,
           sum(coalesce(r.link_click, 0)) OVER w, sum(coalesce(r.share, 0)) OVER w,
           sum(coalesce(r.preview, 0)) OVER w, sum(coalesce(r.visitors, 0)) OVER w
    FROM (SELECT min(hour) AS lo, max(hour) AS hi FROM pg_temp.running_hours) s
    CROSS JOIN LATERAL generate_series(s.lo, s.hi, interval '1 hour') AS g (hour)
    LEFT JOIN pg_temp.running_hours r ON r.hour = g.hour
    WINDOW w AS (ORDER BY g.hour);
    INSERT INTO card_running_hourly_latest (company_id, first_hour, last_hour, view, scan_qr, call,
                                            email, whatsapp, download_vcard, link_click, share,
                                            preview, visitors)
    SELECT p_company, min(hour), max(hour), sum(view), sum(scan_qr), sum(call), sum(email),
           sum(whatsapp), sum(download_vcard), sum(link_click), sum(share), sum(preview),
           sum(visitors)
    FROM pg_temp.running_hours
    HAVING count(*) > 0;
    DROP TABLE pg_temp.running_hours;

    PERFORM set_config('app.company_id', '', true);
    PERFORM set_config('app.role', '', true);
END
$$;
REVOKE ALL ON FUNCTION analytics_rebuild_running(uuid) FROM PUBLIC;

DO $$
DECLARE
    company uuid;
BEGIN
    FOR company IN SELECT id FROM companies LOOP
        PERFORM analytics_rebuild_running(company);
    END LOOP;
END
$$;
