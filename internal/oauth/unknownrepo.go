package oauth

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/berth-dev/berth"
)

// RepositoryLister lists the registry's repositories (a berth.ManifestStore).
type RepositoryLister interface {
	FindRepositories(ctx context.Context, last string, n int) ([]string, error)
}

// maxRepositoriesScanned bounds how many repository names a refusal reads.
const maxRepositoriesScanned = 10_000

// explainUnknownRepository turns the role_missing of a pull or delete of a
// repository that does not exist, for a caller who may list where it would
// be, into name_unknown naming the closest repositories the caller may see:
// a typo (taem/app) must not be answered with the command that grants
// access to the typo. For a caller who may not list there, the refusal stays
// as it is (it must not tell whether the repository exists), and gains only
// the closest repositories the caller may see anyway, chosen the same way
// whether it exists or not. A push is left alone: it creates repositories.
func (p *Provider) explainUnknownRepository(ctx context.Context, idx *berth.AccessIndex, typ, repo, action string, err error) error {
	be := berth.AsError(err)
	if p.Repositories == nil || idx == nil || typ != "repository" || action == "push" || be == nil || be.Code != berth.CodeRoleMissing {
		return err
	}
	var all []string
	for last := ""; len(all) < maxRepositoriesScanned; {
		page, lerr := p.Repositories.FindRepositories(ctx, last, 1000)
		if lerr != nil {
			return err // the refusal as it was: a listing failure must not hide it
		}
		all = append(all, page...)
		if len(page) < 1000 {
			break
		}
		last = page[len(page)-1]
	}
	visible := slices.DeleteFunc(slices.Clone(all), func(r string) bool { return !idx.Listable(r) })
	closest := berth.ClosestNames(repo, visible, 3)
	if idx.Listable(repo) {
		if slices.Contains(all, repo) {
			return err
		}
		e := berth.RepositoryUnknown(repo).WithDetail("name", repo)
		if len(closest) > 0 {
			e.Message += fmt.Sprintf("; the closest you may see: %s", strings.Join(closest, ", "))
			e.WithHint("check the name (did you mean %s?); berth repo list shows the repositories you may see", closest[0])
		} else {
			e.WithHint("check the name; berth repo list shows the repositories you may see")
		}
		return e
	}
	if len(closest) == 0 {
		return err
	}
	out := *be
	out.Hint = fmt.Sprintf("if the name is a typo, did you mean %s? Otherwise: %s", closest[0], be.Hint)
	return &out
}
