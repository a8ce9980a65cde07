-- Masking for postgres-main-1's production dump (berth:services.productionLike[].restore.masking):
-- runs in the freshly restored database, in one transaction, before it is swapped in.
UPDATE users SET email = 'user-' || id || '@example.invalid', name = 'User ' || id;
TRUNCATE sessions;
