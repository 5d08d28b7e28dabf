-- The webhook_failures view refuses writes. Current definition: V15.
CREATE OR REPLACE TRIGGER webhook_failures_read_only
    INSTEAD OF INSERT OR UPDATE OR DELETE ON @schema@.webhook_failures
    FOR EACH ROW
    EXECUTE FUNCTION @schema@.webhook_failures_read_only()
