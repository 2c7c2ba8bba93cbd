package console

import (
	"net/http"
	"sort"

	"github.com/berth-dev/berth/internal/api"
)

type scopeAssignments struct {
	Scope       string
	Assignments []api.RoleAssignment
}

// access lists every role assignment, of principals and of groups, by scope
// (owners only: the API decides).
func (h *Handler) access(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	all, err := s.api.ListRoles(r.Context(), "")
	if err != nil {
		return nil, err
	}
	by := map[string][]api.RoleAssignment{}
	for _, ra := range all {
		by[ra.Scope] = append(by[ra.Scope], ra)
	}
	out := make([]scopeAssignments, 0, len(by))
	for scope, ras := range by {
		sort.Slice(ras, func(i, j int) bool {
			if ras[i].Role != ras[j].Role {
				return ras[i].Role < ras[j].Role
			}
			return ras[i].Principal+string(ras[i].Group) < ras[j].Principal+string(ras[j].Group)
		})
		out = append(out, scopeAssignments{Scope: scope, Assignments: ras})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Scope < out[j].Scope })
	return &view{Title: "Access", Data: out}, nil
}
