-- The console runs an import in the background and shows its progress: the file's row says how
-- far the import is (written by the import's task in short transactions of their own, so any
-- instance serving the progress page sees it) and, once it ends, its totals or why it failed.
ALTER TABLE console_imports
    ADD COLUMN state text NOT NULL DEFAULT 'uploaded'
        CHECK (state IN ('uploaded', 'running', 'done', 'failed')),
    ADD COLUMN rows_total integer NOT NULL DEFAULT 0 CHECK (rows_total >= 0),
    ADD COLUMN rows_done integer NOT NULL DEFAULT 0 CHECK (rows_done >= 0),
    -- The totals of a finished import, or {"detail": …} of a failed one.
    ADD COLUMN outcome jsonb,
    -- When the running import last said how far it was: a task that stops saying so (its
    -- instance went away) left nothing imported, as its transaction rolled back.
    ADD COLUMN progress_at timestamptz;
