-- Leads: contacts that visitors of a card leave in return, and the company's settings for
-- collecting them.

ALTER TABLE companies
    ADD COLUMN lead_capture_enabled boolean NOT NULL DEFAULT true,
    ADD COLUMN lead_consent_required boolean NOT NULL DEFAULT false,
    ADD COLUMN lead_consent_text text
        CONSTRAINT companies_lead_consent_text_length CHECK (char_length(lead_consent_text) BETWEEN 1 AND 1000),
    ADD COLUMN privacy_policy_url text
        CONSTRAINT companies_privacy_policy_url_format
        CHECK (char_length(privacy_policy_url) <= 2048 AND privacy_policy_url ~* '^https?://[^/?#[:space:]]+'),
    -- Null keeps leads until someone erases them.
    ADD COLUMN lead_retention_days integer
        CONSTRAINT companies_lead_retention_days_range CHECK (lead_retention_days BETWEEN 1 AND 3650);

CREATE TABLE leads (
    company_id      uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    id              uuid NOT NULL,
    -- Whose card it was left on. A lead belongs to the company (it is its CRM's), not to the
    -- employee: deleting the employee keeps the lead, unlinked, and `employee_name` still tells
    -- whose card it came from. Only admins see unlinked leads.
    employee_id     uuid,
    employee_name   text NOT NULL CONSTRAINT leads_employee_name_length CHECK (char_length(employee_name) BETWEEN 1 AND 200),
    created_at      timestamptz NOT NULL DEFAULT now(),
    name            text NOT NULL CONSTRAINT leads_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    email           text CONSTRAINT leads_email_length CHECK (char_length(email) BETWEEN 3 AND 254),
    phone           text CONSTRAINT leads_phone_length CHECK (char_length(phone) BETWEEN 1 AND 40),
    company         text CONSTRAINT leads_company_length CHECK (char_length(company) BETWEEN 1 AND 200),
    job_title       text CONSTRAINT leads_job_title_length CHECK (char_length(job_title) BETWEEN 1 AND 200),
    note            text CONSTRAINT leads_note_length CHECK (char_length(note) BETWEEN 1 AND 2000),
    -- The consent the visitor gave, and the words they agreed to, as shown then (the company may
    -- change its text later).
    consent_given   boolean NOT NULL DEFAULT false,
    consent_text    text CONSTRAINT leads_consent_text_length CHECK (char_length(consent_text) BETWEEN 1 AND 1000),
    -- The visitor asked for the card's vCard by email.
    vcard_requested boolean NOT NULL DEFAULT false,
    CONSTRAINT leads_reachable CHECK (email IS NOT NULL OR phone IS NOT NULL),
    CONSTRAINT leads_consent_check CHECK (consent_given OR consent_text IS NULL),
    PRIMARY KEY (company_id, id),
    CONSTRAINT leads_employee_fkey FOREIGN KEY (company_id, employee_id)
        REFERENCES employees (company_id, id) ON DELETE SET NULL (employee_id)
);
-- The list, newest first, read backwards from the cursor `(created_at, id) < (…)`; an
-- employee's own leads; the foreign key's deletes.
CREATE INDEX leads_newest ON leads (company_id, created_at, id);
CREATE INDEX leads_employee ON leads (company_id, employee_id, created_at, id)
    WHERE employee_id IS NOT NULL;
-- Retention, across companies.
CREATE INDEX leads_created_at ON leads (created_at);

-- A visitor leaves a lead (INSERT, no RETURNING) but never reads, changes or erases one: the
-- company's members do (UPDATE: for what members will note on a lead, e.g. that it was
-- followed up).
GRANT SELECT, INSERT, UPDATE, DELETE ON leads TO callingcard_app;
ALTER TABLE leads ENABLE ROW LEVEL SECURITY;
ALTER TABLE leads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON leads
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));
CREATE POLICY not_read_by_visitors ON leads AS RESTRICTIVE FOR SELECT
    USING ((SELECT current_setting('app.role', true)) IS DISTINCT FROM 'public');
CREATE POLICY not_changed_by_visitors ON leads AS RESTRICTIVE FOR UPDATE
    USING ((SELECT current_setting('app.role', true)) IS DISTINCT FROM 'public');
CREATE POLICY not_erased_by_visitors ON leads AS RESTRICTIVE FOR DELETE
    USING ((SELECT current_setting('app.role', true)) IS DISTINCT FROM 'public');

-- Where the email about a new lead goes: the address on the employee's card, or else their
-- linked login's (which a visitor's transaction cannot read). Only in the transaction's company.
CREATE FUNCTION lead_recipient(p_employee_id uuid)
RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(nullif(e.email, ''),
                    (SELECT u.email FROM public.users u
                     WHERE u.company_id = e.company_id AND u.employee_id = e.id AND u.is_active))
    FROM public.employees e
    WHERE e.company_id = nullif(current_setting('app.company_id', true), '')::uuid
      AND e.id = p_employee_id
$$;

-- A superadmin addressing /api/leads/{id} does not know the company yet (as for employees).
CREATE FUNCTION superadmin_lead_company(p_lead_id uuid)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT l.company_id
    FROM public.leads l
    WHERE l.id = p_lead_id
      AND current_setting('app.role', true) = 'superadmin'
$$;

-- Retention: erases up to `p_batch` leads older than their company's `lead_retention_days`,
-- oldest first, with the messages about them still in the outbox (see `erase` in
-- src/model/lead.rs: the same erasure); how many leads went. The job calls it until fewer than a
-- batch go.
CREATE FUNCTION leads_purge(p_batch integer)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH expired AS (
        SELECT l.company_id, l.id
        FROM public.leads l JOIN public.companies c ON c.id = l.company_id
        WHERE c.lead_retention_days IS NOT NULL
          AND l.created_at < now() - make_interval(days => c.lead_retention_days)
        ORDER BY l.created_at
        LIMIT greatest(p_batch, 1)
    ), messages AS (
        DELETE FROM public.outbox o USING expired e
        WHERE o.company_id = e.company_id AND o.payload->>'lead_id' = e.id::text
        RETURNING o.id
    ), gone AS (
        DELETE FROM public.leads l USING expired e
        WHERE l.company_id = e.company_id AND l.id = e.id
        RETURNING l.id
    )
    SELECT count(*) FROM gone
$$;

GRANT SELECT, DELETE ON leads TO callingcard_definer;
ALTER FUNCTION lead_recipient(uuid) OWNER TO callingcard_definer;
ALTER FUNCTION superadmin_lead_company(uuid) OWNER TO callingcard_definer;
ALTER FUNCTION leads_purge(integer) OWNER TO callingcard_definer;
REVOKE ALL ON FUNCTION lead_recipient(uuid), superadmin_lead_company(uuid), leads_purge(integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lead_recipient(uuid), superadmin_lead_company(uuid), leads_purge(integer)
    TO callingcard_app;
