-- Webhooks: a company's endpoints, told of its events by signed HTTP POSTs. An event is queued as
-- one delivery per subscribed endpoint in the same transaction as the change that causes it
-- (the transactional outbox), and the webhook worker sends it, with retries, at least once.

-- The events an endpoint may subscribe to (`ping` is only ever sent by the test endpoint).
CREATE TABLE webhooks (
    company_id uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    url text NOT NULL CHECK (length(url) BETWEEN 8 AND 2048),
    events text[] NOT NULL CHECK (
        cardinality(events) BETWEEN 1 AND 4
        AND events <@ ARRAY['lead.created', 'employee.created', 'employee.updated',
                            'employee.deleted']::text[]),
    description text CHECK (length(description) <= 500),
    -- The HMAC-SHA256 signing key. Signing needs the key itself (a hash of it cannot sign), so
    -- it is stored as it was generated; but the service role is granted no SELECT on this column
    -- (see the grants below): no tenant query, whatever it says, can read it back. The API
    -- shows it once, from the value it generated; only the worker's `webhook_claim` (SECURITY
    -- DEFINER) returns it, with a delivery to sign.
    secret text NOT NULL CHECK (length(secret) BETWEEN 32 AND 128),
    enabled boolean NOT NULL DEFAULT true,
    -- Why it is off: `failing` (the worker, after sustained failure) or `admin` (PUT).
    disabled_reason text CHECK (disabled_reason IN ('failing', 'admin')),
    disabled_at timestamptz,
    -- Failure tracking: the first failed attempt since the last delivered one, how many attempts
    -- failed in a row, and when one last succeeded. Pings count for none of them.
    failing_since timestamptz,
    consecutive_failures integer NOT NULL DEFAULT 0,
    last_success_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, id),
    CHECK (enabled = (disabled_reason IS NULL))
);

-- One event for one endpoint. Its `id` is the `X-CallingCard-Delivery` header, the same on every
-- retry, so a receiver can drop a delivery it has already processed.
CREATE TABLE webhook_deliveries (
    company_id uuid NOT NULL,
    id uuid NOT NULL,
    webhook_id uuid NOT NULL,
    -- The event's id (the body's `id`): the same for every endpoint told of it.
    event_id uuid NOT NULL,
    event text NOT NULL CHECK (event IN ('lead.created', 'employee.created', 'employee.updated',
                                         'employee.deleted', 'ping')),
    -- What the event is about (an employee, a lead): a GDPR erasure deletes its deliveries.
    subject_id uuid,
    -- The body's `data`; dropped once delivered or given up (it may hold personal data).
    payload jsonb,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    -- The retries stop 24 hours (WEBHOOK_RETRY_WINDOW) after this.
    first_attempt_at timestamptz,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- A worker that claimed the delivery holds it until then; past it, another may take it.
    locked_until timestamptz,
    -- That worker's claim: one whose lease ran out cannot record its attempt afterwards.
    claim uuid,
    finished_at timestamptz,
    last_error text,
    PRIMARY KEY (company_id, id),
    FOREIGN KEY (company_id, webhook_id) REFERENCES webhooks (company_id, id) ON DELETE CASCADE,
    CHECK (state <> 'pending' OR payload IS NOT NULL)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_of_webhook
    ON webhook_deliveries (company_id, webhook_id, created_at DESC);
CREATE INDEX webhook_deliveries_subject ON webhook_deliveries (company_id, subject_id)
    WHERE subject_id IS NOT NULL;
-- The deliveries on their way (claimed), per endpoint: what `webhook_claim` counts.
CREATE INDEX webhook_deliveries_claimed ON webhook_deliveries (company_id, webhook_id)
    WHERE state = 'pending' AND locked_until IS NOT NULL;

-- Every attempt of a delivery, for the admins' view of what happened.
CREATE TABLE webhook_attempts (
    company_id uuid NOT NULL,
    delivery_id uuid NOT NULL,
    attempt integer NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT now(),
    outcome text NOT NULL CHECK (outcome IN ('delivered', 'failed')),
    -- The receiver's HTTP status, when it answered.
    response_code integer,
    latency_ms integer NOT NULL,
    error text CHECK (length(error) <= 1000),
    PRIMARY KEY (company_id, delivery_id, attempt),
    FOREIGN KEY (company_id, delivery_id) REFERENCES webhook_deliveries (company_id, id)
        ON DELETE CASCADE
);

-- The service role reads every column but the secret; it may set the secret only on INSERT.
-- (`company_id` may be updated so that the wall, not a missing grant, is what refuses moving an
-- endpoint to another company.)
GRANT SELECT (company_id, id, url, events, description, enabled, disabled_reason, disabled_at,
              failing_since, consecutive_failures, last_success_at, created_at, updated_at)
    ON webhooks TO callingcard_app;
GRANT INSERT, DELETE ON webhooks TO callingcard_app;
GRANT UPDATE (company_id, url, events, description, enabled, disabled_reason, disabled_at, failing_since,
              consecutive_failures, updated_at)
    ON webhooks TO callingcard_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_deliveries, webhook_attempts TO callingcard_app;

ALTER TABLE webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhooks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhooks
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_deliveries
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));
ALTER TABLE webhook_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_attempts
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));

-- Nothing a card shows: visitors of the public cards see none of it.
CREATE POLICY not_for_visitors ON webhooks AS RESTRICTIVE
    USING ((SELECT current_setting('app.role', true)) IS DISTINCT FROM 'public');
CREATE POLICY not_for_visitors ON webhook_deliveries AS RESTRICTIVE
    USING ((SELECT current_setting('app.role', true)) IS DISTINCT FROM 'public');
CREATE POLICY not_for_visitors ON webhook_attempts AS RESTRICTIVE
    USING ((SELECT current_setting('app.role', true)) IS DISTINCT FROM 'public');

-- Every new delivery wakes the workers (on COMMIT; never for a ROLLBACK).
CREATE FUNCTION webhook_deliveries_notify() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('webhook_deliveries', 'queued');
    RETURN NULL;
END
$$;
CREATE TRIGGER webhook_deliveries_queued AFTER INSERT ON webhook_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_deliveries_notify();

-- The worker belongs to no company: it reaches deliveries only through these functions, owned
-- by callingcard_definer (which bypasses row-level security).
GRANT SELECT, UPDATE ON webhooks TO callingcard_definer;
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_deliveries, webhook_attempts TO callingcard_definer;

-- Takes up to `p_limit` due deliveries not held by another worker, holding them for
-- `p_lease_seconds` under a new claim, with the endpoint's URL and secret. SKIP LOCKED: two
-- workers claiming at once take different deliveries; the lease: a worker that died mid-send
-- gives its deliveries back when it runs out. A disabled endpoint's deliveries wait (pings
-- excepted: an admin may test an endpoint before turning it on again). No endpoint gets more
-- than `p_per_webhook` on their way at once (a claim counts those of every worker): a slow or
-- hanging receiver holds that many of a worker's slots at most, never everyone's.
CREATE FUNCTION webhook_claim(p_limit integer, p_per_webhook integer,
                              p_lease_seconds double precision)
RETURNS TABLE (company_id uuid, id uuid, webhook_id uuid, event_id uuid, event text,
               payload jsonb, created_at timestamptz, attempts integer,
               first_attempt_at timestamptz, claim uuid, url text, secret text)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH candidates AS (
        SELECT d.company_id, d.id, d.webhook_id, d.next_attempt_at,
               (SELECT count(*) FROM public.webhook_deliveries x
                WHERE x.company_id = d.company_id AND x.webhook_id = d.webhook_id
                  AND x.state = 'pending' AND x.locked_until IS NOT NULL
                  AND x.locked_until > now()) AS on_their_way
        FROM public.webhook_deliveries d
        JOIN public.webhooks w ON w.company_id = d.company_id AND w.id = d.webhook_id
        WHERE d.state = 'pending' AND d.next_attempt_at <= now()
          AND (d.locked_until IS NULL OR d.locked_until <= now())
          AND (w.enabled OR d.event = 'ping')
          -- Endpoints at their share already are passed over before the limit, so that their
          -- backlog cannot fill a claim.
          AND (SELECT count(*) FROM public.webhook_deliveries x
               WHERE x.company_id = d.company_id AND x.webhook_id = d.webhook_id
                 AND x.state = 'pending' AND x.locked_until IS NOT NULL
                 AND x.locked_until > now()) < p_per_webhook
        ORDER BY d.next_attempt_at
        LIMIT p_limit * 4
        FOR UPDATE OF d SKIP LOCKED
    ), due AS (
        SELECT c.company_id, c.id
        FROM (SELECT c.*, row_number() OVER (PARTITION BY c.company_id, c.webhook_id
                                             ORDER BY c.next_attempt_at) AS n
              FROM candidates c) c
        WHERE c.n + c.on_their_way <= p_per_webhook
        ORDER BY c.next_attempt_at
        LIMIT p_limit
    ), claimed AS (
        UPDATE public.webhook_deliveries d
        SET locked_until = now() + make_interval(secs => p_lease_seconds),
            attempts = d.attempts + 1,
            first_attempt_at = coalesce(d.first_attempt_at, now()),
            claim = gen_random_uuid()
        FROM due
        WHERE d.company_id = due.company_id AND d.id = due.id
        RETURNING d.company_id, d.id, d.webhook_id, d.event_id, d.event, d.payload, d.created_at,
                  d.attempts, d.first_attempt_at, d.claim
    )
    SELECT c.company_id, c.id, c.webhook_id, c.event_id, c.event, c.payload, c.created_at,
           c.attempts, c.first_attempt_at, c.claim, w.url, w.secret
    FROM claimed c
    JOIN public.webhooks w ON w.company_id = c.company_id AND w.id = c.webhook_id
$$;

-- Records the attempt of claim `p_claim`: its log line, the delivery's state (delivered; due
-- again in `p_retry_seconds`; or, when that is NULL, given up) and the endpoint's failure
-- tracking. An endpoint is disabled when one of its deliveries is given up and no delivery to it
-- succeeded since that delivery's first attempt: every delivery has failed for the whole retry
-- window (24 hours). `disabled` says it happened now, so its admins are told once.
-- No row: the claim was lost (its lease ran out and another worker took the delivery).
CREATE FUNCTION webhook_attempted(p_company_id uuid, p_id uuid, p_claim uuid,
                                  p_delivered boolean, p_response_code integer,
                                  p_latency_ms integer, p_error text,
                                  p_retry_seconds double precision)
RETURNS TABLE (state text, disabled boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_delivery public.webhook_deliveries;
    v_state text;
    v_disabled boolean := false;
BEGIN
    v_state := CASE WHEN p_delivered THEN 'delivered'
                    WHEN p_retry_seconds IS NULL THEN 'failed'
                    ELSE 'pending' END;
    UPDATE public.webhook_deliveries d
    SET state = v_state,
        locked_until = NULL,
        last_error = CASE WHEN p_delivered THEN NULL ELSE left(p_error, 1000) END,
        next_attempt_at = CASE WHEN v_state = 'pending'
                               THEN now() + make_interval(secs => p_retry_seconds)
                               ELSE d.next_attempt_at END,
        finished_at = CASE WHEN v_state = 'pending' THEN NULL ELSE now() END,
        payload = CASE WHEN v_state = 'pending' THEN d.payload END
    WHERE d.company_id = p_company_id AND d.id = p_id AND d.claim = p_claim
      AND d.state = 'pending'
    RETURNING d.* INTO v_delivery;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    INSERT INTO public.webhook_attempts (company_id, delivery_id, attempt, outcome,
                                         response_code, latency_ms, error)
    VALUES (p_company_id, p_id, v_delivery.attempts,
            CASE WHEN p_delivered THEN 'delivered' ELSE 'failed' END,
            p_response_code, greatest(p_latency_ms, 0), left(p_error, 1000))
    ON CONFLICT DO NOTHING;
    IF v_delivery.event <> 'ping' THEN
        IF p_delivered THEN
            UPDATE public.webhooks w
            SET failing_since = NULL, consecutive_failures = 0, last_success_at = now()
            WHERE w.company_id = p_company_id AND w.id = v_delivery.webhook_id;
        ELSE
            UPDATE public.webhooks w
            SET failing_since = coalesce(w.failing_since, now()),
                consecutive_failures = w.consecutive_failures + 1
            WHERE w.company_id = p_company_id AND w.id = v_delivery.webhook_id;
            IF v_state = 'failed' THEN
                UPDATE public.webhooks w
                SET enabled = false, disabled_reason = 'failing', disabled_at = now(),
                    updated_at = now()
                WHERE w.company_id = p_company_id AND w.id = v_delivery.webhook_id AND w.enabled
                  AND (w.last_success_at IS NULL
                       OR w.last_success_at < v_delivery.first_attempt_at);
                v_disabled := FOUND;
            END IF;
        END IF;
    END IF;
    RETURN QUERY SELECT v_state, v_disabled;
END
$$;

-- Seconds until the next delivery falls due (a retry, or a lease running out); NULL: none is
-- waiting. The worker sleeps that long unless a notification wakes it first.
CREATE FUNCTION webhook_next_due()
RETURNS double precision
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT greatest(0, extract(epoch FROM min(greatest(d.next_attempt_at, coalesce(d.locked_until, d.next_attempt_at))) - now()))::double precision
    FROM public.webhook_deliveries d
    JOIN public.webhooks w ON w.company_id = d.company_id AND w.id = d.webhook_id
    WHERE d.state = 'pending' AND (w.enabled OR d.event = 'ping')
$$;

-- Forgets deliveries (and their attempts) finished, or created, more than `p_keep_seconds` ago:
-- the latter are those of an endpoint that stayed disabled. How many.
CREATE FUNCTION webhook_forget(p_keep_seconds double precision)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    DELETE FROM public.webhook_deliveries d
    WHERE coalesce(d.finished_at, d.created_at) < now() - make_interval(secs => p_keep_seconds);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END
$$;

ALTER FUNCTION webhook_claim(integer, integer, double precision) OWNER TO callingcard_definer;
ALTER FUNCTION webhook_attempted(uuid, uuid, uuid, boolean, integer, integer, text,
                                 double precision) OWNER TO callingcard_definer;
ALTER FUNCTION webhook_next_due() OWNER TO callingcard_definer;
ALTER FUNCTION webhook_forget(double precision) OWNER TO callingcard_definer;
REVOKE ALL ON FUNCTION webhook_claim(integer, integer, double precision),
    webhook_attempted(uuid, uuid, uuid, boolean, integer, integer, text, double precision),
    webhook_next_due(), webhook_forget(double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook_claim(integer, integer, double precision),
    webhook_attempted(uuid, uuid, uuid, boolean, integer, integer, text, double precision),
    webhook_next_due(), webhook_forget(double precision) TO callingcard_app;
