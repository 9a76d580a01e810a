-- Tile servers LISTEN on zh_data_version: every change of a data version (bump_version, district
-- loads) is announced at commit as '<layer>:<version>', so in-memory versions used for ETags are
-- fresh without a query per tile.
CREATE OR REPLACE FUNCTION zh_notify_data_version() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_notify('zh_data_version', NEW.layer || ':' || NEW.version);
    RETURN NEW;
END
$fn$;
DROP TRIGGER IF EXISTS trg_data_versions_notify ON data_versions;
CREATE TRIGGER trg_data_versions_notify AFTER INSERT OR UPDATE ON data_versions
FOR EACH ROW EXECUTE FUNCTION zh_notify_data_version();
