-- Core tenant schema. Every tenant table carries company_id first in its primary key and in its
-- foreign keys, so the schema can later be distributed by company_id (Citus) without rework.
-- `companies` is the tenant root: its id IS the company_id.

CREATE EXTENSION IF NOT EXISTS pgcrypto;

-- Keeps updated_at honest whatever client writes the row.
CREATE FUNCTION touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- Reference data, not tenant data: identical for every company.
CREATE TABLE plans (
    plan           text PRIMARY KEY,
    title          text NOT NULL,
    employee_limit integer CHECK (employee_limit IS NULL OR employee_limit >= 0),
    sort_order     integer NOT NULL
);

INSERT INTO plans (plan, title, employee_limit, sort_order) VALUES
    ('free', 'Free', 2, 1),
    ('professional', 'Professional', 50, 2),
    ('enterprise', 'Enterprise', NULL, 3);

CREATE TABLE companies (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CONSTRAINT companies_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    domain      text CONSTRAINT companies_domain_length CHECK (char_length(domain) <= 253),
    logo_url    text CONSTRAINT companies_logo_url_length CHECK (char_length(logo_url) <= 2048),
    brand_color text CONSTRAINT companies_brand_color_format
                     CHECK (brand_color ~ '^#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$'),
    slug        text NOT NULL CONSTRAINT companies_slug_format
                     CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length(slug) <= 80),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- Slugs are global: they are the first segment of every public card URL.
    CONSTRAINT companies_slug_key UNIQUE (slug)
);
CREATE TRIGGER companies_touch BEFORE UPDATE ON companies
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE employees (
    company_id   uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    id           uuid NOT NULL,
    full_name    text NOT NULL CONSTRAINT employees_full_name_length CHECK (char_length(full_name) BETWEEN 1 AND 200),
    job_title    text CONSTRAINT employees_job_title_length CHECK (char_length(job_title) <= 200),
    email        text CONSTRAINT employees_email_length CHECK (char_length(email) <= 254),
    phone        text CONSTRAINT employees_phone_length CHECK (char_length(phone) <= 40),
    whatsapp     text CONSTRAINT employees_whatsapp_length CHECK (char_length(whatsapp) <= 40),
    photo_url    text CONSTRAINT employees_photo_url_length CHECK (char_length(photo_url) <= 2048),
    bio          text CONSTRAINT employees_bio_length CHECK (char_length(bio) <= 2000),
    social_links jsonb NOT NULL DEFAULT '{}'::jsonb
                 CONSTRAINT employees_social_links_object CHECK (jsonb_typeof(social_links) = 'object'),
    public_slug  text NOT NULL CONSTRAINT employees_public_slug_format
                      CHECK (public_slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length(public_slug) <= 100),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, id),
    CONSTRAINT employees_public_slug_key UNIQUE (company_id, public_slug)
);
CREATE INDEX employees_company_created_idx ON employees (company_id, created_at, id);
CREATE TRIGGER employees_touch BEFORE UPDATE ON employees
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE users (
    company_id    uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    id            uuid NOT NULL,
    email         text NOT NULL CONSTRAINT users_email_length CHECK (char_length(email) BETWEEN 3 AND 254),
    password_hash text NOT NULL,
    full_name     text NOT NULL CONSTRAINT users_full_name_length CHECK (char_length(full_name) BETWEEN 1 AND 200),
    role          text NOT NULL CONSTRAINT users_role_check CHECK (role IN ('superadmin', 'admin', 'employee')),
    is_active     boolean NOT NULL DEFAULT true,
    employee_id   uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, id),
    -- Deleting an employee keeps the login but unlinks it.
    CONSTRAINT users_employee_fkey FOREIGN KEY (company_id, employee_id)
        REFERENCES employees (company_id, id) ON DELETE SET NULL (employee_id)
);
-- Logins are by email alone, before any tenant is known, so email is unique platform-wide.
-- (Under Citus this index would move to a small reference table of logins.)
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_company_created_idx ON users (company_id, created_at, id);
CREATE INDEX users_company_employee_idx ON users (company_id, employee_id) WHERE employee_id IS NOT NULL;
CREATE TRIGGER users_touch BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- One card per employee. Paths, not absolute URLs: the public base URL is configuration.
CREATE TABLE cards (
    company_id  uuid NOT NULL,
    id          uuid NOT NULL,
    employee_id uuid NOT NULL,
    url         text NOT NULL,
    qr_code     text NOT NULL,
    vcard_url   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, id),
    CONSTRAINT cards_employee_key UNIQUE (company_id, employee_id),
    CONSTRAINT cards_employee_fkey FOREIGN KEY (company_id, employee_id)
        REFERENCES employees (company_id, id) ON DELETE CASCADE
);
CREATE TRIGGER cards_touch BEFORE UPDATE ON cards
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TABLE subscriptions (
    company_id uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    plan       text NOT NULL REFERENCES plans (plan),
    active     boolean NOT NULL DEFAULT true,
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at   timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, id),
    CONSTRAINT subscriptions_ended_when_inactive CHECK (active = (ended_at IS NULL))
);
-- At most one active subscription per company; history is kept.
CREATE UNIQUE INDEX subscriptions_one_active_idx ON subscriptions (company_id) WHERE active;
CREATE TRIGGER subscriptions_touch BEFORE UPDATE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
