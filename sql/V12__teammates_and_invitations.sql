-- Teammates and invitations: one login per employee record, and invitations by email that let a
-- person choose their own password.

-- One login per employee record. Links made before this rule are resolved first, the same way
-- everywhere: the oldest login (by created_at, then id) keeps its link, later ones are unlinked.
-- The owner is bound by the forced policies like everyone else, so this goes company by company,
-- each as its tenant.
DO $$
DECLARE
    company uuid;
BEGIN
    PERFORM set_config('app.role', 'superadmin', true);
    FOR company IN SELECT id FROM companies LOOP
        PERFORM set_config('app.company_id', company::text, true);
        UPDATE users u SET employee_id = NULL
        WHERE u.company_id = company
          AND u.employee_id IS NOT NULL
          AND EXISTS (SELECT 1 FROM users older
                      WHERE older.company_id = u.company_id
                        AND older.employee_id = u.employee_id
                        AND (older.created_at, older.id) < (u.created_at, u.id));
    END LOOP;
    PERFORM set_config('app.company_id', '', true);
    PERFORM set_config('app.role', '', true);
END
$$;

ALTER TABLE users ADD CONSTRAINT users_employee_key UNIQUE (company_id, employee_id);
-- The unique constraint's index serves every lookup the partial one did.
DROP INDEX users_company_employee_idx;

-- An invitation to join a company: a one-time link sent by email. The token is shown only in
-- that email; what is stored is its SHA-256. An invitation ends when it is accepted, withdrawn
-- (or replaced by a new one to the same address) or past `expires_at`; ended ones are kept a
-- while as a record, then deleted when the company sends another.
CREATE TABLE invitations (
    company_id       uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    id               uuid NOT NULL,
    email            text NOT NULL CONSTRAINT invitations_email_length CHECK (char_length(email) BETWEEN 3 AND 254),
    role             text NOT NULL CONSTRAINT invitations_role_check CHECK (role IN ('admin', 'employee')),
    employee_id      uuid,
    token_hash       bytea NOT NULL CONSTRAINT invitations_token_hash_length CHECK (octet_length(token_hash) = 32),
    -- Who sent it. No foreign key: a superadmin's login lives in the platform company, and the
    -- record of who invited whom outlives the inviter's login.
    invited_by       uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    accepted_at      timestamptz,
    accepted_user_id uuid,
    withdrawn_at     timestamptz,
    PRIMARY KEY (company_id, id),
    CONSTRAINT invitations_ended_once CHECK (accepted_at IS NULL OR withdrawn_at IS NULL),
    -- An employee deleted meanwhile: the invitation still makes a login, unlinked (as a login
    -- linked to a deleted employee is).
    CONSTRAINT invitations_employee_fkey FOREIGN KEY (company_id, employee_id)
        REFERENCES employees (company_id, id) ON DELETE SET NULL (employee_id),
    CONSTRAINT invitations_accepted_user_fkey FOREIGN KEY (company_id, accepted_user_id)
        REFERENCES users (company_id, id) ON DELETE SET NULL (accepted_user_id)
);
-- Tokens are found before any tenant is known (invitation_by_token below).
CREATE UNIQUE INDEX invitations_token_hash_key ON invitations (token_hash);
-- At most one open invitation per address and company: a new one replaces the old.
CREATE UNIQUE INDEX invitations_open_email_key ON invitations (company_id, lower(email))
    WHERE accepted_at IS NULL AND withdrawn_at IS NULL;
-- The list of pending ones, and the count of those sent in the last hour (the rate limit).
CREATE INDEX invitations_company_created_idx ON invitations (company_id, created_at, id);

GRANT SELECT, INSERT, UPDATE, DELETE ON invitations TO callingcard_app;
ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invitations
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));
-- Nothing a card shows: hidden from a visitor's transaction like the logins.
CREATE POLICY not_for_visitors ON invitations AS RESTRICTIVE
    USING ((SELECT current_setting('app.role', true)) IS DISTINCT FROM 'public');

-- Lookups before a tenant is known.
GRANT SELECT ON invitations TO callingcard_definer;

-- Accepting an invitation starts from its token alone: what the invitation is, for which
-- company and employee, and whether it can still be accepted. Nothing of any other invitation.
CREATE FUNCTION invitation_by_token(p_token_hash bytea)
RETURNS TABLE (invitation_id uuid, company_id uuid, company_name text, email text, role text,
               employee_id uuid, employee_name text, state text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT i.id, i.company_id, c.name, i.email, i.role, i.employee_id, e.full_name,
           CASE WHEN i.accepted_at IS NOT NULL THEN 'accepted'
                WHEN i.withdrawn_at IS NOT NULL THEN 'withdrawn'
                WHEN i.expires_at <= now() THEN 'expired'
                ELSE 'pending' END
    FROM public.invitations i
    JOIN public.companies c ON c.id = i.company_id
    LEFT JOIN public.employees e ON e.company_id = i.company_id AND e.id = i.employee_id
    WHERE i.token_hash = p_token_hash
$$;

-- Logins are unique by email across companies: whether one exists, and nothing else about it.
CREATE FUNCTION email_has_login(p_email text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM public.users u WHERE lower(u.email) = lower(p_email))
$$;

ALTER FUNCTION invitation_by_token(bytea) OWNER TO callingcard_definer;
ALTER FUNCTION email_has_login(text) OWNER TO callingcard_definer;
REVOKE ALL ON FUNCTION invitation_by_token(bytea), email_has_login(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION invitation_by_token(bytea), email_has_login(text) TO callingcard_app;
