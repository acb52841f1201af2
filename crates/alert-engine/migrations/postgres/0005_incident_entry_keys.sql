-- Timeline entries that must be written once whatever the bus redelivers:
-- the notifier's delivery outcomes (`delivered:<delivery id>`,
-- `delivery_failed:<delivery id>`) and a dependent's copies of the
-- primary's entries (`copy:<digest>`). NULL for the engine's own entries,
-- which the unique index does not compare.
ALTER TABLE incident_entries ADD COLUMN entry_key TEXT;
CREATE UNIQUE INDEX incident_entries_key ON incident_entries (incident_id, entry_key);
