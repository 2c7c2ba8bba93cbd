package api

// Patterns returns the endpoint patterns New routes, "/" included.
func Patterns() []string { return newHandler(Config{}).patterns }

// Audited reports whether the endpoint pattern records an audit event.
func Audited(pattern string) bool { _, ok := auditActions[pattern]; return ok }
