-- The open API's 30-day station figures (migration 1501; services.reliability.summary).

-- A row the search trigger inserts into station_search (a station that becomes visible) takes its
-- 30-day uptime from station_reliability; the reliability job keeps existing rows in step.
-- (An INSERT ... ON CONFLICT DO UPDATE fires it too; the update path does not write up4.)
CREATE OR REPLACE FUNCTION zh_station_search_uptime() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    NEW.up4 := (SELECT r.up4 FROM station_reliability r WHERE r.station_pk = NEW.id);
    RETURN NEW;
END
$fn$;
DROP TRIGGER IF EXISTS trg_station_search_uptime ON station_search;
CREATE TRIGGER trg_station_search_uptime BEFORE INSERT ON station_search
    FOR EACH ROW EXECUTE FUNCTION zh_station_search_uptime();
