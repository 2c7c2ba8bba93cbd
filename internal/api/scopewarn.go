package api

import (
	"context"
	"fmt"
	"strings"

	"github.com/berth-dev/berth"
)

// scopeWarnings returns what an assignment on scope probably did not mean:
// a repository scope (team) naming no repository, while repositories exist
// under it as a namespace (team/app), is a namespace written without /*.
func (h *handler) scopeWarnings(ctx context.Context, scope berth.Scope) []string {
	if scope.Kind() != berth.ScopeRepository {
		return nil
	}
	name := scope.Name()
	if _, err := h.cfg.Store.FindTags(ctx, name, "", 1); !berth.IsCode(err, berth.CodeNameUnknown) {
		return nil // it exists (or cannot be told): the scope means it
	}
	under, err := h.cfg.Store.FindRepositories(ctx, name+"/", 3)
	if err != nil {
		return nil
	}
	var examples []string
	for _, r := range under {
		if strings.HasPrefix(r, name+"/") {
			examples = append(examples, r)
		}
	}
	if len(examples) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("no repository is named %s, but repositories exist under %s/ (%s): the scope %s is that one repository, not the namespace; for every repository under it, use --scope %s/*",
		name, name, strings.Join(examples, ", "), name, name)}
}
