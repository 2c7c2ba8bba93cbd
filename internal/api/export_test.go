package api

// Patterns returns the endpoint patterns New routes, "/" included.
func Patterns() []string { return newHandler(Config{}).patterns }
