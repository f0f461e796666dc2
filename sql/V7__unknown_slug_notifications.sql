-- Every instance remembers company slugs that name no company, for a moment, so that asking for
-- one again costs no query. A company taking such a slug must be heard of at once: a new
-- company (or, should one ever change, a new slug) notifies its slug on commit. Cards of an
-- existing company are not affected by this, so the payload is apart from 'company:{id}'.
CREATE FUNCTION notify_company_created() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('card_changed', 'company_created:' || NEW.slug);
    RETURN NULL;
END
$$;
CREATE TRIGGER companies_card_created AFTER INSERT ON companies
    FOR EACH ROW EXECUTE FUNCTION notify_company_created();
CREATE TRIGGER companies_slug_changed AFTER UPDATE OF slug ON companies
    FOR EACH ROW WHEN (OLD.slug IS DISTINCT FROM NEW.slug)
    EXECUTE FUNCTION notify_company_created();
