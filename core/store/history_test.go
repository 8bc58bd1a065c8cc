package store

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/alert/record"
)

// keys lists episodes as "host metric start" for comparisons.
func keys(eps []record.Episode) []string {
	out := []string{}
	for _, ep := range eps {
		out = append(out, fmt.Sprintf("%s %s %g", ep.Host, ep.Metric, ep.Start))
	}
	return out
}

func episodes(t *testing.T, s *Store, q record.EpisodeQuery) []record.Episode {
	t.Helper()
	eps, err := s.Episodes(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return eps
}

func TestEpisodesSurviveRestartAndUpdateInPlace(t *testing.T) {
	forBackends(t, testEpisodesSurviveRestartAndUpdateInPlace)
}

func testEpisodesSurviveRestartAndUpdateInPlace(t *testing.T, be backend) {
	dir := be.place(t)
	ctx := context.Background()
	s, err := be.open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	open1 := record.Episode{Host: "web01", Metric: "cpu_monitor.cpu_percent", Start: 100, WorstLevel: "WARNING", Peak: 85.5, HasPeak: true, Text: "web01 cpu 85.5 ≥ 80"}
	s.SaveEpisodes(open1)
	// The same episode gets worse, then is acknowledged: one row, updated.
	open1.WorstLevel, open1.Peak, open1.Text = "CRITICAL", 97.2, "web01 cpu 97.2 ≥ 95"
	s.SaveEpisodes(open1)
	open1.AckBy = "alice"
	s.SaveEpisodes(open1)
	done := record.Episode{Host: "web02", Metric: "heartbeat.host", Start: 50, End: 180, WorstLevel: "CRITICAL", Peak: 2, HasPeak: true}
	unknown := record.Episode{Host: "web02", Metric: "disk_monitor./.percent", Start: 60, End: 70, WorstLevel: "UNKNOWN"}
	long := record.Episode{Host: "web02", Metric: "memory_monitor.percent", Start: 10, WorstLevel: "WARNING", Text: strings.Repeat("x", MaxEpisodeText+10)}
	if err := s.SaveEpisodesSync(ctx, done, unknown, long); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = be.openAt(t, dir, 10)
	got, err := s.OpenEpisodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	long.Text = long.Text[:MaxEpisodeText]
	for i := range got {
		got[i].ID = 0
	}
	if want := []record.Episode{long, open1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("open episodes after restart:\n got %+v\nwant %+v", got, want)
	}
	all := episodes(t, s, record.EpisodeQuery{})
	if want := []string{"web01 cpu_monitor.cpu_percent 100", "web02 disk_monitor./.percent 60", "web02 heartbeat.host 50", "web02 memory_monitor.percent 10"}; !reflect.DeepEqual(keys(all), want) {
		t.Fatalf("newest first: %v", keys(all))
	}
	if all[1].HasPeak || all[1].End != 70 || !all[0].Open() || all[2].Open() {
		t.Fatalf("nulls not kept: %+v", all)
	}

	// The episode ends: still one row.
	open1.End = 300
	if err := s.SaveEpisodesSync(ctx, open1); err != nil {
		t.Fatal(err)
	}
	resolved := episodes(t, s, record.EpisodeQuery{State: record.EpisodesResolved, Host: "web01"})
	if len(resolved) != 1 || resolved[0].End != 300 || resolved[0].AckBy != "alice" || resolved[0].WorstLevel != "CRITICAL" || resolved[0].Peak != 97.2 {
		t.Fatalf("ended episode: %+v", resolved)
	}
	if n := len(episodes(t, s, record.EpisodeQuery{})); n != 4 {
		t.Fatalf("%d rows, want 4", n)
	}
}

func TestEpisodeQueries(t *testing.T) { forBackends(t, testEpisodeQueries) }

func testEpisodeQueries(t *testing.T, be backend) {
	s := be.openAt(t, be.place(t), 10)
	ctx := context.Background()
	var eps []record.Episode
	// Two episodes start at the same time on different metrics, so the
	// cursor needs the id as well as the start.
	for i, start := range []float64{100, 200, 200, 300, 400} {
		ep := record.Episode{Host: "web01", Metric: fmt.Sprintf("m%d", i), Start: start, End: start + 50, WorstLevel: "WARNING"}
		if i%2 == 1 {
			ep.Host = "web02"
		}
		if i == 4 {
			ep.End = 0
		}
		eps = append(eps, ep)
	}
	if err := s.SaveEpisodesSync(ctx, eps...); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		q    record.EpisodeQuery
		want []string
	}{
		{"All", record.EpisodeQuery{}, []string{"web01 m4 400", "web02 m3 300", "web01 m2 200", "web02 m1 200", "web01 m0 100"}},
		{"Host", record.EpisodeQuery{Host: "web01", Limit: 2}, []string{"web01 m4 400", "web01 m2 200"}},
		{"Hosts", record.EpisodeQuery{Hosts: []string{"web02", "db01"}}, []string{"web02 m3 300", "web02 m1 200"}},
		{"NoHosts", record.EpisodeQuery{Hosts: []string{}}, []string{}},
		{"Open", record.EpisodeQuery{State: record.EpisodesOpen}, []string{"web01 m4 400"}},
		{"Resolved", record.EpisodeQuery{State: record.EpisodesResolved, Limit: 2}, []string{"web02 m3 300", "web01 m2 200"}},
		// [240, 320] overlaps m3 (300–350) and the ends of m2 and m1 (200–250).
		{"Window", record.EpisodeQuery{Since: 240, Until: 320}, []string{"web02 m3 300", "web01 m2 200", "web02 m1 200"}},
		{"WindowAfterEnds", record.EpisodeQuery{Since: 251, Until: 320}, []string{"web02 m3 300"}},
		{"SinceKeepsOpen", record.EpisodeQuery{Since: 1000}, []string{"web01 m4 400"}},
		{"Until", record.EpisodeQuery{Until: 200}, []string{"web01 m2 200", "web02 m1 200", "web01 m0 100"}},
	} {
		if got := keys(episodes(t, s, tc.q)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, err := s.Episodes(ctx, record.EpisodeQuery{State: "sideways"}); err == nil {
		t.Error("an unknown state was accepted")
	}

	// Paging two at a time walks every episode once, in order.
	var walked []string
	var after *record.EpisodeCursor
	for page := 0; page < 5; page++ {
		got := episodes(t, s, record.EpisodeQuery{Limit: 2, After: after})
		walked = append(walked, keys(got)...)
		if len(got) < 2 {
			break
		}
		last := got[len(got)-1]
		after = &record.EpisodeCursor{Start: last.Start, ID: last.ID}
	}
	if want := []string{"web01 m4 400", "web02 m3 300", "web01 m2 200", "web02 m1 200", "web01 m0 100"}; !reflect.DeepEqual(walked, want) {
		t.Fatalf("paged: %v", walked)
	}
}

func TestRetentionTrimsEndedEpisodesOnly(t *testing.T) {
	forBackends(t, testRetentionTrimsEndedEpisodesOnly)
}

func testRetentionTrimsEndedEpisodesOnly(t *testing.T, be backend) {
	s := be.openAt(t, be.place(t), 10)
	ctx := context.Background()
	old := float64(time.Now().Add(-48 * time.Hour).Unix())
	recent := float64(time.Now().Add(-time.Hour).Unix())
	if err := s.SaveEpisodesSync(ctx,
		record.Episode{Host: "web01", Metric: "old.ended", Start: old, End: old + 60, WorstLevel: "WARNING"},
		record.Episode{Host: "web01", Metric: "old.open", Start: old, WorstLevel: "CRITICAL"},
		record.Episode{Host: "web01", Metric: "recent.ended", Start: old, End: recent, WorstLevel: "WARNING"},
	); err != nil {
		t.Fatal(err)
	}
	n, err := s.Trim(ctx, time.Now().Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("trimmed %d, %v; want 1", n, err)
	}
	if got := keys(episodes(t, s, record.EpisodeQuery{})); !reflect.DeepEqual(got, []string{
		fmt.Sprintf("web01 recent.ended %g", old), fmt.Sprintf("web01 old.open %g", old),
	}) {
		t.Fatalf("after trim: %v", got)
	}
}

func TestEpisodesAreBounded(t *testing.T) { forBackends(t, testEpisodesAreBounded) }

func testEpisodesAreBounded(t *testing.T, be backend) {
	defer func(n int) { maxEpisodes = n }(maxEpisodes)
	maxEpisodes = 3
	s := be.openAt(t, be.place(t), 10)
	ctx := context.Background()
	// The oldest episode is still open: it stays however many follow.
	if err := s.SaveEpisodesSync(ctx, record.Episode{Host: "h", Metric: "open", Start: 1, WorstLevel: "CRITICAL"}); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 8; i++ {
		if err := s.SaveEpisodesSync(ctx, record.Episode{Host: "h", Metric: "m", Start: float64(i), End: float64(i) + 0.5, WorstLevel: "WARNING"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := keys(episodes(t, s, record.EpisodeQuery{Limit: 100})); !reflect.DeepEqual(got, []string{"h m 8", "h m 7", "h m 6", "h open 1"}) {
		t.Fatalf("kept %v", got)
	}
}
