package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

func open(t *testing.T, dir string, opts Options) *Spool {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appendN(t *testing.T, s *Spool, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := s.Append(fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

// drain reads everything pending in batches of at most batch records,
// committing after each, and returns the record numbers in order.
func drain(t *testing.T, s *Spool, batch int) []int {
	t.Helper()
	var got []int
	for {
		recs, mark, err := s.Peek(batch, 1<<20)
		if err != nil {
			t.Fatalf("Peek: %v", err)
		}
		if len(recs) == 0 {
			return got
		}
		for _, r := range recs {
			got = append(got, number(t, r))
		}
		if err := s.Commit(mark); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
}

func number(t *testing.T, rec []byte) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(string(rec), `{"n":%d}`, &n); err != nil {
		t.Fatalf("record %q: %v", rec, err)
	}
	return n
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func TestRecordsComeOutInAppendOrderAcrossSegments(t *testing.T) {
	s := open(t, t.TempDir(), Options{MaxBytes: 1 << 20, SegmentBytes: 64})
	appendN(t, s, 0, 100)
	if st := s.Stats(); st.Segments < 10 {
		t.Fatalf("expected many small segments, got %d", st.Segments)
	}
	if got := drain(t, s, 7); !slices.Equal(got, seq(0, 100)) {
		t.Fatalf("got %v", got)
	}
	if st := s.Stats(); st.Segments != 1 || st.Pending != 0 {
		t.Fatalf("committed segments not removed or still pending: %+v", st)
	}
}

func TestPeekWithoutCommitRereadsTheSameRecords(t *testing.T) {
	s := open(t, t.TempDir(), Options{MaxBytes: 1 << 20})
	appendN(t, s, 0, 5)
	first, _, err := s.Peek(3, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := s.Peek(3, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 3 || !slices.EqualFunc(first, again, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatalf("Peek is not repeatable: %q vs %q", first, again)
	}
}

func TestPeekRespectsByteBudgetButReturnsAtLeastOne(t *testing.T) {
	s := open(t, t.TempDir(), Options{MaxBytes: 1 << 20})
	appendN(t, s, 0, 10) // each record is 8 bytes
	recs, _, err := s.Peek(100, 3*9)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("budget of 3 records gave %d", len(recs))
	}
	recs, _, err = s.Peek(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("tiny budget gave %d records, want 1", len(recs))
	}
}

func TestOldestSegmentsAreDroppedAndCountedWhenOverBound(t *testing.T) {
	const maxBytes = 2048
	s := open(t, t.TempDir(), Options{MaxBytes: maxBytes, SegmentBytes: 256})
	appendN(t, s, 0, 1000)
	st := s.Stats()
	if st.Bytes > maxBytes {
		t.Fatalf("spool holds %d bytes, bound %d", st.Bytes, maxBytes)
	}
	if st.Dropped == 0 {
		t.Fatal("nothing counted as dropped")
	}
	got := drain(t, s, 50)
	if int64(len(got))+st.Dropped != 1000 {
		t.Fatalf("kept %d + dropped %d != 1000", len(got), st.Dropped)
	}
	// What is kept is the newest, contiguous and in order.
	if !slices.Equal(got, seq(1000-len(got), 1000)) {
		t.Fatalf("kept records are not the newest in order: %v", got)
	}
}

func TestDropDuringAnInFlightBatchDoesNotMoveTheCursorBack(t *testing.T) {
	s := open(t, t.TempDir(), Options{MaxBytes: 1024, SegmentBytes: 128})
	appendN(t, s, 0, 10)
	_, mark, err := s.Peek(5, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 10, 500) // drops the segment the batch came from
	if err := s.Commit(mark); err != nil {
		t.Fatal(err)
	}
	got := drain(t, s, 100)
	if len(got) == 0 || got[len(got)-1] != 509 || !slices.IsSorted(got) || got[0] < 10 {
		t.Fatalf("unexpected remainder after drop: %v", got)
	}
}

func TestRestartResumesAfterTheLastCommit(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{MaxBytes: 1 << 20, SegmentBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 0, 30)
	recs, mark, err := s.Peek(12, 1<<20)
	if err != nil || len(recs) != 12 {
		t.Fatalf("Peek: %d records, %v", len(recs), err)
	}
	if err := s.Commit(mark); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Peek(5, 1<<20); err != nil { // read but never committed
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := open(t, dir, Options{MaxBytes: 1 << 20, SegmentBytes: 100})
	if p := s2.Stats().Pending; p != 18*16 {
		t.Fatalf("pending %d bytes after restart, want the 18 uncommitted records (%d)", p, 18*16)
	}
	appendN(t, s2, 30, 5)
	if got := drain(t, s2, 4); !slices.Equal(got, seq(12, 35)) {
		t.Fatalf("after restart got %v", got)
	}
}

func TestTornTailIsSkippedNotFatal(t *testing.T) {
	tests := []struct {
		name string
		tear func(t *testing.T, path string)
	}{
		{"half a header", func(t *testing.T, path string) { appendBytes(t, path, []byte{0, 0}) }},
		{"payload cut short", func(t *testing.T, path string) {
			appendBytes(t, path, []byte{0, 0, 0, 20, 1, 2, 3, 4, '{', '"'})
		}},
		{"checksum mismatch", func(t *testing.T, path string) {
			appendBytes(t, path, []byte{0, 0, 0, 2, 0, 0, 0, 0, '{', '}'})
		}},
		{"absurd length", func(t *testing.T, path string) {
			appendBytes(t, path, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			seed(t, dir, 3)
			tt.tear(t, newestSegment(t, dir))

			s2 := open(t, dir, Options{MaxBytes: 1 << 20})
			appendN(t, s2, 3, 2)
			if got := drain(t, s2, 10); !slices.Equal(got, seq(0, 5)) {
				t.Fatalf("got %v", got)
			}
			if c := s2.Stats().Corrupt; c != 1 {
				t.Fatalf("corrupt count %d, want 1", c)
			}
		})
	}
}

func TestDamageInTheMiddleSkipsOnlyTheRestOfThatSegment(t *testing.T) {
	dir := t.TempDir()
	seed(t, dir, 4) // records are 16 bytes framed
	path := newestSegment(t, dir)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw[2*16+10] ^= 0xff // flip a payload byte of record 2
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	s2 := open(t, dir, Options{MaxBytes: 1 << 20})
	appendN(t, s2, 4, 2)
	if got := drain(t, s2, 10); !slices.Equal(got, []int{0, 1, 4, 5}) {
		t.Fatalf("got %v", got)
	}
	// The skip is remembered: a restart does not report it again.
	s2.Close()
	s3 := open(t, dir, Options{MaxBytes: 1 << 20})
	if got := drain(t, s3, 10); len(got) != 0 || s3.Stats().Corrupt != 0 {
		t.Fatalf("after restart: %v, %+v", got, s3.Stats())
	}
}

func TestUnreadableCursorResendsInsteadOfFailing(t *testing.T) {
	dir := t.TempDir()
	seed(t, dir, 3)
	if err := os.WriteFile(filepath.Join(dir, cursorFile), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, dir, Options{MaxBytes: 1 << 20})
	if got := drain(t, s2, 10); !slices.Equal(got, seq(0, 3)) {
		t.Fatalf("got %v", got)
	}
}

func TestOversizedRecordIsRefused(t *testing.T) {
	s := open(t, t.TempDir(), Options{MaxBytes: 1000})
	if err := s.Append(make([]byte, 600)); err == nil {
		t.Fatal("record larger than half the bound was accepted")
	}
}

func TestClosedSpoolRefusesWork(t *testing.T) {
	s, err := Open(t.TempDir(), Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Append([]byte("x")); err != ErrClosed {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, _, err := s.Peek(1, 10); err != ErrClosed {
		t.Fatalf("Peek after Close: %v", err)
	}
}

// seed writes records 0..n-1 into a new spool in dir and closes it.
func seed(t *testing.T, dir string, n int) {
	t.Helper()
	s, err := Open(dir, Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 0, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func newestSegment(t *testing.T, dir string) string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil || len(matches) == 0 {
		t.Fatalf("no segments in %s: %v", dir, err)
	}
	slices.SortFunc(matches, func(a, b string) int {
		na, _ := strconv.ParseUint(filepath.Base(a)[:16], 16, 64)
		nb, _ := strconv.ParseUint(filepath.Base(b)[:16], 16, 64)
		return int(na) - int(nb)
	})
	return matches[len(matches)-1]
}

func TestASecondOpenOfTheSameDirectoryIsRefused(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{MaxBytes: 1 << 20})
	if _, err := Open(dir, Options{MaxBytes: 1 << 20}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	s.Close()
	s2, err := Open(dir, Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()
}
