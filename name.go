package berth

import (
	"regexp"
)

// MaxRepositoryNameLength bounds a repository name, as distribution and most
// clients do (a full reference must fit 255 characters with the host).
const MaxRepositoryNameLength = 255

var (
	repositoryNameRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE            = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// ValidateRepositoryName returns name_invalid unless name follows the
// distribution-spec grammar for <name>.
func ValidateRepositoryName(name string) error {
	if len(name) > MaxRepositoryNameLength {
		return Errorf(CodeNameInvalid, "repository name is %d characters long; the limit is %d", len(name), MaxRepositoryNameLength)
	}
	if !repositoryNameRE.MatchString(name) {
		return Errorf(CodeNameInvalid, "repository name %q is invalid: use lower-case letters and digits in path components separated by '/', joined within a component by '.', '_', '__' or dashes", Truncate(name, 80))
	}
	return nil
}

// ValidateTag returns tag_invalid unless tag follows the distribution-spec grammar.
func ValidateTag(tag string) error {
	if !tagRE.MatchString(tag) {
		return Errorf(CodeTagInvalid, "tag %q is invalid: up to 128 characters of [a-zA-Z0-9_.-], not starting with '.' or '-'", Truncate(tag, 80))
	}
	return nil
}

// IsDigestReference reports whether a manifest reference names a digest rather
// than a tag (tags cannot contain ':').
func IsDigestReference(ref string) bool {
	for i := 0; i < len(ref); i++ {
		if ref[i] == ':' {
			return true
		}
	}
	return false
}
