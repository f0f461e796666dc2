-- The audit trail: who changed what, and every login attempt. Append-only.
--
-- A change through the API writes its event in the same transaction as the change, so an event
-- exists exactly when its change was committed. A login attempt that changes nothing (a wrong
-- password, a throttled one) is written by `audit_login_attempt`, in the company of the account
-- its email names; an email that names no account is only counted per day
-- (`audit_unknown_logins`), never stored.
--
-- Nothing secret is ever written here: no password, hash or token; images appear as their hash.
--
-- There is no foreign key to `companies` on purpose: the trail outlives what it describes (a
-- deleted employee, login, even company) until retention removes it, and no cascade can reach it.
CREATE TABLE audit_events (
    company_id       uuid NOT NULL,
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    -- The clock at the insert, not the transaction's start: events of one transaction keep
    -- their order.
    occurred_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Who: null for an anonymous attempt. The email is filled in from the login itself
    -- (`audit_events_fill_actor`), whatever the insert said.
    actor_user_id    uuid,
    actor_company_id uuid,
    actor_email      text,
    actor_role       text CONSTRAINT audit_events_actor_role_check
                          CHECK (actor_role IN ('superadmin', 'admin', 'employee')),
    -- What: dotted names, `employee.updated`, `auth.login_failed`.
    action           text COLLATE "C" NOT NULL CONSTRAINT audit_events_action_check
                          CHECK (char_length(action) <= 64 AND action ~ '^[a-z][a-z_]*(\.[a-z][a-z_]*)+$'),
    target_type      text COLLATE "C" NOT NULL CONSTRAINT audit_events_target_type_check
                          CHECK (char_length(target_type) <= 32 AND target_type ~ '^[a-z][a-z_]*$'),
    target_id        uuid,
    -- {"field": {"before": …, "after": …}}
    changes          jsonb NOT NULL DEFAULT '{}' CONSTRAINT audit_events_changes_check
                          CHECK (jsonb_typeof(changes) = 'object' AND octet_length(changes::text) <= 262144),
    outcome          text NOT NULL CONSTRAINT audit_events_outcome_check
                          CHECK (outcome IN ('success', 'failure', 'denied')),
    -- Where from.
    request_id       text CONSTRAINT audit_events_request_id_length CHECK (char_length(request_id) <= 200),
    client_address   inet,
    user_agent       text CONSTRAINT audit_events_user_agent_length CHECK (char_length(user_agent) <= 512),
    CONSTRAINT audit_events_actor_check
        CHECK ((actor_user_id IS NULL) = (actor_company_id IS NULL)
               AND (actor_user_id IS NULL) = (actor_role IS NULL)),
    PRIMARY KEY (company_id, id)
);
-- The list, newest first, and its filters: each index is read backwards from the cursor
-- `(occurred_at, id) < (…)`, a range of its last two columns.
CREATE INDEX audit_events_newest ON audit_events (company_id, occurred_at, id);
CREATE INDEX audit_events_actor ON audit_events (company_id, actor_user_id, occurred_at, id)
    WHERE actor_user_id IS NOT NULL;
CREATE INDEX audit_events_target ON audit_events (company_id, target_type, target_id, occurred_at, id);
-- `action` is "C"-collated so that a prefix (`employee.` ≤ action < `employee/`) is a range.
CREATE INDEX audit_events_action ON audit_events (company_id, action, occurred_at, id);
-- Retention, across companies.
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);

-- Attempts on emails that name no account: how many, per UTC day and action, nothing else.
CREATE TABLE audit_unknown_logins (
    day      date NOT NULL,
    action   text NOT NULL,
    attempts bigint NOT NULL,
    PRIMARY KEY (day, action)
);

-- The service role writes events and reads them, through the wall; never changes one.
GRANT SELECT, INSERT ON audit_events TO callingcard_app;
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_events
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));
-- Nothing a public card shows.
CREATE POLICY not_for_visitors ON audit_events AS RESTRICTIVE
    USING ((SELECT current_setting('app.role', true)) IS DISTINCT FROM 'public');

-- No policy: only the functions below reach it.
ALTER TABLE audit_unknown_logins ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_unknown_logins FORCE ROW LEVEL SECURITY;
REVOKE ALL ON audit_unknown_logins FROM PUBLIC;

-- Append-only, for everyone, the table's owner included: no UPDATE ever, no TRUNCATE, and a
-- DELETE only from `audit_purge` (the retention job), which marks its own transaction. (A
-- superuser or the owner can still drop the trigger: that is DDL, and shows in the catalog.)
CREATE FUNCTION audit_events_refuse_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND current_user = 'callingcard_definer'
       AND current_setting('callingcard.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();

-- The actor's email comes from the login, not from whoever inserts: it cannot be made up, and
-- a superadmin acting in another company (whose login that tenant cannot see) is named too.
CREATE FUNCTION audit_events_fill_actor()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.actor_email := (SELECT u.email FROM public.users u
                        WHERE u.company_id = NEW.actor_company_id AND u.id = NEW.actor_user_id);
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_events_actor BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_fill_actor();

-- A login attempt that changed nothing (`auth.login_failed`, `auth.login_throttled`), before any
-- tenant is known: stored in the company of the account `p_email` names, targeting that login,
-- with no actor (nobody proved who they are); for an email with no account only counted. True
-- when it was stored. The typed email is never stored.
CREATE FUNCTION audit_login_attempt(p_email text, p_action text, p_outcome text,
                                    p_request_id text, p_client_address inet, p_user_agent text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_company uuid;
    v_user uuid;
BEGIN
    IF p_action NOT IN ('auth.login_failed', 'auth.login_throttled')
       OR p_outcome NOT IN ('failure', 'denied') THEN
        RAISE EXCEPTION 'not a login attempt: % %', p_action, p_outcome
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT u.company_id, u.id INTO v_company, v_user
    FROM public.users u WHERE lower(u.email) = lower(p_email);
    IF v_user IS NULL THEN
        INSERT INTO public.audit_unknown_logins AS c (day, action, attempts)
        VALUES ((now() AT TIME ZONE 'UTC')::date, p_action, 1)
        ON CONFLICT (day, action) DO UPDATE SET attempts = c.attempts + 1;
        RETURN false;
    END IF;
    INSERT INTO public.audit_events (company_id, action, target_type, target_id, outcome,
                                     request_id, client_address, user_agent)
    VALUES (v_company, p_action, 'user', v_user, p_outcome,
            left(p_request_id, 200), p_client_address, left(p_user_agent, 512));
    RETURN true;
END
$$;

-- Retention: deletes up to `p_batch` events older than `p_retention_days` (at least 30: the
-- service role cannot wipe recent history, whatever it asks), oldest first, and the counts of
-- unknown emails as old; how many events went. The job calls it until fewer than a batch go.
CREATE FUNCTION audit_purge(p_retention_days integer, p_batch integer)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_cutoff timestamptz := now() - make_interval(days => greatest(p_retention_days, 30));
    v_deleted bigint;
BEGIN
    PERFORM set_config('callingcard.audit_purge', 'on', true);
    DELETE FROM public.audit_events e
    WHERE (e.company_id, e.id) IN (SELECT o.company_id, o.id FROM public.audit_events o
                                   WHERE o.occurred_at < v_cutoff
                                   ORDER BY o.occurred_at
                                   LIMIT greatest(p_batch, 1));
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    PERFORM set_config('callingcard.audit_purge', '', true);
    DELETE FROM public.audit_unknown_logins WHERE day < (v_cutoff AT TIME ZONE 'UTC')::date;
    RETURN v_deleted;
END
$$;

GRANT SELECT ON users TO callingcard_definer;
GRANT SELECT, INSERT, DELETE ON audit_events TO callingcard_definer;
GRANT SELECT, INSERT, UPDATE, DELETE ON audit_unknown_logins TO callingcard_definer;
ALTER FUNCTION audit_events_fill_actor() OWNER TO callingcard_definer;
ALTER FUNCTION audit_login_attempt(text, text, text, text, inet, text) OWNER TO callingcard_definer;
ALTER FUNCTION audit_purge(integer, integer) OWNER TO callingcard_definer;
REVOKE ALL ON FUNCTION audit_events_fill_actor(), audit_events_refuse_change(),
    audit_login_attempt(text, text, text, text, inet, text), audit_purge(integer, integer) FROM PUBLIC;
-- A trigger function cannot be called directly; the grant only keeps every SECURITY DEFINER
-- function alike (the catalog test checks that the service role may run each of them).
GRANT EXECUTE ON FUNCTION audit_events_fill_actor(),
    audit_login_attempt(text, text, text, text, inet, text), audit_purge(integer, integer)
    TO callingcard_app;
