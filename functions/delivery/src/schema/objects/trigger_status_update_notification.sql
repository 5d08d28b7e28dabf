-- AFTER UPDATE OF status on the bookings, only for a real change into a decision: capture
-- (notify_status_update). Current definition: V3.
CREATE OR REPLACE TRIGGER trigger_status_update_notification
    AFTER UPDATE OF status ON @schema@.booking_requests
    FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN ('approved', 'rejected'))
    EXECUTE FUNCTION @schema@.notify_status_update()
