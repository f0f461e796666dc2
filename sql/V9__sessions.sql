-- Server-side sessions. A login, a sign-up or an accepted invitation opens one; its access
-- tokens name it (`sid`), and every request checks it inside its own transaction, so ending a
-- session takes effect at once on every instance.
CREATE TABLE sessions (
    company_id   uuid NOT NULL,
    id           uuid NOT NULL,
    user_id      uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    -- The absolute end: no refresh carries a session past it.
    expires_at   timestamptz NOT NULL,
    user_agent   text CONSTRAINT sessions_user_agent_length CHECK (char_length(user_agent) <= 512),
    client_address inet,
    revoked_at   timestamptz,
    revoked_reason text,
    PRIMARY KEY (company_id, id),
    CONSTRAINT sessions_user_fkey FOREIGN KEY (company_id, user_id)
        REFERENCES users (company_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_user ON sessions (company_id, user_id) WHERE revoked_at IS NULL;

-- Refresh tokens are opaque and stored only as their SHA-256. A used one stays, marked, so that
-- presenting it again (a stolen copy, or the thief's) ends its whole session.
CREATE TABLE session_refresh_tokens (
    company_id  uuid NOT NULL,
    token_hash  bytea NOT NULL,
    session_id  uuid NOT NULL,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    used_at     timestamptz,
    PRIMARY KEY (company_id, token_hash),
    CONSTRAINT session_refresh_tokens_session_fkey FOREIGN KEY (company_id, session_id)
        REFERENCES sessions (company_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX session_refresh_tokens_hash ON session_refresh_tokens (token_hash);

GRANT SELECT, INSERT, UPDATE, DELETE ON sessions, session_refresh_tokens TO callingcard_app;
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sessions
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));
ALTER TABLE session_refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_refresh_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON session_refresh_tokens
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));
