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
		e := Errorf(CodeNameInvalid, "repository name %q is invalid: use lower-case letters and digits in path components separated by '/', joined within a component by '.', '_', '__' or dashes", Truncate(name, 80))
		if s, ok := suggestRepositoryName(name); ok {
			e.WithHint("name it %s", s)
		} else {
			e.WithHint("name it like team/app: lower case, digits, and '.', '_' or '-' inside a component")
		}
		return e
	}
	return nil
}

// suggestRepositoryName returns a valid repository name close to name: lower
// case, each run of other characters a '-', separators trimmed from each
// component's ends, empty components dropped. It reports false when nothing
// valid is left.
func suggestRepositoryName(name string) (string, bool) {
	var parts []string
	for _, comp := range strings.Split(strings.ToLower(name), "/") {
		var b strings.Builder
		dash := false
		for _, r := range comp {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
				b.WriteRune(r)
				dash = false
			} else if !dash {
				b.WriteByte('-')
				dash = true
			}
		}
		c := collapseSeparators(strings.Trim(b.String(), "-._"))
		if c != "" {
			parts = append(parts, c)
		}
	}
	s := strings.Join(parts, "/")
	if s == "" || len(s) > MaxRepositoryNameLength || !validRepositoryName(s) {
		return "", false
	}
	return s, true
}

// collapseSeparators makes each run of separators within a component that
// the grammar refuses ("..", "-_", "___") one '-'; what it takes (one
// separator, "__", a run of dashes) stays.
func collapseSeparators(c string) string {
	var b strings.Builder
	for i := 0; i < len(c); {
		j := i
		for j < len(c) && (c[j] == '.' || c[j] == '_' || c[j] == '-') {
			j++
		}
		switch run := c[i:j]; {
		case j == i:
			b.WriteByte(c[i])
			j++
		case len(run) == 1 || run == "__" || strings.Trim(run, "-") == "":
			b.WriteString(run)
		default:
			b.WriteByte('-')
		}
		i = j
	}
	return b.String()
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
