-- The completeness check behind `webhooks verify`. @created_at@ is booking_requests.created_at
-- where the app's table has it, else NULL (nothing can be dated). Current definition: V14.
CREATE OR REPLACE VIEW @schema@.webhook_missing_deliveries WITH (security_invoker = true) AS
SELECT b.id                  AS booking_id,
       expected.webhook_type AS missing_type,
       b.status::text        AS booking_status,
       @created_at@ AS booking_created_at
  FROM @schema@.booking_requests b
 CROSS JOIN LATERAL (
        VALUES ('new_request'),
               (CASE WHEN b.status::text IN ('approved', 'rejected')
                      AND @created_at@ >= coalesce((SELECT decisions_checked_from
                                              FROM @schema@.webhook_verify_horizon), '-infinity')
                     THEN b.status::text END)
       ) AS expected (webhook_type)
 WHERE expected.webhook_type IS NOT NULL
   AND @created_at@ >= coalesce((SELECT checked_from FROM @schema@.webhook_verify_horizon), '-infinity')
   AND NOT EXISTS (SELECT 1
                     FROM @schema@.webhook_deliveries d
                    WHERE d.booking_id = b.id
                      AND d.webhook_type = expected.webhook_type)
