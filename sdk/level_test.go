package sdk

import (
	"encoding/json"
	"testing"
)

func TestLevelRankOrdersBySeverity(t *testing.T) {
	order := []Level{LevelOK, LevelUnknown, LevelWarning, LevelCritical}
	for i := 1; i < len(order); i++ {
		if order[i-1].Rank() >= order[i].Rank() {
			t.Errorf("%s (rank %d) must rank below %s (rank %d)", order[i-1], order[i-1].Rank(), order[i], order[i].Rank())
		}
	}
	for _, bad := range []Level{"", "ok", "Warning", "NONE"} {
		if bad.Rank() != -1 || bad.Valid() {
			t.Errorf("%q: rank %d valid %v, want -1 and invalid", bad, bad.Rank(), bad.Valid())
		}
	}
}

func TestParseLevel(t *testing.T) {
	for _, l := range []Level{LevelOK, LevelUnknown, LevelWarning, LevelCritical} {
		got, err := ParseLevel(string(l))
		if err != nil || got != l {
			t.Errorf("ParseLevel(%q) = %q, %v", l, got, err)
		}
	}
	if got, err := ParseLevel("critical"); err == nil {
		t.Errorf("ParseLevel(critical) = %q, want an error (levels are upper case)", got)
	}
}

func TestLevelJSONIsTheBareString(t *testing.T) {
	b, err := json.Marshal(struct{ L Level }{LevelWarning})
	if err != nil || string(b) != `{"L":"WARNING"}` {
		t.Fatalf("got %s, %v", b, err)
	}
}
