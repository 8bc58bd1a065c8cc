package config

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // maintenance time zones on systems without zoneinfo

	"github.com/hbdmon/hbd/core/glob"
)

// MaxMaintenance bounds the maintenance list.
const MaxMaintenance = 256

// Maintenance is one recurring maintenance window: on the given days,
// from Start to End in TimeZone, the alerts of hosts matching Host and
// metrics matching Metric notify nobody (they still show), like a silence
// that comes back every week. A window whose End is not after its Start
// runs past midnight into the next day.
type Maintenance struct {
	Name     string   `koanf:"name"`
	Host     string   `koanf:"host"`   // host-name glob (required)
	Metric   string   `koanf:"metric"` // metric-path glob; "**" when empty
	Days     []string `koanf:"days"`   // weekdays ("sunday", "sun"); every day when empty
	Start    string   `koanf:"start"`  // "HH:MM"
	End      string   `koanf:"end"`    // "HH:MM"
	TimeZone string   `koanf:"time_zone"`
	Comment  string   `koanf:"comment"`
}

// Schedule is a Maintenance entry parsed: the days it starts on, its start
// and end as minutes of the day, and its location.
type Schedule struct {
	Days       [7]bool // indexed by time.Weekday
	Start, End int     // minutes after midnight
	Loc        *time.Location
}

var weekdays = map[string]time.Weekday{
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

// Schedule parses the window's days, times and time zone; the error names
// the key ("days", "start", "end", "time_zone") and the problem.
func (m Maintenance) Schedule() (Schedule, error) {
	var s Schedule
	if len(m.Days) == 0 {
		s.Days = [7]bool{true, true, true, true, true, true, true}
	}
	for _, d := range m.Days {
		d = strings.ToLower(strings.TrimSpace(d))
		found := false
		for name, wd := range weekdays {
			if d == name || (len(d) == 3 && strings.HasPrefix(name, d)) {
				s.Days[wd], found = true, true
			}
		}
		if !found {
			return s, &Error{Key: "days", Msg: fmt.Sprintf("%q is not a weekday (monday … sunday, or mon … sun)", clip(d))}
		}
	}
	var err error
	if s.Start, err = clockMinutes(m.Start); err != nil {
		return s, &Error{Key: "start", Msg: err.Error()}
	}
	if s.End, err = clockMinutes(m.End); err != nil {
		return s, &Error{Key: "end", Msg: err.Error()}
	}
	tz := m.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	if s.Loc, err = time.LoadLocation(tz); err != nil || strings.Contains(tz, "..") {
		return s, &Error{Key: "time_zone", Msg: fmt.Sprintf("unknown time zone %q (an IANA name such as Europe/Berlin, or UTC)", clip(tz))}
	}
	return s, nil
}

// clockMinutes parses "HH:MM" (00:00 to 24:00).
func clockMinutes(v string) (int, error) {
	var h, m int
	if n, err := fmt.Sscanf(strings.TrimSpace(v), "%d:%d", &h, &m); err != nil || n != 2 || len(strings.TrimSpace(v)) > 5 ||
		h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("must be a time of day as HH:MM, e.g. \"02:00\", got %q", clip(v))
	}
	return h*60 + m, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Active reports whether the window holds at now and, if so, when that
// occurrence ends.
func (s Schedule) Active(now time.Time) (time.Time, bool) {
	local := now.In(s.Loc)
	y, mo, d := local.Date()
	// The occurrence that started today or, for windows past midnight
	// (and 24h ones), yesterday.
	for back := 0; back <= 1; back++ {
		day := time.Date(y, mo, d-back, 0, 0, 0, 0, s.Loc)
		if !s.Days[day.Weekday()] {
			continue
		}
		start, end := s.bounds(day)
		if !now.Before(start) && now.Before(end) {
			return end, true
		}
	}
	return time.Time{}, false
}

// Next returns the start and end of the next occurrence that has not ended
// at now (the current one when active).
func (s Schedule) Next(now time.Time) (time.Time, time.Time) {
	local := now.In(s.Loc)
	y, mo, d := local.Date()
	for i := -1; i <= 8; i++ {
		day := time.Date(y, mo, d+i, 0, 0, 0, 0, s.Loc)
		if !s.Days[day.Weekday()] {
			continue
		}
		start, end := s.bounds(day)
		if now.Before(end) {
			return start, end
		}
	}
	return time.Time{}, time.Time{}
}

// bounds is the occurrence starting on day (midnight in s.Loc).
func (s Schedule) bounds(day time.Time) (time.Time, time.Time) {
	y, mo, d := day.Date()
	start := time.Date(y, mo, d, 0, s.Start, 0, 0, s.Loc)
	endDay := d
	if s.End <= s.Start {
		endDay++
	}
	return start, time.Date(y, mo, endDay, 0, s.End, 0, 0, s.Loc)
}

func (c *Config) validateMaintenance() error {
	if len(c.Maintenance) > MaxMaintenance {
		return &Error{Key: "maintenance", Msg: fmt.Sprintf("at most %d windows, got %d", MaxMaintenance, len(c.Maintenance))}
	}
	for i, m := range c.Maintenance {
		key := fmt.Sprintf("maintenance.%d", i)
		if m.Host == "" {
			return &Error{Key: key + ".host", Msg: "required: a host name or glob, e.g. \"web*\""}
		}
		if _, err := glob.Compile(m.Host); err != nil {
			return &Error{Key: key + ".host", Msg: err.Error()}
		}
		if m.Metric != "" {
			if _, err := glob.Compile(m.Metric); err != nil {
				return &Error{Key: key + ".metric", Msg: err.Error()}
			}
		}
		if len(m.Name) > 128 || len(m.Comment) > 1024 || len(m.Host) > 256 || len(m.Metric) > 256 {
			return &Error{Key: key, Msg: "name (128), comment (1024), host and metric (256 bytes) are too long"}
		}
		if m.Start == "" || m.End == "" {
			return &Error{Key: key + ".start", Msg: "start and end are required, e.g. start: \"02:00\", end: \"04:00\""}
		}
		if _, err := m.Schedule(); err != nil {
			e := err.(*Error)
			e.Key = key + "." + e.Key
			return e
		}
	}
	return nil
}

// StatusPage is status_page: a public, read-only page of chosen hosts.
type StatusPage struct {
	// Title heads the page; "Status" when empty.
	Title string `koanf:"title"`
	// Hosts are the hosts shown, in this order (names from watchhosts or
	// dynamic hosts). Empty: no status page.
	Hosts []string `koanf:"hosts"`
}

// MaxStatusHosts bounds status_page.hosts.
const MaxStatusHosts = 200

func (c *Config) validateStatusPage() error {
	sp := c.StatusPage
	if len(sp.Title) > 200 {
		return &Error{Key: "status_page.title", Msg: "longer than 200 bytes"}
	}
	if len(sp.Hosts) > MaxStatusHosts {
		return &Error{Key: "status_page.hosts", Msg: fmt.Sprintf("at most %d hosts, got %d", MaxStatusHosts, len(sp.Hosts))}
	}
	seen := map[string]bool{}
	for _, h := range sp.Hosts {
		if !ValidHostName(h) {
			return &Error{Key: "status_page.hosts", Msg: fmt.Sprintf("%q is not a host name", clip(h))}
		}
		if seen[h] {
			return &Error{Key: "status_page.hosts", Msg: fmt.Sprintf("%q is listed twice", h)}
		}
		seen[h] = true
	}
	return nil
}
