-- An API key acts for the user who created it (NULL: a system key, made by
-- `sluice admin apikey-create`). No foreign key: a key outlives its creator as a
-- revoked row in the list, and a creator id that matches no user never authenticates.
ALTER TABLE api_keys ADD COLUMN created_by_user_id TEXT;
CREATE INDEX api_keys_creator ON api_keys (created_by_user_id);

-- Keys made in the UI recorded their creator as `user:<email>`.
UPDATE api_keys SET created_by_user_id = (
    SELECT users.id FROM users
    WHERE users.tenant_id = api_keys.tenant_id AND 'user:' || users.email = api_keys.created_by
) WHERE created_by LIKE 'user:%';

-- A key whose creator is gone must not become a system key: it is revoked.
UPDATE api_keys SET revoked_at = strftime('%Y-%m-%d %H:%M:%f', 'now')
WHERE created_by LIKE 'user:%' AND created_by_user_id IS NULL AND revoked_at IS NULL;
