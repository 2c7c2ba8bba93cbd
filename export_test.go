package berth

// WritersWaiting reports how many exclusive holders wait for d: tests wait
// for a waiter to be in place instead of sleeping.
func (l *LocalCommitLocker) WritersWaiting(d Digest) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if dl := l.locks[d]; dl != nil {
		return dl.writersWaiting
	}
	return 0
}

// HoldsCredential exposes the credential detector to the fuzz tests.
func HoldsCredential(s string) bool { return holdsCredential(s) }

// PrincipalPage is how many principals AllPrincipals reads at a time.
const PrincipalPage = principalPage
