-- The employee list's search, bounded: at most p_limit matches, with their sort keys.
--
-- employee_search() (V8) answered every match of the current tenant, ids only: a broad search
-- (`q=son`, every email) rechecked every row of the company, and the page then looked each match
-- up again for its sort key. This one stops after p_limit matches (the list asks for one more
-- than it counts, and beyond that walks its sort index instead), and answers the sort keys with
-- the ids, read from the rows it rechecks anyway.
--
-- It answers exactly what the employees policy lets the transaction see (the same app.company_id
-- test), only through employees_company_search_idx (V8), which the policy would keep ILIKE from
-- using (ILIKE is not leakproof).
CREATE FUNCTION employee_search_keys(p_pattern text, p_limit integer)
RETURNS TABLE (id uuid, created_at timestamptz, name_key text)
LANGUAGE sql STABLE SECURITY DEFINER
ROWS 100
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.id, e.created_at, e.name_key
    FROM public.employees e
    WHERE e.company_id = nullif(current_setting('app.company_id', true), '')::uuid
      AND (e.full_name || E'\n' || coalesce(e.job_title, '') || E'\n' || coalesce(e.email, ''))
          ILIKE p_pattern
    LIMIT greatest(p_limit, 0)
$$;
ALTER FUNCTION employee_search_keys(text, integer) OWNER TO callingcard_definer;
REVOKE ALL ON FUNCTION employee_search_keys(text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION employee_search_keys(text, integer) TO callingcard_app;

-- Nothing calls the unbounded one any more; one door fewer past the wall.
DROP FUNCTION employee_search(text);
