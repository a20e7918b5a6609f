-- v31 (issue 25): an API connected as a LOGIN member of ``gridmap_app`` signs users in.
--
-- Migration 026 took the password and API-key hashes of ``users`` away from the
-- application role, so an untrusted store (``PostGISStore(trusted=False)``) could
-- no longer check a password. Argon2id hashes carry their own salt and cost, so
-- the check cannot happen in SQL; what the application role gets instead is as
-- little as a sign-in needs, through two SECURITY DEFINER functions owned by the
-- owner of ``users`` (search_path pinned, EXECUTE revoked from PUBLIC and granted
-- to ``gridmap_app`` only):
--
-- * ``gridmap_login_account(name)``: the account row of ONE user name (already
--   normalised by the caller) with its password hash; a disabled account's hash
--   is NULL (never leaves the database). One name per transaction: a second call
--   in the same transaction raises, so ``SELECT … FROM users, gridmap_login_account
--   (users.name)`` dumps nothing. (A client holding the API's credentials can still
--   ask one name per transaction: the price of an API that checks any user's
--   password itself. Tables, the other column grants and row-level security are
--   unchanged.)
-- * ``gridmap_api_key_account(digest)``: the account (no hash) whose API key has
--   this SHA-256 digest, if it is not disabled. Gives nothing to whoever does not
--   hold a key already.
--
-- The trusted store (the schema owner outside a scope) keeps reading ``users`` itself.

CREATE OR REPLACE FUNCTION gridmap_login_account(user_name text)
RETURNS TABLE (
    id bigint, "name" text, "role" text, areas text[], can_unmask boolean,
    disabled boolean, password_hash text
)
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    -- One account per transaction: this backend holds the transaction-level
    -- advisory lock (shared, so concurrent sign-ins of other sessions never wait)
    -- from the first call until the transaction ends; nobody can release it earlier.
    IF EXISTS (
        SELECT 1 FROM pg_catalog.pg_locks l
        WHERE l.locktype = 'advisory' AND l.pid = pg_catalog.pg_backend_pid()
          AND l.classid = 7262612 AND l.objid = 31 AND l.objsubid = 2
    ) THEN
        RAISE EXCEPTION 'gridmap_login_account reads one account per transaction'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM pg_catalog.pg_advisory_xact_lock_shared(7262612, 31);
    RETURN QUERY
        SELECT u.id, u."name", u."role", u.areas, u.can_unmask, u.disabled,
               CASE WHEN u.disabled THEN NULL ELSE u.password_hash END
        FROM users u
        WHERE u."name" = user_name
        LIMIT 1;
END
$$;

CREATE OR REPLACE FUNCTION gridmap_api_key_account(key_digest text)
RETURNS TABLE (
    id bigint, "name" text, "role" text, areas text[], can_unmask boolean, disabled boolean
)
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT u.id, u."name", u."role", u.areas, u.can_unmask, u.disabled
    FROM users u
    WHERE u.api_key_hash = key_digest AND NOT u.disabled
    LIMIT 1
$$;

-- Owned by the owner of ``users`` (the role that ran 004), whoever runs this one.
DO $$
DECLARE
    owner text := (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'users'::regclass);
BEGIN
    IF owner IS DISTINCT FROM current_user THEN
        EXECUTE format('ALTER FUNCTION gridmap_login_account(text) OWNER TO %I', owner);
        EXECUTE format('ALTER FUNCTION gridmap_api_key_account(text) OWNER TO %I', owner);
    END IF;
END
$$;

REVOKE ALL ON FUNCTION gridmap_login_account(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION gridmap_api_key_account(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gridmap_login_account(text) TO gridmap_app;
GRANT EXECUTE ON FUNCTION gridmap_api_key_account(text) TO gridmap_app;
