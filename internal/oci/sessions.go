package oci

import "sync"

// sessionRepos remembers the repository of the upload sessions this handler
// created or looked up lately, so that a PATCH or PUT of an upload needs no
// metadata read to check that it continues an upload of its repository: a
// session's repository never changes and its id, fresh from NewID, is never
// given to another session. Whether the upload still exists (not finished,
// cancelled or collected, perhaps through another replica) is not
// remembered: the upload store, which every such request goes to next,
// says so, and is the authority on it.
//
// At most sessionMemoEntries are kept, the oldest forgotten first; losing one
// costs a read, never a wrong answer.
type sessionRepos struct {
	mu    sync.Mutex
	repos map[string]string // upload id -> repository
	order []string          // ring of the ids in insertion order
	next  int               // where order is written next
}

// sessionMemoEntries bounds the memo: about 150 bytes each.
const sessionMemoEntries = 4096

// remember records that upload id belongs to repo.
func (m *sessionRepos) remember(id, repo string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.repos == nil {
		m.repos = map[string]string{}
		m.order = make([]string, sessionMemoEntries)
	}
	if _, ok := m.repos[id]; ok {
		return
	}
	delete(m.repos, m.order[m.next]) // the oldest, or ""
	m.order[m.next] = id
	m.next = (m.next + 1) % len(m.order)
	m.repos[id] = repo
}

// recall returns the repository of upload id, if remembered.
func (m *sessionRepos) recall(id string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	repo, ok := m.repos[id]
	return repo, ok
}

// forget drops upload id, whose session ended.
func (m *sessionRepos) forget(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.repos, id) // its slot in order is overwritten in its turn
}
