-- Role assignments: a principal holds a role on a scope. The scope is its text
-- form ("registry", "team/*", "team/app"), as berth.ParseScope reads it; the
-- role is its name. What an assignment allows is decided in package berth, not
-- here.
--
-- principal_id is a principals.id without a foreign key, as in refresh_tokens
-- (0004), so that deleting a principal is never blocked by its assignments:
-- CreateRoleAssignment checks (and on PostgreSQL locks) the principal in its
-- transaction, DeletePrincipal deletes the assignments with the principal, and
-- FindRoleAssignments joins principals all the same.
CREATE TABLE role_assignments (
	principal_id {{key}} NOT NULL,
	scope        {{key}} NOT NULL,
	role         {{key}} NOT NULL,
	created      {{time}} NOT NULL,
	created_by   {{text}} NOT NULL, -- the assigning principal's ID, '' when berth assigned it
	PRIMARY KEY (principal_id, scope, role)
){{strict_norowid}};

-- FindRoleAssignments by scope (who holds roles on team/*).
CREATE INDEX role_assignments_scope ON role_assignments (scope, principal_id, role);
