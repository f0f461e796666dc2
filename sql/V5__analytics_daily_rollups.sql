-- Daily rollups for the aggregates whose ranges need no time zone (the leaderboard and the
-- breakdowns by device and region). A range reads daily rows for its whole UTC days and hourly
-- rows only for the hours at its edges, so a year costs 365 rows per employee (or per device and
-- region), not 8,760 per employee and action.
--
-- One row per day and employee (or device and region), with a count per action: the dashboards
-- always want several actions at once, and a wide row keeps a year of a 200-person company at
-- 73,000 rows. A new action is a new column (and a change to the CHECK of card_events anyway).

CREATE TABLE card_rollup_employee_daily (
    company_id     uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    day            date NOT NULL,
    employee_id    uuid NOT NULL,
    view           bigint NOT NULL DEFAULT 0 CHECK (view >= 0),
    scan_qr        bigint NOT NULL DEFAULT 0 CHECK (scan_qr >= 0),
    call           bigint NOT NULL DEFAULT 0 CHECK (call >= 0),
    email          bigint NOT NULL DEFAULT 0 CHECK (email >= 0),
    whatsapp       bigint NOT NULL DEFAULT 0 CHECK (whatsapp >= 0),
    download_vcard bigint NOT NULL DEFAULT 0 CHECK (download_vcard >= 0),
    link_click     bigint NOT NULL DEFAULT 0 CHECK (link_click >= 0),
    share          bigint NOT NULL DEFAULT 0 CHECK (share >= 0),
    preview        bigint NOT NULL DEFAULT 0 CHECK (preview >= 0),
    PRIMARY KEY (company_id, day, employee_id)
);

-- Device and region are '' when unknown, as in card_rollup_company_hourly.
CREATE TABLE card_rollup_company_daily (
    company_id     uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    day            date NOT NULL,
    device         text NOT NULL,
    region         text NOT NULL,
    view           bigint NOT NULL DEFAULT 0 CHECK (view >= 0),
    scan_qr        bigint NOT NULL DEFAULT 0 CHECK (scan_qr >= 0),
    call           bigint NOT NULL DEFAULT 0 CHECK (call >= 0),
    email          bigint NOT NULL DEFAULT 0 CHECK (email >= 0),
    whatsapp       bigint NOT NULL DEFAULT 0 CHECK (whatsapp >= 0),
    download_vcard bigint NOT NULL DEFAULT 0 CHECK (download_vcard >= 0),
    link_click     bigint NOT NULL DEFAULT 0 CHECK (link_click >= 0),
    share          bigint NOT NULL DEFAULT 0 CHECK (share >= 0),
    preview        bigint NOT NULL DEFAULT 0 CHECK (preview >= 0),
    PRIMARY KEY (company_id, day, device, region)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON card_rollup_employee_daily, card_rollup_company_daily
    TO callingcard_app;

ALTER TABLE card_rollup_employee_daily ENABLE ROW LEVEL SECURITY;
ALTER TABLE card_rollup_employee_daily FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON card_rollup_employee_daily
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));
CREATE POLICY not_for_visitors ON card_rollup_employee_daily AS RESTRICTIVE
    USING ((SELECT current_setting('app.role', true)) IS DISTINCT FROM 'public');

ALTER TABLE card_rollup_company_daily ENABLE ROW LEVEL SECURITY;
ALTER TABLE card_rollup_company_daily FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON card_rollup_company_daily
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));
CREATE POLICY not_for_visitors ON card_rollup_company_daily AS RESTRICTIVE
    USING ((SELECT current_setting('app.role', true)) IS DISTINCT FROM 'public');

-- The history so far, from the hourly rollups (kept forever). The owner is subject to the
-- forced policies like everyone else, so this goes company by company, each as its tenant.
DO $$
DECLARE
    company uuid;
BEGIN
    PERFORM set_config('app.role', 'superadmin', true);
    FOR company IN SELECT id FROM companies LOOP
        PERFORM set_config('app.company_id', company::text, true);
        INSERT INTO card_rollup_employee_daily (company_id, day, employee_id, view, scan_qr, call,
                                                email, whatsapp, download_vcard, link_click, share,
                                                preview)
        SELECT company_id, (hour AT TIME ZONE 'UTC')::date, employee_id,
               coalesce(sum(events) FILTER (WHERE action = 'view'), 0),
               coalesce(sum(events) FILTER (WHERE action = 'scan_qr'), 0),
               coalesce(sum(events) FILTER (WHERE action = 'call'), 0),
               coalesce(sum(events) FILTER (WHERE action = 'email'), 0),
               coalesce(sum(events) FILTER (WHERE action = 'whatsapp'), 0),
               coalesce(sum(events) FILTER (WHERE action = 'download_vcard'), 0),
               coalesce(sum(events) FILTER (WHERE action = 'link_click'), 0),
               coalesce(sum(events) FILTER (WHERE action = 'share'), 0),
               coalesce(sum(events) FILTER (WHERE action = 'preview'), 0)
        FROM card_rollup_employee_hourly
        WHERE company_id = company
        GROUP BY 1, 2, 3;
        INSERT INTO card_rollup_company_daily (company_id, day, device, region, view, scan_qr, call,
                                               email, whatsapp, download_vcard, link_click, share,
                                               preview)
        SELECT company_id, (hour AT TIME ZONE 'UTC')::date, device, region,
               coalesce(sum(events) FILTER (WHERE action = 'view'), 0),
               coalesce(sum(events) FILTER (WHERE action = 'scan_qr'), 0),
               coalesce(sum(events) FILTER (WHERE action = 'call'), 0),
               coalesce(sum(events) FILTER (WHERE action = 'email'), 0),
               coalesce(sum(events) FILTER (WHERE action = 'whatsapp'), 0),
               coalesce(sum(events) FILTER (WHERE action = 'download_vcard'), 0),
               coalesce(sum(events) FILTER (WHERE action = 'link_click'), 0),
               coalesce(sum(events) FILTER (WHERE action = 'share'), 0),
               coalesce(sum(events) FILTER (WHERE action = 'preview'), 0)
        FROM card_rollup_company_hourly
        WHERE company_id = company
        GROUP BY 1, 2, 3, 4;
    END LOOP;
    PERFORM set_config('app.company_id', '', true);
    PERFORM set_config('app.role', '', true);
END
$$;
