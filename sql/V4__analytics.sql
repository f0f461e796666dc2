-- Analytics: what people do on a card. Raw events for the detail views and exports, kept as long
-- as the company's plan says; hourly rollups, maintained in the same transaction as the events,
-- for the dashboards, whose cost then grows with the hours asked for, not the events stored.

-- How long a plan keeps raw events. Rollups are kept whatever the plan.
ALTER TABLE plans ADD COLUMN retention text NOT NULL DEFAULT 'd30'
    CONSTRAINT plans_retention_check CHECK (retention IN ('d30', 'd365', 'forever'));
UPDATE plans SET retention = CASE plan WHEN 'free' THEN 'd30'
                                       WHEN 'professional' THEN 'd365'
                                       ELSE 'forever' END;

-- Raw events, partitioned by retention class and then by time, so that retention drops whole
-- partitions (daily ones for 30 days of detail, monthly ones for a year) instead of deleting
-- rows. A company changing plans has its events moved to the new class (see the API).
-- No foreign key to employees: a deleted employee's history stays in the company's numbers.
CREATE TABLE card_events (
    company_id  uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    retention   text NOT NULL,
    occurred_at timestamptz NOT NULL,
    id          uuid NOT NULL,
    employee_id uuid NOT NULL,
    action      text NOT NULL CONSTRAINT card_events_action_check
                CHECK (action IN ('view', 'scan_qr', 'call', 'email', 'whatsapp', 'download_vcard',
                                  'link_click', 'share')),
    link        text CONSTRAINT card_events_link_check CHECK (char_length(link) BETWEEN 1 AND 100),
    device      text CONSTRAINT card_events_device_check CHECK (device IN ('mobile', 'tablet', 'desktop')),
    region      text CONSTRAINT card_events_region_check CHECK (char_length(region) BETWEEN 1 AND 64),
    -- A keyed hash of the visitor's network and browser that changes every day: enough to count
    -- unique visitors, never an address or anything that follows a person.
    visitor     text CONSTRAINT card_events_visitor_check CHECK (visitor ~ '^[0-9a-f]{32}$'),
    PRIMARY KEY (company_id, retention, occurred_at, id)
) PARTITION BY LIST (retention);
CREATE INDEX card_events_company_time_idx ON card_events (company_id, occurred_at DESC, id DESC);
CREATE INDEX card_events_employee_time_idx ON card_events (company_id, employee_id, occurred_at DESC, id DESC);

CREATE TABLE card_events_d30 PARTITION OF card_events FOR VALUES IN ('d30')
    PARTITION BY RANGE (occurred_at);
CREATE TABLE card_events_d365 PARTITION OF card_events FOR VALUES IN ('d365')
    PARTITION BY RANGE (occurred_at);
CREATE TABLE card_events_forever PARTITION OF card_events FOR VALUES IN ('forever')
    PARTITION BY RANGE (occurred_at);
-- Catch what falls outside the partitions made so far (maintenance late, or a plan change moving
-- old events); maintenance empties them of what is past retention.
CREATE TABLE card_events_d30_default PARTITION OF card_events_d30 DEFAULT;
CREATE TABLE card_events_d365_default PARTITION OF card_events_d365 DEFAULT;
CREATE TABLE card_events_forever_default PARTITION OF card_events_forever DEFAULT;

-- Hourly counts per employee and action: the employee dashboards, the leaderboard, conversion.
-- Link-preview fetchers and crawlers are counted here as action 'preview', and nowhere else.
CREATE TABLE card_rollup_employee_hourly (
    company_id  uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    hour        timestamptz NOT NULL CONSTRAINT card_rollup_employee_hour_check CHECK (hour = date_trunc('hour', hour, 'UTC')),
    employee_id uuid NOT NULL,
    action      text NOT NULL,
    events      bigint NOT NULL CHECK (events > 0),
    PRIMARY KEY (company_id, hour, employee_id, action)
);
CREATE INDEX card_rollup_employee_hourly_employee_idx
    ON card_rollup_employee_hourly (company_id, employee_id, hour);

-- Hourly counts per action, device and region ('' when unknown): the company dashboards.
CREATE TABLE card_rollup_company_hourly (
    company_id uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    hour       timestamptz NOT NULL CONSTRAINT card_rollup_company_hour_check CHECK (hour = date_trunc('hour', hour, 'UTC')),
    action     text NOT NULL,
    device     text NOT NULL,
    region     text NOT NULL,
    events     bigint NOT NULL CHECK (events > 0),
    PRIMARY KEY (company_id, hour, action, device, region)
);

-- Hourly counts per action alone: company summaries and time series read a few rows an hour,
-- however many employees, devices and regions there are.
CREATE TABLE card_rollup_action_hourly (
    company_id uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    hour       timestamptz NOT NULL CONSTRAINT card_rollup_action_hour_check CHECK (hour = date_trunc('hour', hour, 'UTC')),
    action     text NOT NULL,
    events     bigint NOT NULL CHECK (events > 0),
    PRIMARY KEY (company_id, hour, action)
);

-- Unique visitors. A visitor id lives one UTC day (see the collector), so each id is recorded once
-- per day and card (and once for the whole company, card = the nil uuid), in the hour it was
-- first seen. Dashboards then count unique visitors by summing first sightings: a year costs a
-- row per hour, not a row per visitor. Only today's ids matter for that, so maintenance prunes
-- older days.
CREATE TABLE card_visitor_days (
    company_id uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    day        date NOT NULL,
    card       uuid NOT NULL,
    visitor    text NOT NULL CONSTRAINT card_visitor_days_visitor_check CHECK (visitor ~ '^[0-9a-f]{32}$'),
    first_hour timestamptz NOT NULL,
    PRIMARY KEY (company_id, day, card, visitor)
);

CREATE TABLE card_rollup_visitors_hourly (
    company_id uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    hour       timestamptz NOT NULL CONSTRAINT card_rollup_visitors_hour_check CHECK (hour = date_trunc('hour', hour, 'UTC')),
    card       uuid NOT NULL,
    visitors   bigint NOT NULL CHECK (visitors > 0),
    PRIMARY KEY (company_id, card, hour)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON card_events, card_rollup_employee_hourly,
    card_rollup_company_hourly, card_rollup_action_hourly, card_visitor_days,
    card_rollup_visitors_hourly TO callingcard_app;

ALTER TABLE card_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE card_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON card_events
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));

ALTER TABLE card_rollup_employee_hourly ENABLE ROW LEVEL SECURITY;
ALTER TABLE card_rollup_employee_hourly FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON card_rollup_employee_hourly
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));

ALTER TABLE card_rollup_company_hourly ENABLE ROW LEVEL SECURITY;
ALTER TABLE card_rollup_company_hourly FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON card_rollup_company_hourly
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));

ALTER TABLE card_rollup_action_hourly ENABLE ROW LEVEL SECURITY;
ALTER TABLE card_rollup_action_hourly FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON card_rollup_action_hourly
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));

ALTER TABLE card_visitor_days ENABLE ROW LEVEL SECURITY;
ALTER TABLE card_visitor_days FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON card_visitor_days
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));

ALTER TABLE card_rollup_visitors_hourly ENABLE ROW LEVEL SECURITY;
ALTER TABLE card_rollup_visitors_hourly FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON card_rollup_visitors_hourly
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));

-- Visitors of public cards see no analytics at all.
CREATE POLICY not_for_visitors ON card_events AS RESTRICTIVE
    USING ((SELECT current_setting('app.role', true)) IS DISTINCT FROM 'public');
CREATE POLICY not_for_visitors ON card_rollup_employee_hourly AS RESTRICTIVE
    USING ((SELECT current_setting('app.role', true)) IS DISTINCT FROM 'public');
CREATE POLICY not_for_visitors ON card_rollup_company_hourly AS RESTRICTIVE
    USING ((SELECT current_setting('app.role', true)) IS DISTINCT FROM 'public');
CREATE POLICY not_for_visitors ON card_rollup_action_hourly AS RESTRICTIVE
    USING ((SELECT current_setting('app.role', true)) IS DISTINCT FROM 'public');
CREATE POLICY not_for_visitors ON card_visitor_days AS RESTRICTIVE
    USING ((SELECT current_setting('app.role', true)) IS DISTINCT FROM 'public');
CREATE POLICY not_for_visitors ON card_rollup_visitors_hourly AS RESTRICTIVE
    USING ((SELECT current_setting('app.role', true)) IS DISTINCT FROM 'public');

-- One partition, unless it exists. When the default partition already holds events of that range
-- (maintenance was late), they are moved into the new partition.
-- Every name is schema-qualified: this also runs inside analytics_maintain() (SECURITY DEFINER)
-- for the service role, whose temporary tables are on the search_path (pg_temp), and a temporary
-- table named like a partition must neither pass for it nor stand in for it.
CREATE FUNCTION analytics_create_partition(p_parent text, p_name text, p_from timestamptz, p_to timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    IF to_regclass(format('public.%I', p_name)) IS NOT NULL THEN
        RETURN;
    END IF;
    -- Creating the partition locks the parent anyway; locking it before the move keeps a
    -- concurrent insert from putting rows of this range back into the default partition, which
    -- would make the CREATE below fail. Someone may have created the partition meanwhile.
    EXECUTE format('LOCK TABLE public.%I IN ACCESS EXCLUSIVE MODE', p_parent);
    IF to_regclass(format('public.%I', p_name)) IS NOT NULL THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE TEMP TABLE moved_events ON COMMIT DROP AS
                    WITH moved AS (DELETE FROM public.%I WHERE occurred_at >= %L AND occurred_at < %L RETURNING *)
                    SELECT * FROM moved', p_parent || '_default', p_from, p_to);
    EXECUTE format('CREATE TABLE public.%I PARTITION OF public.%I FOR VALUES FROM (%L) TO (%L)',
                   p_name, p_parent, p_from, p_to);
    EXECUTE format('INSERT INTO public.%I SELECT * FROM pg_temp.moved_events', p_name);
    DROP TABLE pg_temp.moved_events;
END
$$;
REVOKE ALL ON FUNCTION analytics_create_partition(text, text, timestamptz, timestamptz) FROM PUBLIC;

-- Partitions of [p_from, p_to): daily for 'd30', monthly for the others. Owner only (tests and
-- the benchmark load history with it); the service calls analytics_maintain().
CREATE FUNCTION analytics_ensure_partitions(p_from timestamptz, p_to timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    d date;
BEGIN
    d := (p_from AT TIME ZONE 'UTC')::date;
    WHILE d < (p_to AT TIME ZONE 'UTC')::date + 1 LOOP
        PERFORM analytics_create_partition('card_events_d30', 'card_events_d30_p' || to_char(d, 'YYYYMMDD'),
                                           d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
        d := d + 1;
    END LOOP;
    d := date_trunc('month', p_from AT TIME ZONE 'UTC')::date;
    WHILE d < (p_to AT TIME ZONE 'UTC')::date + 1 LOOP
        PERFORM analytics_create_partition('card_events_d365', 'card_events_d365_p' || to_char(d, 'YYYYMM'),
                                           d::timestamp AT TIME ZONE 'UTC', (d + interval '1 month')::timestamp AT TIME ZONE 'UTC');
        PERFORM analytics_create_partition('card_events_forever', 'card_events_forever_p' || to_char(d, 'YYYYMM'),
                                           d::timestamp AT TIME ZONE 'UTC', (d + interval '1 month')::timestamp AT TIME ZONE 'UTC');
        d := (d + interval '1 month')::date;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION analytics_ensure_partitions(timestamptz, timestamptz) FROM PUBLIC;

-- What the service runs at start and every hour: partitions for the coming week, and retention.
-- SECURITY DEFINER (owned by the schema owner, which owns the tables), with no parameters, so the
-- service role cannot use it to drop anything but what retention says.
CREATE FUNCTION analytics_maintain()
RETURNS TABLE (dropped_partitions integer, purged_events bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    part record;
    upper_bound timestamptz;
    n_dropped integer := 0;
    n_purged bigint := 0;
    purged bigint;
BEGIN
    -- One maintenance at a time, across instances.
    IF NOT pg_try_advisory_xact_lock(hashtext('callingcard.analytics_maintain')) THEN
        RETURN QUERY SELECT 0, 0::bigint;
        RETURN;
    END IF;
    PERFORM analytics_ensure_partitions(now() - interval '1 day', now() + interval '7 days');
    -- The parents by OID and the partitions by schema-qualified name, never by bare name: the
    -- caller's temporary tables are on the search_path, and a temporary partitioned table named
    -- card_events_d30 with a child named like any public table (card_rollup_employee_hourly, users...)
    -- would otherwise have that public table dropped here.
    FOR part IN
        SELECT n.nspname, c.relname, i.inhparent = 'public.card_events_d30'::regclass AS daily,
               pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE i.inhparent IN ('public.card_events_d30'::regclass, 'public.card_events_d365'::regclass)
          AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
    LOOP
        upper_bound := substring(part.bound FROM 'TO \(''([^'']+)''\)')::timestamptz;
        IF (part.daily AND upper_bound <= now() - interval '30 days')
           OR (NOT part.daily AND upper_bound <= now() - interval '365 days') THEN
            EXECUTE format('DROP TABLE %I.%I', part.nspname, part.relname);
            n_dropped := n_dropped + 1;
        END IF;
    END LOOP;
    DELETE FROM public.card_events_d30_default WHERE occurred_at < now() - interval '30 days';
    GET DIAGNOSTICS purged = ROW_COUNT;
    n_purged := n_purged + purged;
    DELETE FROM public.card_events_d365_default WHERE occurred_at < now() - interval '365 days';
    GET DIAGNOSTICS purged = ROW_COUNT;
    n_purged := n_purged + purged;
    -- Visitor ids of past days can no longer be seen again (they rotate daily).
    DELETE FROM public.card_visitor_days WHERE day < (now() AT TIME ZONE 'UTC')::date - 1;
    RETURN QUERY SELECT n_dropped, n_purged;
END
$$;
REVOKE ALL ON FUNCTION analytics_maintain() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION analytics_maintain() TO callingcard_app;

-- Partitions around the time of migration, so events can be stored at once.
SELECT analytics_ensure_partitions(now() - interval '1 day', now() + interval '7 days');
