-- The employee list at any company size: an index for each sort, a trigram index for the search,
-- and the company's employee count kept up to date instead of counted on every request.

-- Both ship with PostgreSQL (Debian's postgresql-15 holds contrib) and are trusted extensions:
-- the owner applying the migrations needs CREATE on the database, not superuser.
-- pg_trgm: substring search (ILIKE '%…%') through an index. btree_gin: company_id as the first
-- column of that GIN index, so a search reads one company's entries, not every tenant's.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;

-- `sort=name` / `-name` (forwards and backwards). The key is a stored column rather than an
-- expression index, because of the tenant wall: under row-level security a condition may only
-- become an index condition if it cannot leak values (its functions are LEAKPROOF), and
-- `lower(full_name) > $1` calls lower(), which is not; `name_key > $1` (text_gt) is. That is what
-- lets a cursor start a page of the name sort inside the index.
ALTER TABLE employees ADD COLUMN name_key text GENERATED ALWAYS AS (lower(full_name)) STORED;
CREATE INDEX employees_company_name_idx ON employees (company_id, name_key, id);
-- `sort=created_at` / `-created_at` is served by employees_company_created_idx (V1).

-- `q`: what the search matches, one field a line so a match never spans two fields. ILIKE is not
-- leakproof either, so under the wall PostgreSQL would filter every row of the company instead
-- of using this index: the search goes through employee_search() below, which the index serves.
CREATE INDEX employees_company_search_idx ON employees USING gin (
    company_id,
    (full_name || E'\n' || coalesce(job_title, '') || E'\n' || coalesce(email, '')) gin_trgm_ops
);

-- The ids of the current tenant's employees whose name, job title or email is like p_pattern
-- (an ILIKE pattern). It answers exactly what the employees policy lets the transaction see
-- (the same app.company_id test), only through the index.
CREATE FUNCTION employee_search(p_pattern text)
RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER
-- A search usually narrows the list down: the planner then looks the matches up by id.
ROWS 100
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.id
    FROM public.employees e
    WHERE e.company_id = nullif(current_setting('app.company_id', true), '')::uuid
      AND (e.full_name || E'\n' || coalesce(e.job_title, '') || E'\n' || coalesce(e.email, ''))
          ILIKE p_pattern
$$;
ALTER FUNCTION employee_search(text) OWNER TO callingcard_definer;
REVOKE ALL ON FUNCTION employee_search(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION employee_search(text) TO callingcard_app;

-- How many employees each company has, kept by the triggers below, so that `X-Total-Count`
-- of an unfiltered list reads one row instead of counting the whole company. No row: none.
CREATE TABLE employee_counts (
    company_id uuid PRIMARY KEY REFERENCES companies (id) ON DELETE CASCADE,
    employees  bigint NOT NULL CONSTRAINT employee_counts_not_negative CHECK (employees >= 0)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON employee_counts TO callingcard_app;
ALTER TABLE employee_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE employee_counts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON employee_counts
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));

-- Statement-level, over the transition tables: one counter update per statement and company,
-- however many rows it inserts or deletes. They run as whoever changed the employees, through the
-- same wall, which lets a transaction touch only its own tenant's employees, hence counter. Inserts
-- of one company are serialized already (the plan limit locks its subscription), so the counter
-- row is no new point of contention.
CREATE FUNCTION employee_counts_add() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO public.employee_counts AS c (company_id, employees)
    SELECT company_id, count(*) FROM added GROUP BY company_id
    ON CONFLICT (company_id) DO UPDATE SET employees = c.employees + excluded.employees;
    RETURN NULL;
END
$$;

CREATE FUNCTION employee_counts_remove() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE public.employee_counts c SET employees = c.employees - gone.n
    FROM (SELECT company_id, count(*) AS n FROM removed GROUP BY company_id) gone
    WHERE c.company_id = gone.company_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER employees_counted_in AFTER INSERT ON employees
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION employee_counts_add();
CREATE TRIGGER employees_counted_out AFTER DELETE ON employees
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION employee_counts_remove();

-- The counts so far. The owner is subject to the forced policies like everyone else, so this goes
-- company by company, each as its tenant (as in V5).
DO $$
DECLARE
    company uuid;
BEGIN
    PERFORM set_config('app.role', 'superadmin', true);
    FOR company IN SELECT id FROM companies LOOP
        PERFORM set_config('app.company_id', company::text, true);
        INSERT INTO employee_counts (company_id, employees)
        SELECT company, count(*) FROM employees WHERE company_id = company
        HAVING count(*) > 0;
    END LOOP;
    PERFORM set_config('app.company_id', '', true);
    PERFORM set_config('app.role', '', true);
END
$$;
