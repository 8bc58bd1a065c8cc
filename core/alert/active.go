package alert

// The active index: the states that are not OK, kept in the order the API
// lists them, with their counts, updated on every level change, so the
// alert list and its summary cost O(answer), not O(fleet).

import (
	"cmp"
	"slices"
	"sync"

	"github.com/hbdmon/hbd/sdk/level"
)

// Counts counts non-OK alert states by level.
type Counts struct {
	Critical, Warning, Unknown int
}

// Total is the number of non-OK states counted.
func (c Counts) Total() int { return c.Critical + c.Warning + c.Unknown }

// add counts n states of lv (n may be negative).
func (c *Counts) add(lv level.Level, n int) {
	switch lv {
	case level.Critical:
		c.Critical += n
	case level.Warning:
		c.Warning += n
	case level.Unknown:
		c.Unknown += n
	}
}

// activeLevels are the non-OK levels in list order: most severe first.
var activeLevels = [...]level.Level{level.Critical, level.Warning, level.Unknown}

// activeSlot is the list of lv in activeIndex.lists; -1 for OK.
func activeSlot(lv level.Level) int {
	for i, l := range activeLevels {
		if l == lv {
			return i
		}
	}
	return -1
}

// activeEntry is a non-OK state as filed: its sort key is copied, so it
// can be found again after the state changed.
type activeEntry struct {
	since        float64
	host, metric string
	st           *state
}

func compareEntries(a, b activeEntry) int {
	if c := cmp.Compare(a.since, b.since); c != 0 {
		return c
	}
	if c := cmp.Compare(a.host, b.host); c != 0 {
		return c
	}
	return cmp.Compare(a.metric, b.metric)
}

// filed is a state's entry as filed and the list it is in.
type filed struct {
	activeEntry
	slot int
}

// activeIndex keeps every non-OK state, one list per level, each sorted
// oldest first (then by host and metric), with counts overall and per
// host. Lock order: a host's mu, then mu (update runs under the host
// lock); readers never take a host lock while holding mu. The zero value
// is ready to use.
type activeIndex struct {
	mu    sync.RWMutex
	lists [len(activeLevels)][]activeEntry
	filed map[*state]filed // how each state is filed
	hosts map[string]*Counts
	total Counts
}

// update files st under its current level and since, moving or removing
// it as needed. st's host must be locked.
func (x *activeIndex) update(st *state) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeLocked(st)
	s := activeSlot(st.level)
	if s < 0 {
		return
	}
	if x.filed == nil {
		x.filed, x.hosts = map[*state]filed{}, map[string]*Counts{}
	}
	en := activeEntry{since: st.since, host: st.host, metric: st.metric, st: st}
	l := x.lists[s]
	i, _ := slices.BinarySearchFunc(l, en, compareEntries)
	x.lists[s] = slices.Insert(l, i, en)
	x.filed[st] = filed{en, s}
	hc := x.hosts[st.host]
	if hc == nil {
		hc = &Counts{}
		x.hosts[st.host] = hc
	}
	hc.add(st.level, 1)
	x.total.add(st.level, 1)
}

// reset empties the index.
func (x *activeIndex) reset() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.lists = [len(activeLevels)][]activeEntry{}
	x.filed, x.hosts, x.total = nil, nil, Counts{}
}

// remove drops st (forgotten, or no longer evaluated). st's host must be
// locked, or e.mu held for writing.
func (x *activeIndex) remove(st *state) {
	x.mu.Lock()
	x.removeLocked(st)
	x.mu.Unlock()
}

func (x *activeIndex) removeLocked(st *state) {
	f, ok := x.filed[st]
	if !ok {
		return
	}
	en, s := f.activeEntry, f.slot
	l := x.lists[s]
	if i, found := slices.BinarySearchFunc(l, en, compareEntries); found && l[i].st == st {
		x.lists[s] = slices.Delete(l, i, i+1)
	}
	delete(x.filed, st)
	lv := activeLevels[s]
	x.total.add(lv, -1)
	if hc := x.hosts[en.host]; hc != nil {
		hc.add(lv, -1)
		if hc.Total() == 0 {
			delete(x.hosts, en.host)
		}
	}
}

// AlertQuery selects a page of the active alerts (ActivePage).
type AlertQuery struct {
	// Visible reports whether the caller may see a host; nil: every host.
	// It decides what Summary counts and what is listed.
	Visible func(host string) bool
	// Levels lists only these levels; empty: every non-OK level.
	Levels []level.Level
	// Host lists only the hosts it accepts (e.g. a glob); nil: all.
	Host func(host string) bool
	// Offset skips that many of the selected alerts; Limit lists at most
	// that many (0: all).
	Offset, Limit int
}

// AlertPage is a page of the active alerts.
type AlertPage struct {
	// Alerts are the selected alerts from Offset, at most Limit, most
	// severe first, then oldest first.
	Alerts []Status
	// Matched counts the alerts Levels and Host select (of visible hosts),
	// before Offset and Limit.
	Matched int
	// Summary counts every non-OK state of the visible hosts, whatever
	// Levels, Host, Offset and Limit say.
	Summary Counts
}

// ActivePage returns a page of the states that are not OK. It costs
// O(page) for an unfiltered query of every host, else O(non-OK states):
// never O(evaluated states).
func (e *Evaluator) ActivePage(q AlertQuery) AlertPage {
	var page AlertPage
	var picked []*state
	x := &e.active
	x.mu.RLock()
	if q.Visible == nil {
		page.Summary = x.total
	} else {
		for h, c := range x.hosts {
			if q.Visible(h) {
				page.Summary.Critical += c.Critical
				page.Summary.Warning += c.Warning
				page.Summary.Unknown += c.Unknown
			}
		}
	}
	skip := max(q.Offset, 0)
	for s, lv := range activeLevels {
		if len(q.Levels) > 0 && !slices.Contains(q.Levels, lv) {
			continue
		}
		l := x.lists[s]
		if q.Visible == nil && q.Host == nil {
			// Every entry matches: slice the page out.
			page.Matched += len(l)
			from := min(skip, len(l))
			skip -= from
			l = l[from:]
			if q.Limit > 0 {
				l = l[:min(len(l), q.Limit-len(picked))]
			}
			for _, en := range l {
				picked = append(picked, en.st)
			}
			continue
		}
		for _, en := range l {
			if (q.Visible != nil && !q.Visible(en.host)) || (q.Host != nil && !q.Host(en.host)) {
				continue
			}
			page.Matched++
			switch {
			case skip > 0:
				skip--
			case q.Limit <= 0 || len(picked) < q.Limit:
				picked = append(picked, en.st)
			}
		}
	}
	x.mu.RUnlock()
	now := e.now()
	page.Alerts = make([]Status, 0, len(picked))
	for _, st := range picked {
		st.hs.mu.Lock()
		// It may have recovered since it was picked.
		if st.level != level.OK {
			page.Alerts = append(page.Alerts, e.status(st, now))
		}
		st.hs.mu.Unlock()
	}
	e.addSilences(page.Alerts, now)
	return page
}
