-- Connector status changes to push up (ingest.upstream.push): in the transaction of each change, one
-- row per platform that takes pushes and connector (upstream_push_queue; a burst of changes of one
-- connector is one row, its changes counted so the job deletes it only when nothing changed while it
-- sent). Nothing is inserted while no platform takes pushes.
CREATE OR REPLACE FUNCTION zh_upstream_queue_status() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO upstream_push_queue AS q (platform_pk, operator_id, connector_id)
    SELECT p.id, NEW.operator_id, NEW.connector_id
    FROM upstream_platforms p
    WHERE p.enabled AND p.push_base_url IS NOT NULL
    ON CONFLICT (platform_pk, operator_id, connector_id) DO UPDATE SET changes = q.changes + 1;
    RETURN NULL;
END
$fn$;
DROP TRIGGER IF EXISTS trg_connector_status_upstream_insert ON connector_status;
CREATE TRIGGER trg_connector_status_upstream_insert AFTER INSERT ON connector_status
FOR EACH ROW EXECUTE FUNCTION zh_upstream_queue_status();
DROP TRIGGER IF EXISTS trg_connector_status_upstream_update ON connector_status;
CREATE TRIGGER trg_connector_status_upstream_update AFTER UPDATE OF status ON connector_status
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION zh_upstream_queue_status();
