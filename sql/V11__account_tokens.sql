-- One-time tokens sent by email: a password reset (valid an hour) and an email verification.
-- The token itself (256 random bits) is only in the email; what is stored is its SHA-256. A
-- token is used once: `used_at` is set when it is spent, or when a newer token replaces it.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;

CREATE TABLE account_tokens (
    company_id uuid NOT NULL,
    token_hash bytea NOT NULL,
    user_id    uuid NOT NULL,
    purpose    text NOT NULL
        CONSTRAINT account_tokens_purpose_check CHECK (purpose IN ('password_reset', 'email_verification')),
    -- The address the token was sent to: verifying it verifies that address, not a later one.
    email      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    PRIMARY KEY (company_id, token_hash),
    CONSTRAINT account_tokens_user_fkey FOREIGN KEY (company_id, user_id)
        REFERENCES users (company_id, id) ON DELETE CASCADE
);
-- A token arrives before its tenant is known: it is found by its hash alone.
CREATE UNIQUE INDEX account_tokens_hash ON account_tokens (token_hash);
CREATE INDEX account_tokens_user ON account_tokens (company_id, user_id, purpose, created_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON account_tokens TO callingcard_app;
ALTER TABLE account_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE account_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON account_tokens
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));

GRANT SELECT, DELETE ON account_tokens TO callingcard_definer;

-- The company of a token, with what the service needs to answer a spent or stale one clearly;
-- nothing for an unknown hash.
CREATE FUNCTION account_token_lookup(p_token_hash bytea)
RETURNS TABLE (company_id uuid, purpose text, expired boolean, used boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.company_id, t.purpose, t.expires_at <= now(), t.used_at IS NOT NULL
    FROM public.account_tokens t
    WHERE t.token_hash = p_token_hash
$$;

-- Forgets tokens that expired more than a day ago; how many.
CREATE FUNCTION account_tokens_forget()
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    DELETE FROM public.account_tokens t WHERE t.expires_at < now() - interval '1 day';
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END
$$;

ALTER FUNCTION account_token_lookup(bytea) OWNER TO callingcard_definer;
ALTER FUNCTION account_tokens_forget() OWNER TO callingcard_definer;
REVOKE ALL ON FUNCTION account_token_lookup(bytea), account_tokens_forget() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION account_token_lookup(bytea), account_tokens_forget() TO callingcard_app;
