package console

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// stylesheet is console.css as rules: selector → property → value, with
// var(--x) resolved from :root.
func stylesheet(t *testing.T) map[string]map[string]string {
	t.Helper()
	b, err := files.ReadFile("assets/console.css")
	if err != nil {
		t.Fatal(err)
	}
	css := regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(string(b), "")
	css = regexp.MustCompile(`@media[^{]*\{`).ReplaceAllString(css, "") // media rules' insides count as rules
	rules := map[string]map[string]string{}
	for _, m := range regexp.MustCompile(`([^{}]+)\{([^{}]*)\}`).FindAllStringSubmatch(css, -1) {
		decls := map[string]string{}
		for d := range strings.SplitSeq(m[2], ";") {
			k, v, ok := strings.Cut(d, ":")
			if ok {
				decls[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
		for sel := range strings.SplitSeq(m[1], ",") {
			sel = strings.TrimSpace(sel)
			if rules[sel] == nil {
				rules[sel] = map[string]string{}
			}
			for k, v := range decls {
				rules[sel][k] = v
			}
		}
	}
	root := rules[":root"]
	varRef := regexp.MustCompile(`var\((--[a-z]+)\)`)
	for _, decls := range rules {
		for k, v := range decls {
			decls[k] = varRef.ReplaceAllStringFunc(v, func(s string) string { return root[varRef.FindStringSubmatch(s)[1]] })
		}
	}
	return rules
}

// colour returns the #rrggbb (or #fff) colour in a CSS value.
func colour(t *testing.T, what, v string) string {
	t.Helper()
	m := regexp.MustCompile(`#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b`).FindString(v)
	if m == "" {
		t.Fatalf("%s: no colour in %q", what, v)
	}
	if len(m) == 4 {
		m = "#" + strings.Repeat(m[1:2], 2) + strings.Repeat(m[2:3], 2) + strings.Repeat(m[3:4], 2)
	}
	return strings.ToLower(m)
}

// contrast is the WCAG 2 contrast ratio of two colours.
func contrast(a, b string) float64 {
	lum := func(h string) float64 {
		var c [3]float64
		for i := range c {
			n, _ := strconv.ParseUint(h[1+2*i:3+2*i], 16, 8)
			s := float64(n) / 255
			if s <= 0.03928 {
				c[i] = s / 12.92
			} else {
				c[i] = math.Pow((s+0.055)/1.055, 2.4)
			}
		}
		return 0.2126*c[0] + 0.7152*c[1] + 0.0722*c[2]
	}
	la, lb := lum(a), lum(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// TestContrast checks the stylesheet's colour pairs against WCAG 2.1 AA:
// text 4.5:1 on every background it is shown on (the page, the refusal and
// new-secret panels, code blocks, buttons), and the focus ring 3:1 against
// the page (1.4.11 non-text contrast).
func TestContrast(t *testing.T) {
	rules := stylesheet(t)
	get := func(sel, prop string) string {
		t.Helper()
		v, ok := rules[sel][prop]
		if !ok {
			t.Fatalf("console.css has no %s in %s", prop, sel)
		}
		return colour(t, sel+" "+prop, v)
	}
	page := get("body", "background")
	backgrounds := map[string]string{"page": page, ".refusal": get(".refusal", "background"), ".secret": get(".secret", "background"), "pre": get("pre", "background")}
	texts := map[string]string{"body": get("body", "color"), "a": get("a", "color"), ".muted": get(".muted", "color"),
		".state-expired": get(".state-expired", "color"), ".state-expiring": get(".state-expiring", "color"), ".state-ok": get(".state-ok", "color")}
	for tn, fg := range texts {
		for bn, bg := range backgrounds {
			if r := contrast(fg, bg); r < 4.5 {
				t.Errorf("%s (%s) on %s (%s): %.2f:1, under 4.5:1", tn, fg, bn, bg, r)
			}
		}
	}
	for _, sel := range []string{"button", "button.danger"} {
		fg, bg := get("button", "color"), get(sel, "background")
		if r := contrast(fg, bg); r < 4.5 {
			t.Errorf("%s text (%s) on %s: %.2f:1, under 4.5:1", sel, fg, bg, r)
		}
	}
	if fg, bg := get("button.secondary", "color"), get("button.secondary", "background"); contrast(fg, bg) < 4.5 {
		t.Errorf("button.secondary: %s on %s is %.2f:1", fg, bg, contrast(fg, bg))
	}
	for _, sel := range []string{"a:focus", "button:focus", "input:focus", "select:focus"} {
		if ring := get(sel, "outline"); contrast(ring, page) < 3 {
			t.Errorf("%s's focus ring %s on the page %s: %.2f:1, under 3:1", sel, ring, page, contrast(ring, page))
		}
	}
	if border := get("input", "border"); contrast(border, page) < 3 {
		t.Errorf("the inputs' border %s on %s: %.2f:1, under 3:1", border, page, contrast(border, page))
	}
}
