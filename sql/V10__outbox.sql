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
