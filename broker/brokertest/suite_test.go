package brokertest

import (
	"regexp"
	"testing"
)

// TestBehaviours: the behaviour names are unique, usable with go test -run
// and Features.Skip, and the suite keeps at least the behaviours it
// promises.
func TestBehaviours(t *testing.T) {
	names := Behaviours()
	if len(names) < 40 {
		t.Errorf("%d behaviours, want at least 40", len(names))
	}
	valid := regexp.MustCompile(`^[A-Z][A-Za-z0-9]+$`)
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("behaviour %q listed twice", n)
		}
		seen[n] = true
		if !valid.MatchString(n) {
			t.Errorf("behaviour name %q is not a plain CamelCase word", n)
		}
	}
}

// TestFeaturesDefaults: the zero Features gets the documented defaults, and
// set fields are kept.
func TestFeaturesDefaults(t *testing.T) {
	f := Features{}.withDefaults()
	if f.MaxMessageSize != DefaultMaxMessageSize || f.SettleTime != DefaultSettleTime || f.Timeout != DefaultTimeout ||
		f.AckWait != DefaultAckWait || f.ClockSkew != DefaultClockSkew {
		t.Errorf("defaults: %+v", f)
	}
	g := Features{MaxMessageSize: 10, SettleTime: 1, Timeout: 2, AckWait: 3, ClockSkew: 4}.withDefaults()
	if g.MaxMessageSize != 10 || g.SettleTime != 1 || g.Timeout != 2 || g.AckWait != 3 || g.ClockSkew != 4 {
		t.Errorf("set fields were replaced: %+v", g)
	}
}
