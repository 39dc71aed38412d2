-- Bounces and complaints read back from relays and feedback loops: one row
-- per (report, failed address), so a report read twice is kept once.
-- `address` is the failed address's key ('' when the report names none);
-- `matched_by` says how the row was tied to a delivery (verp, message-id,
-- address) or that it was not (unmatched: listed, never acted on);
-- `action` is what it did (suppressed, unsubscribed, counted, none).
CREATE TABLE bounces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    report_id TEXT NOT NULL,
    address TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    diagnostic TEXT NOT NULL,
    source TEXT NOT NULL,
    matched_by TEXT NOT NULL,
    delivery_id BIGINT REFERENCES deliveries (id),
    subscriber_id BIGINT REFERENCES subscribers (id),
    action TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    UNIQUE (report_id, address)
);
CREATE INDEX bounces_address ON bounces (address, kind, received_at);
CREATE INDEX bounces_delivery ON bounces (delivery_id);
-- A report found by address looks up the deliveries to that subscriber.
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id);
-- ...and the subscriptions of an address, on any list.
CREATE INDEX subscribers_email ON subscribers (email_key);
