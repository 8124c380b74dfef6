-- The gateway console's request log (issue 21 item 5, M2.2): how long each request took, from
-- its arrival to its last byte (a stream: to its end). NULL for requests recorded before.
ALTER TABLE gateway_requests ADD COLUMN latency_ms BIGINT;
