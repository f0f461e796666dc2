-- The transactional outbox: a message (an email today, a webhook delivery later) is queued in
-- the same transaction as the change that causes it, and a background worker sends it, with
-- retries and backoff. A change that rolls back sends nothing; a mail server that is down loses
-- nothing.
CREATE TABLE outbox (
    company_id      uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    id              uuid NOT NULL,
    kind            text NOT NULL CONSTRAINT outbox_kind_check CHECK (kind IN ('email')),
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    -- When the message may be tried (again).
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- A worker that claimed the message holds it until then; past it, another may take it.
    locked_until    timestamptz,
    -- The worker's claim: one whose lease ran out (and whose message another took) cannot mark
    -- the message afterwards.
    claim           uuid,
    sent_at         timestamptz,
    -- Given up after too many attempts, or refused for good by the other side.
    failed_at       timestamptz,
    last_error      text,
    PRIMARY KEY (company_id, id)
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;

GRANT SELECT, INSERT, UPDATE, DELETE ON outbox TO callingcard_app;
ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON outbox
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));

-- Every new message wakes the workers (delivered on COMMIT, never for a ROLLBACK); the payload
-- is the message's kind, for the dispatcher of that kind.
CREATE FUNCTION outbox_notify() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('outbox', 'queued');
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_queued AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- The worker belongs to no company: it reaches the outbox only through these functions, owned
-- by callingcard_definer (which bypasses row-level security).
GRANT SELECT, UPDATE, DELETE ON outbox TO callingcard_definer;

-- Takes up to `p_limit` messages that are due and not held by another worker, holding them for
-- `p_lease_seconds` under a new claim. SKIP LOCKED: two workers claiming at once take different
-- messages; the lease: a worker that died mid-send gives its messages back when it runs out.
-- A claim counts as an attempt, so a message that crashes its sender still fails in the end.
CREATE FUNCTION outbox_claim(p_limit integer, p_lease_seconds double precision)
RETURNS TABLE (company_id uuid, id uuid, kind text, payload jsonb, attempts integer, claim uuid)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH due AS (
        SELECT o.company_id, o.id
        FROM public.outbox o
        WHERE o.sent_at IS NULL AND o.failed_at IS NULL AND o.next_attempt_at <= now()
          AND (o.locked_until IS NULL OR o.locked_until <= now())
        ORDER BY o.next_attempt_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE public.outbox o
    SET locked_until = now() + make_interval(secs => p_lease_seconds),
        attempts = o.attempts + 1,
        claim = gen_random_uuid()
    FROM due
    WHERE o.company_id = due.company_id AND o.id = due.id
    RETURNING o.company_id, o.id, o.kind, o.payload, o.attempts, o.claim
$$;

-- The message went out. Its bodies are dropped (a password reset link must not outlive its use
-- in a table); who it went to and its subject stay, for support.
CREATE FUNCTION outbox_sent(p_company_id uuid, p_id uuid, p_claim uuid)
RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE public.outbox o
    SET sent_at = now(), locked_until = NULL, last_error = NULL,
        payload = o.payload - 'text' - 'html'
    WHERE o.company_id = p_company_id AND o.id = p_id AND o.claim = p_claim AND o.sent_at IS NULL
    RETURNING true
$$;

-- The attempt failed. A permanent failure, or the last attempt, gives up (`failed_at`, bodies
-- dropped); otherwise the message is due again in `p_retry_seconds`.
CREATE FUNCTION outbox_failed(p_company_id uuid, p_id uuid, p_claim uuid, p_error text,
                              p_permanent boolean, p_max_attempts integer,
                              p_retry_seconds double precision)
RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE public.outbox o
    SET locked_until = NULL,
        last_error = left(p_error, 1000),
        next_attempt_at = now() + make_interval(secs => p_retry_seconds),
        failed_at = CASE WHEN p_permanent OR o.attempts >= p_max_attempts THEN now() END,
        payload = CASE WHEN p_permanent OR o.attempts >= p_max_attempts
                       THEN o.payload - 'text' - 'html' ELSE o.payload END
    WHERE o.company_id = p_company_id AND o.id = p_id AND o.claim = p_claim
      AND o.sent_at IS NULL AND o.failed_at IS NULL
    RETURNING o.failed_at IS NOT NULL
$$;

-- Seconds until the next message falls due (a retry, or a lease running out); NULL: none is
-- waiting. The worker sleeps that long unless a notification wakes it first.
CREATE FUNCTION outbox_next_due()
RETURNS double precision
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT greatest(0, extract(epoch FROM min(greatest(o.next_attempt_at, coalesce(o.locked_until, o.next_attempt_at))) - now()))::double precision
    FROM public.outbox o
    WHERE o.sent_at IS NULL AND o.failed_at IS NULL
$$;

-- Forgets messages sent or given up more than `p_keep_seconds` ago; how many.
CREATE FUNCTION outbox_forget(p_keep_seconds double precision)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    DELETE FROM public.outbox o
    WHERE coalesce(o.sent_at, o.failed_at) < now() - make_interval(secs => p_keep_seconds);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END
$$;

ALTER FUNCTION outbox_claim(integer, double precision) OWNER TO callingcard_definer;
ALTER FUNCTION outbox_sent(uuid, uuid, uuid) OWNER TO callingcard_definer;
ALTER FUNCTION outbox_failed(uuid, uuid, uuid, text, boolean, integer, double precision)
    OWNER TO callingcard_definer;
ALTER FUNCTION outbox_next_due() OWNER TO callingcard_definer;
ALTER FUNCTION outbox_forget(double precision) OWNER TO callingcard_definer;
REVOKE ALL ON FUNCTION outbox_claim(integer, double precision), outbox_sent(uuid, uuid, uuid),
    outbox_failed(uuid, uuid, uuid, text, boolean, integer, double precision),
    outbox_next_due(), outbox_forget(double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outbox_claim(integer, double precision), outbox_sent(uuid, uuid, uuid),
    outbox_failed(uuid, uuid, uuid, text, boolean, integer, double precision),
    outbox_next_due(), outbox_forget(double precision) TO callingcard_app;
