-- Leads reach webhooks: `lead.created` is queued in the transaction that stores the lead, and a
-- lead's deliveries are erased with it, by retention too.

-- The transaction storing a lead is a visitor's, which sees no webhooks at all (they are not for
-- visitors), so the deliveries of `lead.created` are queued by this function, and only for a
-- lead stored in the caller's own transaction: it cannot be used to send an older lead again.
-- The payload is built here from the row, as the members' API shows a lead.
CREATE FUNCTION webhook_enqueue_lead(p_lead_id uuid)
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH lead AS (
        SELECT l.*, c.slug AS company_slug
        FROM public.leads l JOIN public.companies c ON c.id = l.company_id
        WHERE l.id = p_lead_id
          AND l.company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid)
          AND l.xmin::text = pg_current_xact_id()::xid::text
    ), queued AS (
        INSERT INTO public.webhook_deliveries (company_id, id, webhook_id, event_id, event,
                                               subject_id, payload)
        SELECT w.company_id, gen_random_uuid(), w.id, e.event_id, 'lead.created', lead.id,
               jsonb_build_object(
                   'id', lead.id, 'company_id', lead.company_id,
                   'company_slug', lead.company_slug, 'employee_id', lead.employee_id,
                   'employee_name', lead.employee_name, 'created_at', lead.created_at,
                   'name', lead.name, 'email', lead.email, 'phone', lead.phone,
                   'company', lead.company, 'job_title', lead.job_title, 'note', lead.note,
                   'consent_given', lead.consent_given, 'consent_text', lead.consent_text)
        FROM lead
        CROSS JOIN (SELECT gen_random_uuid() AS event_id) e
        JOIN public.webhooks w ON w.company_id = lead.company_id
        WHERE w.enabled AND 'lead.created' = ANY (w.events)
        RETURNING 1
    )
    SELECT count(*)::integer FROM queued
$$;
ALTER FUNCTION webhook_enqueue_lead(uuid) OWNER TO callingcard_definer;
REVOKE ALL ON FUNCTION webhook_enqueue_lead(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook_enqueue_lead(uuid) TO callingcard_app;

-- Retention erases a lead's deliveries not yet sent with it, as erasure by a member does.
CREATE OR REPLACE FUNCTION leads_purge(p_batch integer)
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
    ), deliveries AS (
        DELETE FROM public.webhook_deliveries d USING expired e
        WHERE d.company_id = e.company_id AND d.subject_id = e.id
        RETURNING d.id
    ), gone AS (
        DELETE FROM public.leads l USING expired e
        WHERE l.company_id = e.company_id AND l.id = e.id
        RETURNING l.id
    )
    SELECT count(*) FROM gone
$$;
