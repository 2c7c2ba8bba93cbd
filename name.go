package berth

import "strings"

// MaxRepositoryNameLength bounds a repository name, as distribution and most
// clients do (a full reference must fit 255 characters with the host).
const MaxRepositoryNameLength = 255

// The distribution-spec grammar, which validRepositoryName and validTag
// follow by hand (every request's name and most references pass through
// them; a regular expression cost a few percent of a manifest GET's CPU):
//
//	name: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
//	tag:  [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}

func validRepositoryName(name string) bool {
	for component := range strings.SplitSeq(name, "/") {
		if !validNameComponent(component) {
			return false
		}
	}
	return true
}

// validNameComponent: runs of [a-z0-9] joined by one separator each: '.',
// '_', '__' or any number of '-'.
func validNameComponent(c string) bool {
	i := 0
	for {
		start := i
		for i < len(c) && (c[i] >= 'a' && c[i] <= 'z' || c[i] >= '0' && c[i] <= '9') {
			i++
		}
		if i == start {
			return false // empty, or a separator first or after another
		}
		if i == len(c) {
			return true
		}
		switch c[i] {
		case '.':
			i++
		case '_':
			i++
			if i < len(c) && c[i] == '_' {
				i++
			}
		case '-':
			for i < len(c) && c[i] == '-' {
				i++
			}
		default:
			return false
		}
	}
}

func validTag(tag string) bool {
	if len(tag) == 0 || len(tag) > 128 || tag[0] == '.' || tag[0] == '-' {
		return false
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// ValidateRepositoryName returns name_invalid unless name follows the
// distribution-spec grammar for <name>.
func ValidateRepositoryName(name string) error {
	if len(name) > MaxRepositoryNameLength {
		return Errorf(CodeNameInvalid, "repository name is %d characters long; the limit is %d", len(name), MaxRepositoryNameLength)
	}
	if !validRepositoryName(name) {
		return Errorf(CodeNameInvalid, "repository name %q is invalid: use lower-case letters and digits in path components separated by '/', joined within a component by '.', '_', '__' or dashes", Truncate(name, 80))
	}
	return nil
}

// ValidateTag returns tag_invalid unless tag follows the distribution-spec grammar.
func ValidateTag(tag string) error {
	if !validTag(tag) {
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
