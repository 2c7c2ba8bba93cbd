-- Role assignments: a principal holds a role on a scope. The scope is its text
-- form ("registry", "team/*", "team/app"), as berth.ParseScope reads it; the
-- role is its name. What an assignment allows is decided in package berth, not
-- here.
--
-- principal_id is a principals.id without a foreign key, as in refresh_tokens
-- (0004), so that deleting a principal is never blocked by its assignments:
-- CreateRoleAssignment checks that the principal exists in its transaction,
-- and FindRoleAssignments joins principals, so the assignments of a deleted
-- principal are never returned (IDs are never reused). DeletePrincipal should
-- delete them too; until it does they are dead rows.
CREATE TABLE role_assignments (
	principal_id TEXT    NOT NULL,
	scope        TEXT    NOT NULL,
	role         TEXT    NOT NULL,
	created      INTEGER NOT NULL,
	created_by   TEXT    NOT NULL, -- the assigning principal's ID, '' when berth assigned it
	PRIMARY KEY (principal_id, scope, role)
) STRICT, WITHOUT ROWID;

-- FindRoleAssignments by scope (who holds roles on team/*).
CREATE INDEX role_assignments_scope ON role_assignments (scope, principal_id, role);
