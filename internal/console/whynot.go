package console

import (
	"net/http"

	"github.com/berth-dev/berth"
	"github.com/berth-dev/berth/internal/api"
)

type whyNotData struct {
	Principal, Action, Repository string
	Actions                       []string
	Check                         *api.AccessCheck
}

// whyNot is the access checker: the decision for a principal, an action and
// a repository, as berth access check explains it (GET /api/v1/access/check
// decides, with its own rule on who may ask about whom). A GET form: asking
// changes nothing.
func (h *Handler) whyNot(w http.ResponseWriter, r *http.Request, s *session) (*view, error) {
	q := r.URL.Query()
	d := whyNotData{Principal: q.Get("principal"), Action: q.Get("action"), Repository: q.Get("repository"),
		Actions: []string{berth.DockerActionPull, berth.DockerActionPush, berth.DockerActionDelete}}
	for _, a := range berth.Actions {
		d.Actions = append(d.Actions, string(a))
	}
	if d.Principal == "" && d.Action == "" && d.Repository == "" {
		d.Principal = s.caller.Actor.Name
		return &view{Title: "Why not?", Data: d}, nil
	}
	c, err := s.api.CheckAccess(r.Context(), d.Principal, d.Action, d.Repository)
	if err != nil {
		return nil, err
	}
	d.Check = &c
	return &view{Title: "Why not?", Data: d}, nil
}
