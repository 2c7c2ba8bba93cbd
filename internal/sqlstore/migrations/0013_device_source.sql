-- Where each device login was started from (the client's address as the
-- token endpoint sees it), shown on the approval page so that a person can
-- tell a login of their own from one someone else started and sent them.
ALTER TABLE device_authorizations ADD COLUMN source {{text}} NOT NULL DEFAULT '';
