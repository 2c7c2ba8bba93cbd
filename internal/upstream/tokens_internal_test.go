package upstream

import (
	"fmt"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testclock"
)

// The tokens a Client remembers stay bounded however many repositories are
// pulled: past the bound the expired ones go first, then any.
func TestRememberedTokensBounded(t *testing.T) {
	clock := testclock.New(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))
	c := New(nil, clock.Now)
	for i := range maxTokens {
		life := time.Hour
		if i%2 == 0 {
			life = time.Minute
		}
		c.keepToken(fmt.Sprintf("short-%d", i), bearer{value: "v", expires: clock.Now().Add(life)})
	}
	clock.Advance(2 * time.Minute)
	c.keepToken("new", bearer{value: "v", expires: clock.Now().Add(time.Hour)})
	if got := len(c.tokens); got != maxTokens/2+1 {
		t.Fatalf("%d tokens remembered, want the %d live ones and the new one", got, maxTokens/2)
	}
	for k, b := range c.tokens {
		if !clock.Now().Before(b.expires) {
			t.Fatalf("expired token %s kept", k)
		}
	}
	for i := range maxTokens {
		c.keepToken(fmt.Sprintf("long-%d", i), bearer{value: "v", expires: clock.Now().Add(time.Hour)})
	}
	if got := len(c.tokens); got != maxTokens {
		t.Fatalf("%d live tokens remembered, want at most %d", got, maxTokens)
	}
	if _, ok := c.tokens[fmt.Sprintf("long-%d", maxTokens-1)]; !ok {
		t.Fatal("the token just obtained was not kept")
	}
}
