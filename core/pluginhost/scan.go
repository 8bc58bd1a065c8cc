package pluginhost

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// binaryName is what a plugin file must be called. Dots are not allowed,
// so "hbd-notifier-x.tmp" can be written and renamed into place.
var binaryName = regexp.MustCompile(`^hbd-notifier-[a-z0-9][a-z0-9_-]*$`)

// fileID identifies one version of a binary: a replaced or rewritten file
// gets a new one.
type fileID struct {
	exe   string // the path that is executed, symlinks resolved
	dev   uint64
	ino   uint64
	size  int64
	mtime time.Time
	mode  os.FileMode
}

// inspect checks that name in the plugins dir may be run: a regular
// executable file, not writable by group or others, that does not resolve
// (through symlinks) outside the directory.
func (h *Host) inspect(name string) (fileID, error) {
	dir, err := filepath.EvalSymlinks(h.opts.Dir)
	if err != nil {
		return fileID{}, fmt.Errorf("plugins_dir: %w", err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return fileID{}, err
	}
	real, err := filepath.EvalSymlinks(h.binPath(name))
	if err != nil {
		return fileID{}, fmt.Errorf("cannot resolve: %w", unwrapPath(err))
	}
	if real, err = filepath.Abs(real); err != nil {
		return fileID{}, err
	}
	if err := checkDirSafe(dir); err != nil {
		return fileID{}, err
	}
	rel, err := filepath.Rel(dir, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return fileID{}, errors.New("resolves outside plugins_dir")
	}
	fi, err := os.Stat(real)
	if err != nil {
		return fileID{}, unwrapPath(err)
	}
	switch mode := fi.Mode(); {
	case !mode.IsRegular():
		return fileID{}, errors.New("not a regular file")
	case mode.Perm()&0o111 == 0:
		return fileID{}, errors.New("not executable")
	case mode.Perm()&0o022 != 0:
		return fileID{}, fmt.Errorf("writable by group or others (mode %04o); chmod go-w it", mode.Perm())
	}
	id := fileID{exe: real, size: fi.Size(), mtime: fi.ModTime(), mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), uint64(st.Ino)
		if !trustedOwner(st.Uid) {
			return fileID{}, fmt.Errorf("owned by uid %d; must be owned by root or the daemon's user (uid %d)", st.Uid, os.Geteuid())
		}
	}
	return id, nil
}

// trustedOwner reports whether a file owner may supply code the daemon
// runs: root or the daemon's own user. Anyone else could rewrite it.
func trustedOwner(uid uint32) bool {
	return uid == 0 || int(uid) == os.Geteuid()
}

// checkDirSafe refuses a plugins_dir that users other than its trusted
// owner could drop binaries into: writable by group or others (unless
// sticky), or owned by someone untrusted.
func checkDirSafe(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("plugins_dir: %w", unwrapPath(err))
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if !trustedOwner(st.Uid) {
		return fmt.Errorf("plugins_dir %s is owned by uid %d; must be owned by root or the daemon's user", dir, st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("plugins_dir %s is writable by group or others (mode %04o); chmod go-w it", dir, fi.Mode().Perm())
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// scan brings the running plugins in line with the directory. The caller
// holds scanMu.
func (h *Host) scan() {
	h.mu.RLock()
	closed, sums := h.closed, h.checksums
	h.mu.RUnlock()
	if closed || h.opts.Dir == "" {
		return
	}
	entries, err := os.ReadDir(h.opts.Dir)
	if err != nil {
		h.log.Warn("cannot read plugins_dir; no notifier plugins until it is readable", "dir", h.opts.Dir, "error", unwrapPath(err))
		entries = nil
	}
	seen := map[string]bool{}
	var stopping []*proc
	for _, e := range entries {
		name := e.Name()
		if !binaryName.MatchString(name) {
			continue
		}
		seen[name] = true
		id, ierr := h.inspect(name)
		pin := sums[name]
		if ierr == nil && pin == "" && len(sums) > 0 {
			ierr = errors.New("not listed in plugin_checksums (once any binary is pinned, every binary must be)")
		}

		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return
		}
		cur := h.procs[name]
		if ierr != nil {
			reason := ierr.Error()
			if r := h.refused[name]; r == nil || r.reason != reason {
				h.log.Error("notifier plugin refused", "binary", name, "reason", reason)
				h.journal(fmt.Sprintf("notifier plugin %s refused: %s", name, firstLine(reason)))
			}
			h.refused[name] = &refusal{id: id, pin: pin, reason: reason, checked: true}
			if cur != nil {
				delete(h.procs, name)
				stopping = append(stopping, cur)
			}
			h.mu.Unlock()
			continue
		}
		if cur != nil && cur.id == id && cur.pin == pin {
			h.mu.Unlock()
			continue
		}
		if r := h.refused[name]; r != nil && !r.checked && r.id == id && r.pin == pin && (r.conflict == "" || h.types[r.conflict] != nil) {
			h.mu.Unlock()
			continue
		}
		delete(h.refused, name)
		p := newProc(h, name, id, pin, cur)
		h.procs[name] = p
		h.wg.Add(1)
		h.mu.Unlock()

		if cur == nil {
			h.log.Info("notifier plugin found", "binary", name, "pinned", pin != "")
		} else {
			h.log.Info("notifier plugin changed; restarting it", "binary", name, "pinned", pin != "")
		}
		go p.run()
		// One at a time, so that when two binaries claim one type, the
		// one refused is always the later in name order.
		p.waitFirst(h.opts.StartTimeout + h.opts.CallTimeout)
	}

	h.mu.Lock()
	for name, p := range h.procs {
		if !seen[name] {
			delete(h.procs, name)
			stopping = append(stopping, p)
			h.log.Info("notifier plugin removed", "binary", name)
		}
	}
	for name := range h.refused {
		if !seen[name] {
			delete(h.refused, name)
		}
	}
	h.mu.Unlock()
	for _, p := range stopping {
		p.shutdown()
	}
}

// watch rescans after changes in the plugins dir (debounced, so a binary
// being copied in is looked at once it is complete) and every RescanEvery
// in case an event was missed or the directory did not exist yet.
func (h *Host) watch() {
	defer h.watchWG.Done()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		h.log.Warn("cannot watch plugins_dir; relying on periodic rescans", "error", err)
	}
	watching := false
	addWatch := func() {
		if w == nil || watching {
			return
		}
		if err := w.Add(h.opts.Dir); err == nil {
			watching = true
		}
	}
	addWatch()
	var events chan fsnotify.Event
	var errs chan error
	if w != nil {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	tick := time.NewTicker(h.opts.RescanEvery)
	defer tick.Stop()
	for {
		select {
		case <-h.stop:
			debounce.Stop()
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Name == h.opts.Dir && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				watching = false
			}
			debounce.Reset(h.opts.Debounce)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			h.log.Warn("plugins_dir watch error", "error", err)
		case <-debounce.C:
			h.Rescan()
		case <-tick.C:
			addWatch()
			h.Rescan()
		}
	}
}
