-- Role assignments: a principal holds a role on a scope, as the SQLite
-- store's 0003. The scope is its text form ("registry", "team/*",
-- "team/app"); the role is its name. What an assignment allows is decided in
-- package berth, not here.
--
-- principal_id has no foreign key, so that a principal's assignments never
-- block deleting it: CreateRoleAssignment locks the principal's row while it
-- inserts, DeletePrincipal deletes the assignments with the principal, and
-- FindRoleAssignments joins principals all the same.
CREATE TABLE role_assignments (
	principal_id text        COLLATE "C" NOT NULL,
	scope        text        COLLATE "C" NOT NULL,
	role         text        COLLATE "C" NOT NULL,
	created      timestamptz NOT NULL,
	created_by   text        NOT NULL, -- the assigning principal's ID, '' when berth assigned it
	PRIMARY KEY (principal_id, scope, role)
);

-- FindRoleAssignments by scope (who holds roles on team/*).
CREATE INDEX role_assignments_scope ON role_assignments (scope, principal_id, role);
