-- The index of stations.updated_at, kept outside stations (migration 1511): station_updates holds
-- each station's updated_at, written by these statement-level triggers in the transaction of every
-- INSERT or UPDATE of stations. An index on stations.updated_at itself made every status push's
-- station UPDATE a non-HOT update (a new entry in each of the table's fifteen indexes, three of them
-- trigram GIN indexes, for a change of its free count); without it those updates are HOT and only
-- this narrow row moves. Readers: the open API's updated_since, the dumps' Last-Modified.
CREATE OR REPLACE FUNCTION zh_station_updates() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO station_updates AS u (station_pk, updated_at)
    SELECT n.id, n.updated_at FROM new_rows n
    ON CONFLICT (station_pk) DO UPDATE SET updated_at = EXCLUDED.updated_at
    WHERE u.updated_at IS DISTINCT FROM EXCLUDED.updated_at;
    RETURN NULL;
END
$fn$;
DROP TRIGGER IF EXISTS trg_station_updates_ins ON stations;
CREATE TRIGGER trg_station_updates_ins AFTER INSERT ON stations REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION zh_station_updates();
DROP TRIGGER IF EXISTS trg_station_updates_upd ON stations;
CREATE TRIGGER trg_station_updates_upd AFTER UPDATE ON stations REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION zh_station_updates();
