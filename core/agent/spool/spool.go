// Package spool is the agent's bounded on-disk queue of encoded samples.
//
// Records are appended to segment files (<ordinal>.seg, ordinals increasing)
// and fsynced before Append returns. A single reader walks them in order with
// Peek and acknowledges with Commit; the read cursor is persisted atomically,
// so after a restart reading resumes at the first record that was not
// committed. When the spool outgrows its byte bound the oldest segments are
// deleted, unread records in them are counted as dropped and logged.
//
// Each record is framed as a 4-byte big-endian payload length, a 4-byte
// CRC-32C of the payload, then the payload. A frame that does not check out
// (a torn write after a crash, a damaged disk block) ends its segment: the
// reader logs it, counts it and continues with the next segment. Every Open
// starts a fresh segment for appends, so a torn tail is never appended to.
//
// A Spool is safe for concurrent use by many appenders and one reader.
package spool

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// ErrRecordTooLarge is returned by Append for a record larger than the
// spool could ever hold or a reader could ever batch.
var ErrRecordTooLarge = errors.New("spool: record too large")

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("spool: closed")

// ErrLocked is returned by Open for a directory another Spool (usually
// another hbc process) has open.
var ErrLocked = errors.New("spool: directory in use by another process")

const (
	headerSize = 8
	// MaxRecordBytes bounds one record; a length field above it is corruption.
	MaxRecordBytes = 4 << 20
	cursorFile     = "cursor"
	segmentExt     = ".seg"
	minSegment     = 4 << 10
	maxSegment     = 4 << 20
)

// FrameOverhead is what the spool adds to each record on disk (length and
// checksum), counted in Stats.Pending.
const FrameOverhead = headerSize

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Options tune a spool. MaxBytes is required.
type Options struct {
	// MaxBytes bounds the total size of the segment files. When an append
	// goes over it, whole segments are dropped, oldest first, until it fits
	// (the segment being written to is never dropped).
	MaxBytes int64
	// SegmentBytes is the size at which the current segment is closed and a
	// new one started; by default MaxBytes/8 clamped to [4 KiB, 4 MiB], so
	// dropping happens in steps of about an eighth of the bound.
	SegmentBytes int64
	// Logger receives drop and corruption reports; nil discards them.
	Logger hclog.Logger
}

// Mark is a position in the spool, returned by Peek for Commit.
type Mark struct {
	Segment uint64 `json:"segment"`
	Offset  int64  `json:"offset"`
}

func (m Mark) before(o Mark) bool {
	return m.Segment < o.Segment || (m.Segment == o.Segment && m.Offset < o.Offset)
}

// Stats are counters since Open.
type Stats struct {
	Segments int   // segment files on disk
	Bytes    int64 // their total size
	Pending  int64 // bytes not yet committed (records with their framing)
	Dropped  int64 // unread records deleted to respect MaxBytes
	Corrupt  int64 // damaged frames skipped (each ends its segment)
}

type segment struct {
	ordinal uint64
	size    int64
}

// Spool is an open spool directory. See the package documentation.
type Spool struct {
	dir  string
	opts Options
	log  hclog.Logger

	mu       sync.Mutex
	segs     []segment // oldest first; the last one is the active segment
	active   *os.File
	cursor   Mark
	total    int64
	dropped  int64
	corrupt  int64
	closed   bool
	scratch  []byte
	writeBuf []byte
	lock     io.Closer
}

// Open opens or creates the spool in dir. A spool directory is locked for
// one Spool at a time; Open fails with ErrLocked while another holds it.
func Open(dir string, opts Options) (*Spool, error) {
	if opts.MaxBytes <= 0 {
		return nil, fmt.Errorf("spool: MaxBytes must be positive")
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = min(max(opts.MaxBytes/8, minSegment), maxSegment)
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: create %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Spool{dir: dir, opts: opts, log: opts.Logger, lock: lock}
	if err := s.load(); err != nil {
		lock.Close()
		return nil, err
	}
	if err := s.startSegment(); err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

func (s *Spool) load() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("spool: read %s: %w", s.dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, segmentExt) || !e.Type().IsRegular() {
			continue
		}
		ord, err := strconv.ParseUint(strings.TrimSuffix(name, segmentExt), 16, 64)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("spool: stat %s: %w", name, err)
		}
		s.segs = append(s.segs, segment{ordinal: ord, size: info.Size()})
		s.total += info.Size()
	}
	slices.SortFunc(s.segs, func(a, b segment) int { return cmp.Compare(a.ordinal, b.ordinal) })

	raw, err := os.ReadFile(filepath.Join(s.dir, cursorFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("spool: read cursor: %w", err)
	default:
		if err := json.Unmarshal(raw, &s.cursor); err != nil {
			// Starting over may resend samples; refusing to start would lose them all.
			s.log.Warn("spool cursor unreadable, resending from the oldest segment", "dir", s.dir, "error", err)
			s.cursor = Mark{}
		}
	}
	// Segments wholly before the cursor were committed but not yet removed.
	for len(s.segs) > 0 && s.segs[0].ordinal < s.cursor.Segment {
		if err := s.removeOldest(); err != nil {
			return err
		}
	}
	if len(s.segs) > 0 && s.segs[0].ordinal > s.cursor.Segment {
		s.cursor = Mark{Segment: s.segs[0].ordinal}
	}
	return nil
}

// startSegment opens a new, empty active segment after every existing one
// and after the cursor.
func (s *Spool) startSegment() error {
	next := s.cursor.Segment + 1
	if n := len(s.segs); n > 0 {
		next = max(next, s.segs[n-1].ordinal+1)
	}
	f, err := os.OpenFile(s.segmentPath(next), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("spool: create segment: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return err
	}
	if s.active != nil {
		s.active.Close()
	}
	s.active = f
	s.segs = append(s.segs, segment{ordinal: next})
	if len(s.segs) == 1 {
		s.cursor = Mark{Segment: next}
	}
	return nil
}

func (s *Spool) segmentPath(ord uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016x%s", ord, segmentExt))
}

// Append writes records at the end of the spool and fsyncs them before it
// returns. It may drop the oldest segments to stay within MaxBytes.
func (s *Spool) Append(records ...[]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	limit := min(int64(MaxRecordBytes), s.opts.MaxBytes/2)
	buf := s.writeBuf[:0]
	for _, r := range records {
		if int64(len(r)) > limit {
			return fmt.Errorf("%w: %d bytes, limit %d", ErrRecordTooLarge, len(r), limit)
		}
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(r)))
		buf = binary.BigEndian.AppendUint32(buf, crc32.Checksum(r, crcTable))
		buf = append(buf, r...)
	}
	s.writeBuf = buf
	if len(buf) == 0 {
		return nil
	}
	cur := &s.segs[len(s.segs)-1]
	if cur.size > 0 && cur.size+int64(len(buf)) > s.opts.SegmentBytes {
		if err := s.startSegment(); err != nil {
			return err
		}
		cur = &s.segs[len(s.segs)-1]
	}
	if _, err := s.active.Write(buf); err != nil {
		// Cut a partial write so the next append does not follow garbage.
		if terr := s.active.Truncate(cur.size); terr != nil {
			s.log.Error("spool: cannot undo a partial write; starting a new segment", "error", terr)
			if serr := s.startSegment(); serr != nil {
				return errors.Join(err, serr)
			}
		}
		return fmt.Errorf("spool: append: %w", err)
	}
	if err := s.active.Sync(); err != nil {
		return fmt.Errorf("spool: fsync: %w", err)
	}
	cur.size += int64(len(buf))
	s.total += int64(len(buf))
	return s.enforceBound()
}

func (s *Spool) enforceBound() error {
	for s.total > s.opts.MaxBytes && len(s.segs) > 1 {
		oldest := s.segs[0]
		unread := 0
		if s.cursor.Segment <= oldest.ordinal {
			from := int64(0)
			if s.cursor.Segment == oldest.ordinal {
				from = s.cursor.Offset
			}
			n, err := s.countRecords(oldest.ordinal, from)
			if err != nil {
				return err
			}
			unread = n
		}
		if err := s.removeOldest(); err != nil {
			return err
		}
		if s.cursor.Segment <= oldest.ordinal {
			s.cursor = Mark{Segment: s.segs[0].ordinal}
			if err := s.saveCursor(); err != nil {
				return err
			}
		}
		if unread > 0 {
			s.dropped += int64(unread)
			s.log.Warn("spool full: dropped oldest unsent samples", "dropped", unread,
				"dropped_total", s.dropped, "max_bytes", s.opts.MaxBytes)
		}
	}
	return nil
}

func (s *Spool) removeOldest() error {
	oldest := s.segs[0]
	if err := os.Remove(s.segmentPath(oldest.ordinal)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: remove segment: %w", err)
	}
	s.segs = s.segs[1:]
	s.total -= oldest.size
	return nil
}

// countRecords counts the intact records of a segment from offset on.
func (s *Spool) countRecords(ord uint64, from int64) (int, error) {
	recs, _, _, err := s.readFrom(Mark{Segment: ord, Offset: from}, math.MaxInt, math.MaxInt, false)
	return len(recs), err
}

var errCorrupt = errors.New("corrupt record")

// readRecord reads one frame. It returns io.EOF at a clean end and
// errCorrupt for a frame that is cut short or does not match its checksum.
// The payload is only valid until the next call.
func (s *Spool) readRecord(r *bufio.Reader) ([]byte, error) {
	var hdr [headerSize]byte
	n, err := io.ReadFull(r, hdr[:])
	if err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errCorrupt
		}
		return nil, fmt.Errorf("spool: read: %w", err)
	}
	size := binary.BigEndian.Uint32(hdr[:4])
	if size > MaxRecordBytes {
		return nil, errCorrupt
	}
	if cap(s.scratch) < int(size) {
		s.scratch = make([]byte, size)
	}
	payload := s.scratch[:size]
	if _, err := io.ReadFull(r, payload); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errCorrupt
		}
		return nil, fmt.Errorf("spool: read: %w", err)
	}
	if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(hdr[4:]) {
		return nil, errCorrupt
	}
	return payload, nil
}

// Peek returns up to maxRecords records from the cursor on, in append order,
// whose sizes plus one separator byte each add up to at most maxBytes (the
// first pending record is returned whatever its size). An empty result means
// nothing is pending. Peek does not move the cursor, except past damaged or
// finished segments before the first record it returns; pass the returned
// Mark to Commit once the records are delivered.
func (s *Spool) Peek(maxRecords, maxBytes int) ([][]byte, Mark, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, Mark{}, ErrClosed
	}
	var out [][]byte
	pos := s.cursor
	for len(out) < maxRecords && maxBytes > 0 {
		idx := slices.IndexFunc(s.segs, func(g segment) bool { return g.ordinal == pos.Segment })
		if idx < 0 {
			break
		}
		last := idx == len(s.segs)-1
		if pos.Offset >= s.segs[idx].size {
			if last {
				break // everything written has been read
			}
			pos = Mark{Segment: s.segs[idx+1].ordinal}
			if len(out) == 0 {
				if err := s.advance(pos); err != nil {
					return nil, Mark{}, err
				}
			}
			continue
		}
		recs, next, corrupt, err := s.readFrom(pos, maxRecords-len(out), maxBytes, len(out) == 0)
		if err != nil {
			return nil, Mark{}, err
		}
		out = append(out, recs...)
		for _, r := range recs {
			maxBytes -= len(r) + 1
		}
		pos = next
		if !corrupt {
			if len(recs) == 0 {
				break
			}
			continue
		}
		if len(out) > 0 {
			break // deliver what came before the damage; skip it on the next Peek
		}
		s.corrupt++
		s.log.Warn("spool: skipping a damaged record and the rest of its segment",
			"segment", filepath.Base(s.segmentPath(pos.Segment)), "offset", pos.Offset)
		if last {
			// Appends must not land behind the damage.
			if err := s.startSegment(); err != nil {
				return nil, Mark{}, err
			}
		}
		pos = Mark{Segment: s.segs[idx+1].ordinal}
		if err := s.advance(pos); err != nil {
			return nil, Mark{}, err
		}
	}
	return out, pos, nil
}

// readFrom reads records of one segment starting at pos. The returned Mark
// is just past the last record returned, or at the damaged frame.
func (s *Spool) readFrom(pos Mark, maxRecords, maxBytes int, first bool) ([][]byte, Mark, bool, error) {
	f, err := os.Open(s.segmentPath(pos.Segment))
	if err != nil {
		return nil, pos, false, fmt.Errorf("spool: open segment: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(pos.Offset, io.SeekStart); err != nil {
		return nil, pos, false, fmt.Errorf("spool: seek segment: %w", err)
	}
	r := bufio.NewReader(f)
	var out [][]byte
	for len(out) < maxRecords {
		rec, err := s.readRecord(r)
		switch {
		case errors.Is(err, io.EOF):
			return out, pos, false, nil
		case errors.Is(err, errCorrupt):
			return out, pos, true, nil
		case err != nil:
			return nil, pos, false, err
		}
		if len(rec)+1 > maxBytes && !(first && len(out) == 0) {
			break
		}
		maxBytes -= len(rec) + 1
		out = append(out, slices.Clone(rec))
		pos.Offset += int64(headerSize + len(rec))
	}
	return out, pos, false, nil
}

// Commit records that everything before m was delivered: the cursor moves
// to m (never backwards) and fully read segments are deleted.
func (s *Spool) Commit(m Mark) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if !s.cursor.before(m) {
		return nil // already there, or the records were dropped meanwhile
	}
	return s.advance(m)
}

func (s *Spool) advance(m Mark) error {
	s.cursor = m
	if err := s.saveCursor(); err != nil {
		return err
	}
	for len(s.segs) > 1 && s.segs[0].ordinal < m.Segment {
		if err := s.removeOldest(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Spool) saveCursor() error {
	raw, err := json.Marshal(s.cursor)
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, cursorFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("spool: save cursor: %w", err)
	}
	_, werr := f.Write(raw)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("spool: save cursor: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, cursorFile)); err != nil {
		return fmt.Errorf("spool: save cursor: %w", err)
	}
	return syncDir(s.dir)
}

// Stats returns the spool's counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Segments before the cursor's are deleted on Commit, so only the
	// cursor's offset into its segment is committed but still on disk.
	return Stats{Segments: len(s.segs), Bytes: s.total, Pending: s.total - s.cursor.Offset,
		Dropped: s.dropped, Corrupt: s.corrupt}
}

// Close closes the active segment. Everything appended is already on disk.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return errors.Join(s.active.Close(), s.lock.Close())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool: open dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("spool: fsync dir: %w", err)
	}
	return nil
}
