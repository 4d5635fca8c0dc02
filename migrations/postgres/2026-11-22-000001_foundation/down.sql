DROP TABLE login_failures;
DROP TABLE audit_log;
DROP TABLE invitations;
DROP TABLE api_keys;
DROP TABLE sessions;
DROP TABLE users;
DROP TABLE tenants;
