-- v25 (issue 25, item 8): reporters' names, phones and e-mails encrypted at rest.
-- reported_by: the signed-in account that reported (a user name, plain): the key of
--   the KPIs per worker (gridmap.events.kpis), of "my reports" and of the audit.
-- reporter, contact: the name and the phone/e-mail a citizen, the hotline or an
--   Open311 client gives; from this version they hold AES-256-GCM ciphertext
--   (gridmap.storage.fieldcrypt). Clear values stored before are encrypted by the
--   Python step the store runs right after this SQL, in the same transaction
--   (fieldcrypt.POST_MIGRATION[25]); reporter is copied into reported_by first
--   where it names an account (before v25 a report without a reporter name stored
--   the account's name there).
-- On the partitioned events table (008) the column reaches every partition, the
-- DEFAULT one included, and the index is created on each of them; the statements
-- may run twice (tests replay event-column migrations on older schemas).
ALTER TABLE events ADD COLUMN IF NOT EXISTS "reported_by" text;
UPDATE events SET reported_by = reporter
WHERE reported_by IS NULL AND reporter IN (SELECT "name" FROM users);
CREATE INDEX IF NOT EXISTS events_reported_by_idx ON events (reported_by);
