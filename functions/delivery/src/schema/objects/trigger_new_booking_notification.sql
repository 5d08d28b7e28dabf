-- AFTER INSERT on the bookings: capture (notify_new_booking). Current definition: V3.
CREATE OR REPLACE TRIGGER trigger_new_booking_notification
    AFTER INSERT ON @schema@.booking_requests
    FOR EACH ROW
    EXECUTE FUNCTION @schema@.notify_new_booking()
