-- What the metrics listener shows of the outbox: messages waiting to be sent and messages given
-- up on, across every company. The service role sees one company's rows at a time (and none
-- without a tenant), so the count goes through a SECURITY DEFINER function that answers two
-- numbers and nothing about any row.
--
-- Bounded cost: each count stops at `p_limit` rows, and each walks a partial index of the rows
-- it counts (outbox_due from V10 for the pending ones; outbox_failed below for the others), so a
-- scrape never scans the messages already sent.

CREATE INDEX outbox_failed ON outbox (company_id) WHERE failed_at IS NOT NULL;

GRANT SELECT ON outbox TO callingcard_definer;

CREATE FUNCTION outbox_backlog(p_limit integer)
RETURNS TABLE (pending bigint, failed bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT
        (SELECT count(*) FROM (SELECT 1 FROM public.outbox
                               WHERE sent_at IS NULL AND failed_at IS NULL
                               LIMIT greatest(p_limit, 0)) AS waiting),
        (SELECT count(*) FROM (SELECT 1 FROM public.outbox
                               WHERE failed_at IS NOT NULL
                               LIMIT greatest(p_limit, 0)) AS given_up)
$$;

ALTER FUNCTION outbox_backlog(integer) OWNER TO callingcard_definer;
REVOKE ALL ON FUNCTION outbox_backlog(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outbox_backlog(integer) TO callingcard_app;
