package cli

import (
	"testing"
	"time"

	"github.com/berth-dev/berth"
)

func TestConfigSessionLifetime(t *testing.T) {
	cfg, err := loadConfig(configFlags{file: writeConfig(t, "federation:\n  session_lifetime: 12h\n")}, mapEnv(nil))
	if err != nil || cfg.Federation.SessionLifetime != 12*time.Hour {
		t.Fatalf("session_lifetime 12h: %+v, %v", cfg.Federation, err)
	}
	for _, bad := range []string{"1m", "8d", "-1h", "0s"} {
		_, err := loadConfig(configFlags{file: writeConfig(t, "federation:\n  session_lifetime: "+bad+"\n")}, mapEnv(nil))
		if !berth.IsCode(err, berth.CodeInvalid) {
			t.Errorf("session_lifetime %s: %v, want invalid", bad, err)
		}
	}
}
