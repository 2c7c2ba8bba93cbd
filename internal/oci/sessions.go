package oci

import "github.com/berth-dev/berth/internal/bounded"

// sessionRepos remembers the repository of the upload sessions this handler
// created or looked up lately (upload id -> repository), so that a PATCH or
// PUT of an upload needs no metadata read to check that it continues an
// upload of its repository: a session's repository never changes and its
// id, fresh from NewID, is never given to another session. Whether the
// upload still exists (not finished, cancelled or collected, perhaps
// through another replica) is not remembered: the upload store, which every
// such request goes to next, says so, and is the authority on it. It holds
// at most bounded.DefaultMax sessions; losing one costs a read.
type sessionRepos = bounded.Map[string, string]
