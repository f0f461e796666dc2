-- A submitted lead counts in analytics as an action of its own, `lead`: the server records it
-- once the lead is stored (a visitor cannot report one through the tracking endpoint). It is a
-- person's action, shown in the dashboards and the conversion (views → saved contacts → leads),
-- but not an engagement.
--
-- The hourly rollups hold one row per action, so they take it as they are; the daily rollups
-- and the running totals hold a column per action and get one. No event was ever a lead, so
-- every running total of it is 0 and nothing needs filling in. The policies stay as they are.

ALTER TABLE card_events DROP CONSTRAINT card_events_action_check;
ALTER TABLE card_events ADD CONSTRAINT card_events_action_check
    CHECK (action IN ('view', 'scan_qr', 'call', 'email', 'whatsapp', 'download_vcard',
                      'link_click', 'share', 'lead'));

ALTER TABLE card_rollup_employee_daily ADD COLUMN lead bigint NOT NULL DEFAULT 0 CHECK (lead >= 0);
ALTER TABLE card_rollup_company_daily ADD COLUMN lead bigint NOT NULL DEFAULT 0 CHECK (lead >= 0);

ALTER TABLE card_running_employee_daily ADD COLUMN lead bigint NOT NULL DEFAULT 0 CHECK (lead >= 0);
ALTER TABLE card_running_employee_latest ADD COLUMN lead bigint NOT NULL DEFAULT 0 CHECK (lead >= 0);
ALTER TABLE card_running_company_daily ADD COLUMN lead bigint NOT NULL DEFAULT 0 CHECK (lead >= 0);
ALTER TABLE card_running_company_latest ADD COLUMN lead bigint NOT NULL DEFAULT 0 CHECK (lead >= 0);
ALTER TABLE card_running_hourly ADD COLUMN lead bigint NOT NULL DEFAULT 0 CHECK (lead >= 0);
ALTER TABLE card_running_hourly_latest ADD COLUMN lead bigint NOT NULL DEFAULT 0 CHECK (lead >= 0);

-- As in V18, with `lead` carried through.
CREATE OR REPLACE FUNCTION analytics_rebuild_running(p_company uuid)
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
           sum(link_click) AS link_click, sum(share) AS share, sum(lead) AS lead,
           sum(preview) AS preview,
           sum(visitors) AS visitors
    FROM (SELECT employee_id, day, view, scan_qr, call, email, whatsapp, download_vcard,
                 link_click, share, lead, preview, 0 AS visitors
          FROM card_rollup_employee_daily WHERE company_id = p_company
          UNION ALL
          SELECT card, (hour AT TIME ZONE 'UTC')::date, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, visitors
          FROM card_rollup_visitors_hourly
          WHERE company_id = p_company AND card <> '00000000-0000-0000-0000-000000000000') d
    GROUP BY 1, 2;
    INSERT INTO card_running_employee_daily (company_id, day, employee_id, view, scan_qr, call,
                                             email, whatsapp, download_vcard, link_click, share,
                                             lead, preview, visitors)
    SELECT p_company, d.day, s.employee_id,
           sum(coalesce(r.view, 0)) OVER w, sum(coalesce(r.scan_qr, 0)) OVER w,
           sum(coalesce(r.call, 0)) OVER w, sum(coalesce(r.email, 0)) OVER w,
           sum(coalesce(r.whatsapp, 0)) OVER w, sum(coalesce(r.download_vcard, 0)) OVER w,
           sum(coalesce(r.link_click, 0)) OVER w, sum(coalesce(r.share, 0)) OVER w,
           sum(coalesce(r.lead, 0)) OVER w, sum(coalesce(r.preview, 0)) OVER w,
           sum(coalesce(r.visitors, 0)) OVER w
    FROM (SELECT employee_id, min(day) AS lo, max(day) AS hi FROM pg_temp.running_days GROUP BY 1) s
    CROSS JOIN LATERAL (SELECT g::date AS day
                        FROM generate_series(s.lo::timestamp, s.hi::timestamp, interval '1 day') g) d
    LEFT JOIN pg_temp.running_days r ON r.employee_id = s.employee_id AND r.day = d.day
    WINDOW w AS (PARTITION BY s.employee_id ORDER BY d.day);
    INSERT INTO card_running_employee_latest (company_id, employee_id, first_day, last_day, view,
                                              scan_qr, call, email, whatsapp, download_vcard,
                                              link_click, share, lead, preview, visitors)
    SELECT p_company, employee_id, min(day), max(day), sum(view), sum(scan_qr), sum(call),
           sum(email), sum(whatsapp), sum(download_vcard), sum(link_click), sum(share), sum(lead),
           sum(preview), sum(visitors)
    FROM pg_temp.running_days GROUP BY 2;
    DROP TABLE pg_temp.running_days;

    INSERT INTO card_running_company_daily (company_id, day, device, region, view, scan_qr, call,
                                            email, whatsapp, download_vcard, link_click, share,
                                            lead, preview)
    SELECT p_company, d.day, s.device, s.region,
           sum(coalesce(r.view, 0)) OVER w, sum(coalesce(r.scan_qr, 0)) OVER w,
           sum(coalesce(r.call, 0)) OVER w, sum(coalesce(r.email, 0)) OVER w,
           sum(coalesce(r.whatsapp, 0)) OVER w, sum(coalesce(r.download_vcard, 0)) OVER w,
           sum(coalesce(r.link_click, 0)) OVER w, sum(coalesce(r.share, 0)) OVER w,
           sum(coalesce(r.lead, 0)) OVER w, sum(coalesce(r.preview, 0)) OVER w
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
                                             link_click, share, lead, preview)
    SELECT p_company, device, region, min(day), max(day), sum(view), sum(scan_qr), sum(call),
           sum(email), sum(whatsapp), sum(download_vcard), sum(link_click), sum(share), sum(lead),
           sum(preview)
    FROM card_rollup_company_daily WHERE company_id = p_company GROUP BY 2, 3;

    CREATE TEMP TABLE running_hours ON COMMIT DROP AS
    SELECT hour, sum(view) AS view, sum(scan_qr) AS scan_qr, sum(call) AS call,
           sum(email) AS email, sum(whatsapp) AS whatsapp, sum(download_vcard) AS download_vcard,
           sum(link_click) AS link_click, sum(share) AS share, sum(lead) AS lead,
           sum(preview) AS preview,
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
                 coalesce(sum(events) FILTER (WHERE action = 'lead'), 0) AS lead,
                 coalesce(sum(events) FILTER (WHERE action = 'preview'), 0) AS preview,
                 0 AS visitors
          FROM card_rollup_action_hourly WHERE company_id = p_company GROUP BY 1
          UNION ALL
          SELECT hour, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, visitors
          FROM card_rollup_visitors_hourly
          WHERE company_id = p_company AND card = '00000000-0000-0000-0000-000000000000') h
    GROUP BY 1;
    INSERT INTO card_running_hourly (company_id, hour, view, scan_qr, call, email, whatsapp,
                                     download_vcard, link_click, share, lead, preview, visitors)
    SELECT p_company, g.hour,
           sum(coalesce(r.view, 0)) OVER w, sum(coalesce(r.scan_qr, 0)) OVER w,
           sum(coalesce(r.call, 0)) OVER w, sum(coalesce(r.email, 0)) OVER w,
           sum(coalesce(r.whatsapp, 0)) OVER w, sum(coalesce(r.download_vcard, 0)) OVER w,
           sum(coalesce(r.link_click, 0)) OVER w, sum(coalesce(r.share, 0)) OVER w,
           sum(coalesce(r.lead, 0)) OVER w, sum(coalesce(r.preview, 0)) OVER w,
           sum(coalesce(r.visitors, 0)) OVER w
    FROM (SELECT min(hour) AS lo, max(hour) AS hi FROM pg_temp.running_hours) s
    CROSS JOIN LATERAL generate_series(s.lo, s.hi, interval '1 hour') AS g (hour)
    LEFT JOIN pg_temp.running_hours r ON r.hour = g.hour
    WINDOW w AS (ORDER BY g.hour);
    INSERT INTO card_running_hourly_latest (company_id, first_hour, last_hour, view, scan_qr, call,
                                            email, whatsapp, download_vcard, link_click, share,
                                            lead, preview, visitors)
    SELECT p_company, min(hour), max(hour), sum(view), sum(scan_qr), sum(call), sum(email),
           sum(whatsapp), sum(download_vcard), sum(link_click), sum(share), sum(lead),
           sum(preview), sum(visitors)
    FROM pg_temp.running_hours
    HAVING count(*) > 0;
    DROP TABLE pg_temp.running_hours;

    PERFORM set_config('app.company_id', '', true);
    PERFORM set_config('app.role', '', true);
END
$$;
REVOKE ALL ON FUNCTION analytics_rebuild_running(uuid) FROM PUBLIC;
