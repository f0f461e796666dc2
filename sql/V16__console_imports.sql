-- A CSV file an admin uploaded to the console's import, kept between the import's steps (the
-- column mapping, the preview, the import) for an hour. Bounded as the API's import body is.
CREATE TABLE console_imports (
    company_id uuid NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    uploaded_by uuid NOT NULL,
    file_name text NOT NULL CHECK (length(file_name) <= 255),
    bytes bytea NOT NULL CHECK (octet_length(bytes) <= 8388608),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL DEFAULT now() + interval '1 hour',
    PRIMARY KEY (company_id, id)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON console_imports TO callingcard_app;
ALTER TABLE console_imports ENABLE ROW LEVEL SECURITY;
ALTER TABLE console_imports FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON console_imports
    USING (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid))
    WITH CHECK (company_id = (SELECT nullif(current_setting('app.company_id', true), '')::uuid));
