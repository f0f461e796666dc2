-- Public cards: uploaded images, the slug lookup that opens a card, restrictions on what an
-- anonymous visitor's transaction may read, and change notifications for the card caches.

-- Employee photos and company logos, normalized by the service (decoded, metadata stripped,
-- re-encoded) and addressed by a hash of their content, so their URLs can be cached forever.
CREATE TABLE media (
    company_id   uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    hash         text NOT NULL CONSTRAINT media_hash_format CHECK (hash ~ '^[0-9a-f]{32}$'),
    content_type text NOT NULL CONSTRAINT media_content_type CHECK (content_type IN ('image/jpeg', 'image/png')),
    bytes        bytea NOT NULL CONSTRAINT media_size CHECK (octet_length(bytes) BETWEEN 1 AND 5242880),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, hash)
);

ALTER TABLE employees ADD COLUMN photo_hash text,
    ADD CONSTRAINT employees_photo_fkey FOREIGN KEY (company_id, photo_hash) REFERENCES media (company_id, hash);
CREATE INDEX employees_company_photo_idx ON employees (company_id, photo_hash) WHERE photo_hash IS NOT NULL;
ALTER TABLE companies ADD COLUMN logo_hash text,
    ADD CONSTRAINT companies_logo_fkey FOREIGN KEY (id, logo_hash) REFERENCES media (company_id, hash);

GRANT SELECT, INSERT, UPDATE, DELETE ON media TO callingcard_app;
ALTER TABLE media ENABLE ROW LEVEL SECURITY;
ALTER TABLE media FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON media
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));

-- A visitor's transaction (app.role = 'public') is scoped to the company of the card it opened,
-- but it has no business with logins or billing: restrictive policies hide those tables from it
-- whatever SQL runs.
CREATE POLICY not_for_visitors ON users AS RESTRICTIVE
    USING ((SELECT current_setting('app.role', true)) IS DISTINCT FROM 'public');
CREATE POLICY not_for_visitors ON subscriptions AS RESTRICTIVE
    USING ((SELECT current_setting('app.role', true)) IS DISTINCT FROM 'public');

-- The first step of every public card request: which company a slug names. Nothing else.
CREATE FUNCTION card_company(p_company_slug text)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.id FROM public.companies c WHERE c.slug = p_company_slug
$$;
ALTER FUNCTION card_company(text) OWNER TO callingcard_definer;
REVOKE ALL ON FUNCTION card_company(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card_company(text) TO callingcard_app;

-- Rendered cards are cached in every instance of the service; any change to what a card shows
-- tells all of them, on commit. Payloads: 'company:{id}' or 'employee:{company_id}:{id}'.
CREATE FUNCTION notify_card_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'companies' THEN
        PERFORM pg_notify('card_changed', 'company:' || coalesce(NEW.id, OLD.id)::text);
    ELSE
        PERFORM pg_notify('card_changed', 'employee:' || coalesce(NEW.company_id, OLD.company_id)::text
                                           || ':' || coalesce(NEW.id, OLD.id)::text);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER employees_card_changed AFTER INSERT OR UPDATE OR DELETE ON employees
    FOR EACH ROW EXECUTE FUNCTION notify_card_changed();
CREATE TRIGGER companies_card_changed AFTER UPDATE OR DELETE ON companies
    FOR EACH ROW EXECUTE FUNCTION notify_card_changed();
