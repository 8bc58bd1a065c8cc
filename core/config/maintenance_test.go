package config

import (
	"strings"
	"testing"
	"time"
)

func TestMaintenanceAndStatusPageLoad(t *testing.T) {
	cfg, err := Load(write(t, `
maintenance:
  - name: patching
    host: "web*"
    days: [sunday, wed]
    start: "02:00"
    end: "04:00"
    time_zone: Europe/Berlin
status_page:
  title: Shop status
  hosts: [web01, db01]
`), []string{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Maintenance) != 1 || cfg.StatusPage.Title != "Shop status" || strings.Join(cfg.StatusPage.Hosts, ",") != "web01,db01" {
		t.Fatalf("loaded %+v %+v", cfg.Maintenance, cfg.StatusPage)
	}
	s, err := cfg.Maintenance[0].Schedule()
	if err != nil {
		t.Fatal(err)
	}
	if !s.Days[time.Sunday] || !s.Days[time.Wednesday] || s.Days[time.Monday] || s.Start != 120 || s.End != 240 || s.Loc.String() != "Europe/Berlin" {
		t.Fatalf("schedule %+v", s)
	}
}

func TestMaintenanceAndStatusPageErrorsNameTheKey(t *testing.T) {
	for _, c := range []struct{ body, key string }{
		{"maintenance:\n  - {start: \"02:00\", end: \"03:00\"}\n", "maintenance.0.host"},
		{"maintenance:\n  - {host: \"web***\", start: \"02:00\", end: \"03:00\"}\n", "maintenance.0.host"},
		{"maintenance:\n  - {host: x, start: \"2am\", end: \"03:00\"}\n", "maintenance.0.start"},
		{"maintenance:\n  - {host: x, start: \"02:00\", end: \"25:00\"}\n", "maintenance.0.end"},
		{"maintenance:\n  - {host: x, start: \"02:00\", end: \"03:00\", days: [someday]}\n", "maintenance.0.days"},
		{"maintenance:\n  - {host: x, start: \"02:00\", end: \"03:00\", time_zone: Mars/Base}\n", "maintenance.0.time_zone"},
		{"maintenance:\n  - {host: x, start: \"02:00\", end: \"03:00\", every: week}\n", "maintenance.0.every"},
		{"status_page:\n  hosts: [\"bad host\"]\n", "status_page.hosts"},
		{"status_page:\n  hosts: [a, a]\n", "status_page.hosts"},
		{"status_page:\n  titel: x\n", "status_page.titel"},
	} {
		_, err := Load(write(t, c.body), []string{})
		if err == nil || !strings.Contains(err.Error(), ": "+c.key+":") {
			t.Errorf("%q: error %v, want key %s", c.body, err, c.key)
		}
	}
}
