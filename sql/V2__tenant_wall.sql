-- The tenant wall. The service logs in as callingcard_app: it owns nothing and cannot bypass
-- row-level security, so a query that forgets its WHERE still sees one company only.
-- Roles are cluster-wide; create them only once (a DBA may also create them beforehand).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'callingcard_app') THEN
        CREATE ROLE callingcard_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
    END IF;
    -- Owns the few SECURITY DEFINER lookups that run before a tenant is known. Cannot log in.
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'callingcard_definer') THEN
        CREATE ROLE callingcard_definer NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE BYPASSRLS;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO callingcard_app, callingcard_definer;
GRANT SELECT ON plans TO callingcard_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON companies, employees, users, cards, subscriptions TO callingcard_app;

-- Every policy reads the transaction-local tenant through a scalar sub-select, so PostgreSQL
-- evaluates it once per statement rather than once per row. nullif: an unset custom setting
-- reads as '' once it has been set on the connection before.
ALTER TABLE companies ENABLE ROW LEVEL SECURITY;
ALTER TABLE companies FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON companies
    USING (id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));
-- The platform operator lists every company; reading only, and only with the superadmin role
-- set by the service from a verified token.
CREATE POLICY superadmin_reads_all ON companies FOR SELECT
    USING ((SELECT current_setting('app.role', true)) = 'superadmin');

ALTER TABLE employees ENABLE ROW LEVEL SECURITY;
ALTER TABLE employees FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON employees
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON users
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));

ALTER TABLE cards ENABLE ROW LEVEL SECURITY;
ALTER TABLE cards FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON cards
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));

ALTER TABLE subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE subscriptions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON subscriptions
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));

-- Lookups before a tenant is known. Each returns only what its caller needs, runs with a fixed
-- search_path, and is callable by the service role alone.
GRANT SELECT ON companies, employees, users TO callingcard_definer;

-- Login by email: the hash is compared in the service, never in SQL.
CREATE FUNCTION login_lookup(p_email text)
RETURNS TABLE (user_id uuid, company_id uuid, role text, is_active boolean, password_hash text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id, u.company_id, u.role, u.is_active, u.password_hash
    FROM public.users u
    WHERE lower(u.email) = lower(p_email)
$$;

-- A superadmin addressing /api/employees/{id} does not know the company yet: answer the company
-- of that employee, and only to a transaction the service marked as a superadmin's.
CREATE FUNCTION superadmin_employee_company(p_employee_id uuid)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.company_id
    FROM public.employees e
    WHERE e.id = p_employee_id
      AND current_setting('app.role', true) = 'superadmin'
$$;

ALTER FUNCTION login_lookup(text) OWNER TO callingcard_definer;
ALTER FUNCTION superadmin_employee_company(uuid) OWNER TO callingcard_definer;
REVOKE ALL ON FUNCTION login_lookup(text), superadmin_employee_company(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION login_lookup(text), superadmin_employee_company(uuid) TO callingcard_app;
