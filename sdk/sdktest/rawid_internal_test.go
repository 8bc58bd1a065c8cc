package sdktest

import (
	"net/url"
	"strings"
	"testing"

	"github.com/hbdmon/hbd/sdk"
)

// TestRawIDInPath checks the detector against what the usual ways of
// building a URL make of each awkward ID.
func TestRawIDInPath(t *testing.T) {
	for _, id := range awkwardIDs {
		joined, err := url.JoinPath("http://x/_matrix/send/m.room.message", id)
		if err != nil {
			t.Fatal(err)
		}
		raw := map[string]string{
			"url.JoinPath":  joined,
			"concatenation": "http://x/send/" + id + "/end",
		}
		for how, s := range raw {
			u, err := url.Parse(s)
			if err != nil {
				continue // the notifier's Notify fails; the kit catches that separately
			}
			if !rawIDInPath(u.EscapedPath(), id) {
				t.Errorf("%s of %q gives path %q, not detected", how, id, u.EscapedPath())
			}
		}
		safe := map[string]string{
			"PathEscape": "/send/" + url.PathEscape(id) + "/end",
			"SafeID":     "/send/" + sdk.SafeID(id),
			"none":       "/send/sdktest",
		}
		for how, p := range safe {
			if rawIDInPath(p, id) {
				t.Errorf("%s path %q flagged as a raw ID", how, p)
			}
		}
		if !strings.Contains(id, "/") {
			t.Errorf("awkward id %q has no slash", id)
		}
	}
}
