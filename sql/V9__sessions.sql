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
-- Per user: the list of sessions (newest first), ending them all, sweeping the ended ones.
CREATE INDEX sessions_user ON sessions (company_id, user_id, created_at);

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

-- The check every signed-in request makes, inside its own transaction and in the very statement
-- that sets its tenant (so it costs no round trip of its own): the token's session must be live,
-- its login active, and the login's role still the token's. It raises rather than answers, so
-- that no statement after it runs: SQLSTATE CC001 when the session ended (logged out, revoked,
-- expired, the login disabled or deleted), CC002 when the role changed (the token's rights are
-- no longer the login's: refresh for a token of the new role). The service maps both to 401.
-- A superadmin entering another company passes its own company here, not the one it enters.
-- STABLE: it only reads, so it runs in read-only transactions too.
CREATE FUNCTION session_check(p_company uuid, p_session uuid, p_user uuid, p_role text)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_role text;
BEGIN
    SELECT u.role INTO v_role
    FROM public.sessions s
    JOIN public.users u ON u.company_id = s.company_id AND u.id = s.user_id
    WHERE s.company_id = p_company AND s.id = p_session AND s.user_id = p_user
      AND s.revoked_at IS NULL AND s.expires_at > now() AND u.is_active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'session ended' USING ERRCODE = 'CC001';
    END IF;
    IF v_role IS DISTINCT FROM p_role THEN
        RAISE EXCEPTION 'role changed' USING ERRCODE = 'CC002';
    END IF;
    RETURN true;
END
$$;

-- Trades a refresh token for the next one, before any tenant is known (the token is all the
-- client has). `outcome` says what happened:
--   refreshed   the old token is now used, `p_new_hash` is the session's current one;
--   unknown     no such token (never issued, or its session was swept away);
--   reused      the token was used before: a copy is in someone else's hands, so the whole
--               session ends (OWASP ASVS 5.0 §10.4.5), its newest token and access tokens too;
--   revoked     the session had ended already;
--   expired     past the session's absolute end;
--   idle        not refreshed for `p_idle_seconds`;
--   deactivated the login is disabled.
-- Every outcome but `refreshed` and `unknown` leaves the session ended. The token's row is
-- locked first, so two refreshes racing with one token are serialized: the second is a reuse.
CREATE FUNCTION session_refresh(p_token_hash bytea, p_new_hash bytea, p_idle_seconds double precision)
RETURNS TABLE (outcome text, session_id uuid, user_id uuid, company_id uuid, role text,
               expires_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_token public.session_refresh_tokens%ROWTYPE;
    v_session public.sessions%ROWTYPE;
    v_role text;
    v_active boolean;
    v_outcome text;
BEGIN
    SELECT * INTO v_token FROM public.session_refresh_tokens t
    WHERE t.token_hash = p_token_hash
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown'::text, NULL::uuid, NULL::uuid, NULL::uuid, NULL::text,
                            NULL::timestamptz;
        RETURN;
    END IF;
    SELECT * INTO v_session FROM public.sessions s
    WHERE s.company_id = v_token.company_id AND s.id = v_token.session_id
    FOR UPDATE;
    SELECT u.role, u.is_active INTO v_role, v_active FROM public.users u
    WHERE u.company_id = v_session.company_id AND u.id = v_session.user_id;
    v_outcome := CASE
        WHEN v_session.revoked_at IS NOT NULL THEN 'revoked'
        WHEN v_token.used_at IS NOT NULL THEN 'reused'
        WHEN v_session.expires_at <= now() THEN 'expired'
        WHEN v_session.last_used_at <= now() - make_interval(secs => p_idle_seconds) THEN 'idle'
        WHEN NOT coalesce(v_active, false) THEN 'deactivated'
        ELSE 'refreshed'
    END;
    IF v_outcome = 'refreshed' THEN
        UPDATE public.session_refresh_tokens t SET used_at = now()
        WHERE t.company_id = v_token.company_id AND t.token_hash = v_token.token_hash;
        INSERT INTO public.session_refresh_tokens (company_id, token_hash, session_id)
        VALUES (v_token.company_id, p_new_hash, v_token.session_id);
        -- The only write to a session while it lives: a read never writes.
        UPDATE public.sessions s SET last_used_at = now()
        WHERE s.company_id = v_session.company_id AND s.id = v_session.id;
    ELSIF v_outcome <> 'revoked' THEN
        UPDATE public.sessions s
        SET revoked_at = now(),
            revoked_reason = CASE v_outcome WHEN 'reused' THEN 'refresh_token_reused'
                                            ELSE v_outcome END
        WHERE s.company_id = v_session.company_id AND s.id = v_session.id;
    END IF;
    RETURN QUERY SELECT v_outcome, v_session.id, v_session.user_id, v_session.company_id, v_role,
                        v_session.expires_at;
END
$$;

GRANT SELECT, INSERT, UPDATE ON sessions, session_refresh_tokens TO callingcard_definer;
ALTER FUNCTION session_check(uuid, uuid, uuid, text) OWNER TO callingcard_definer;
ALTER FUNCTION session_refresh(bytea, bytea, double precision) OWNER TO callingcard_definer;
REVOKE ALL ON FUNCTION session_check(uuid, uuid, uuid, text),
    session_refresh(bytea, bytea, double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION session_check(uuid, uuid, uuid, text),
    session_refresh(bytea, bytea, double precision) TO callingcard_app;
