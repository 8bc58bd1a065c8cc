package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// procSample is one reading of a process's CPU time and resident memory.
type procSample struct {
	cpu time.Duration
	rss int64 // bytes
}

// readProc reads /proc/<pid>/stat (utime + stime) and /proc/<pid>/status
// (VmRSS).
func readProc(pid int) (procSample, error) {
	var s procSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name may hold spaces; the fields follow its ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// Fields 14 and 15 (1-based, counting pid and comm) are utime and stime.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	s.cpu = time.Duration(ut+st) * time.Second / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return s, fmt.Errorf("/proc/%d/status: VmRSS %q", pid, rest)
			}
			s.rss = kb << 10
		}
	}
	return s, nil
}

// ProcFigures are the daemon's CPU time and resident memory over a phase.
type ProcFigures struct {
	PID int `json:"pid"`
	// CPUSeconds is user plus system CPU time spent in the phase.
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUCores is CPUSeconds per second of the phase (2.0 = both cores).
	CPUCores float64 `json:"cpu_cores"`
	// RSSPeakMiB and RSSEndMiB are the largest and the last resident set
	// size sampled (every SampleEvery) in the phase.
	RSSPeakMiB float64 `json:"rss_peak_mib"`
	RSSEndMiB  float64 `json:"rss_end_mib"`
	// LoadgenCPUSeconds is the CPU time hbd-load itself spent, and
	// MachineCPUSeconds what every process of the machine spent (from
	// /proc/stat), in the phase: the rest is other work sharing the cores.
	LoadgenCPUSeconds float64 `json:"loadgen_cpu_seconds"`
	MachineCPUSeconds float64 `json:"machine_cpu_seconds"`
}

// machineCPU is the busy CPU time of the whole machine (the first line of
// /proc/stat without idle and iowait).
func machineCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is in user
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks
}

// procWatch samples a process every interval until stopped.
type procWatch struct {
	pid   int
	mu    sync.Mutex
	start procSample
	last  procSample
	peak  int64
	err   error
	began time.Time
	self  procSample
	mach  time.Duration
	stop  context.CancelFunc
	done  chan struct{}
}

// watchProc starts sampling pid. It returns nil when pid is 0.
func watchProc(pid int, every time.Duration) *procWatch {
	if pid == 0 {
		return nil
	}
	w := &procWatch{pid: pid, done: make(chan struct{}), began: time.Now()}
	w.start, w.err = readProc(pid)
	w.self, _ = readProc(os.Getpid())
	w.mach = machineCPU()
	w.last, w.peak = w.start, w.start.rss
	ctx, cancel := context.WithCancel(context.Background())
	w.stop = cancel
	go func() {
		defer close(w.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w.sample()
			}
		}
	}()
	return w
}

func (w *procWatch) sample() {
	s, err := readProc(w.pid)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if w.err == nil {
			w.err = err
		}
		return
	}
	w.last, w.peak = s, max(w.peak, s.rss)
}

// finish takes a last sample, stops the watch and returns the figures.
func (w *procWatch) finish() (ProcFigures, error) {
	if w == nil {
		return ProcFigures{}, nil
	}
	w.stop()
	<-w.done
	w.sample()
	w.mu.Lock()
	defer w.mu.Unlock()
	secs := time.Since(w.began).Seconds()
	cpu := (w.last.cpu - w.start.cpu).Seconds()
	self, _ := readProc(os.Getpid())
	return ProcFigures{
		LoadgenCPUSeconds: round3((self.cpu - w.self.cpu).Seconds()),
		MachineCPUSeconds: round3((machineCPU() - w.mach).Seconds()),
		PID:               w.pid,
		CPUSeconds:        round3(cpu),
		CPUCores:          round3(cpu / secs),
		RSSPeakMiB:        round3(float64(w.peak) / (1 << 20)),
		RSSEndMiB:         round3(float64(w.last.rss) / (1 << 20)),
	}, w.err
}

// PIDListening returns the process that listens on TCP port, found
// through /proc/net/tcp{,6} and the socket links under /proc/*/fd (only
// processes the caller may inspect are seen).
func PIDListening(port int) (int, error) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, ok := strings.Cut(fs[1], ":")
			if p, err := strconv.ParseInt(hexPort, 16, 32); ok && err == nil && int(p) == port {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("no socket listens on TCP port %d", port)
	}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && inodes[l] {
			return strconv.Atoi(strings.Split(fd, "/")[2])
		}
	}
	return 0, fmt.Errorf("TCP port %d: no visible process holds the listening socket", port)
}
