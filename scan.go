package berth

// AuditSecretRevokeLeaked is the audit action of revoking a client secret
// found leaked (berth scan --revoke): the caller presented the value, not the
// principal and secret id, so the event names what the value led to.
const AuditSecretRevokeLeaked AuditAction = "secret.revoke_leaked"
