-- Failed logins, counted per account by every instance of the service together.
--
-- An account is the SHA-256 of its lowercased email, whether or not such a login exists: a
-- refusal must not tell which emails have one, and no email a stranger typed is stored. The
-- failures of the last hour are kept as an array of at most the limit's length, so a sliding
-- hour is counted exactly.
--
-- So that a stranger who spends an account's failures does not lock its owner out, an address
-- the account logged in from before is trusted by it for a while, and counts its failures apart,
-- in a budget of its own (login_trusted_addresses); only the others share the account's budget
-- (login_failures). Addresses are keyed hashes made by the service, never the address itself.
--
-- These are not tenant tables: nothing in them is a company's data, and the service role
-- cannot reach them at all, only the functions below can.

CREATE TABLE login_failures (
    email_digest   bytea PRIMARY KEY,
    failed_at      timestamptz[] NOT NULL,
    last_failed_at timestamptz NOT NULL
);
CREATE INDEX login_failures_last_failed_at ON login_failures (last_failed_at);

CREATE TABLE login_trusted_addresses (
    email_digest bytea NOT NULL,
    address_key  bytea NOT NULL,
    -- The last successful login from this address.
    trusted_at   timestamptz NOT NULL,
    failed_at    timestamptz[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (email_digest, address_key)
);
CREATE INDEX login_trusted_addresses_trusted_at ON login_trusted_addresses (trusted_at);

-- No policy: whoever is not exempt from row-level security sees and changes nothing.
ALTER TABLE login_failures ENABLE ROW LEVEL SECURITY;
ALTER TABLE login_failures FORCE ROW LEVEL SECURITY;
ALTER TABLE login_trusted_addresses ENABLE ROW LEVEL SECURITY;
ALTER TABLE login_trusted_addresses FORCE ROW LEVEL SECURITY;
REVOKE ALL ON login_failures, login_trusted_addresses FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON login_failures, login_trusted_addresses TO callingcard_definer;

-- Seconds until `p_address` may try a password on the account of `p_email` again; 0: now.
CREATE FUNCTION login_throttle_wait(p_email text, p_address bytea, p_limit integer, p_trust_seconds integer)
RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH account AS (
        SELECT sha256(convert_to(lower(p_email), 'UTF8')) AS digest
    ), budget AS (
        SELECT coalesce(
            (SELECT t.failed_at FROM public.login_trusted_addresses t, account a
             WHERE t.email_digest = a.digest AND t.address_key = p_address
               AND t.trusted_at > now() - make_interval(secs => p_trust_seconds)),
            (SELECT f.failed_at FROM public.login_failures f, account a
             WHERE f.email_digest = a.digest),
            '{}') AS failed_at
    ), recent AS (
        SELECT failure, row_number() OVER (ORDER BY failure DESC) AS newest
        FROM budget, unnest(budget.failed_at) AS failure
        WHERE failure > now() - interval '1 hour'
    )
    -- Refused until the failure that is the limit-th newest has left the hour.
    SELECT coalesce(
        (SELECT greatest(1, ceil(extract(epoch FROM failure + interval '1 hour' - now())))::integer
         FROM recent WHERE newest = p_limit),
        0)
$$;

-- Counts one failed attempt on the account of `p_email` from `p_address`: in that address's own
-- budget when the account trusts it, in the account's otherwise.
CREATE FUNCTION login_failed(p_email text, p_address bytea, p_limit integer, p_trust_seconds integer)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_digest bytea := sha256(convert_to(lower(p_email), 'UTF8'));
BEGIN
    UPDATE public.login_trusted_addresses t
    SET failed_at = ARRAY(SELECT failure FROM unnest(t.failed_at || now()) AS failure
                          WHERE failure > now() - interval '1 hour' ORDER BY failure DESC LIMIT p_limit)
    WHERE t.email_digest = v_digest AND t.address_key = p_address
      AND t.trusted_at > now() - make_interval(secs => p_trust_seconds);
    IF NOT FOUND THEN
        INSERT INTO public.login_failures AS f (email_digest, failed_at, last_failed_at)
        VALUES (v_digest, ARRAY[now()], now())
        ON CONFLICT (email_digest) DO UPDATE
        SET failed_at = ARRAY(SELECT failure FROM unnest(f.failed_at || now()) AS failure
                              WHERE failure > now() - interval '1 hour' ORDER BY failure DESC LIMIT p_limit),
            last_failed_at = now();
    END IF;
END
$$;

-- The account of `p_email` logged in from `p_address`: trust it (its own failures start over),
-- and only the ten most recent such addresses.
CREATE FUNCTION login_succeeded(p_email text, p_address bytea)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_digest bytea := sha256(convert_to(lower(p_email), 'UTF8'));
BEGIN
    INSERT INTO public.login_trusted_addresses AS t (email_digest, address_key, trusted_at)
    VALUES (v_digest, p_address, now())
    ON CONFLICT (email_digest, address_key) DO UPDATE SET trusted_at = now(), failed_at = '{}';
    DELETE FROM public.login_trusted_addresses t
    WHERE t.email_digest = v_digest
      AND t.address_key NOT IN (SELECT k.address_key FROM public.login_trusted_addresses k
                                WHERE k.email_digest = v_digest
                                ORDER BY k.trusted_at DESC LIMIT 10);
END
$$;

-- Forgets failures older than the hour and trust older than `p_trust_seconds`; how many rows.
CREATE FUNCTION login_throttle_forget(p_trust_seconds integer)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_failures bigint;
    v_trusted bigint;
BEGIN
    DELETE FROM public.login_failures WHERE last_failed_at < now() - interval '1 hour';
    GET DIAGNOSTICS v_failures = ROW_COUNT;
    DELETE FROM public.login_trusted_addresses
    WHERE trusted_at < now() - make_interval(secs => p_trust_seconds);
    GET DIAGNOSTICS v_trusted = ROW_COUNT;
    RETURN v_failures + v_trusted;
END
$$;

ALTER FUNCTION login_throttle_wait(text, bytea, integer, integer) OWNER TO callingcard_definer;
ALTER FUNCTION login_failed(text, bytea, integer, integer) OWNER TO callingcard_definer;
ALTER FUNCTION login_succeeded(text, bytea) OWNER TO callingcard_definer;
ALTER FUNCTION login_throttle_forget(integer) OWNER TO callingcard_definer;
REVOKE ALL ON FUNCTION login_throttle_wait(text, bytea, integer, integer),
    login_failed(text, bytea, integer, integer), login_succeeded(text, bytea),
    login_throttle_forget(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION login_throttle_wait(text, bytea, integer, integer),
    login_failed(text, bytea, integer, integer), login_succeeded(text, bytea),
    login_throttle_forget(integer) TO callingcard_app;
