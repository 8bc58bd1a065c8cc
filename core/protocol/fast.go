package protocol

import (
	"bytes"
	"slices"
	"strconv"
	"unsafe"
)

// FlatSample is a decoded and flattened wire sample: paths sorted, parallel
// to values.
type FlatSample struct {
	Plugin    string
	Timestamp float64
	Paths     []string
	Values    []float64
}

// DecodeFlat is the ingestion path's fast decoder. It parses the common
// form of a batch body straight into flattened samples, without the maps
// and interface values of encoding/json and Flatten. It answers ok only
// when decoding the body with encoding/json (DisallowUnknownFields, into
// Batch) and flattening every sample with Flatten would succeed and give
// the same plugins, timestamps, paths and values; for anything else (an
// error, escapes in strings, keys that differ from the field names only in
// case, duplicate keys, null, bounds reached, data beyond the first value)
// it answers !ok and the caller takes the encoding/json path, whose
// answers are the reference. It does not check plugin names or timestamp
// ranges.
//
// Samples of one batch with the same path set share one Paths slice (and
// its strings): callers must not modify Paths.
func DecodeFlat(body []byte) (out []FlatSample, ok bool) {
	d := fastDecoder{b: body}
	d.ws()
	if !d.eat('{') || !d.key("samples") || !d.eat('[') {
		return nil, false
	}
	for {
		if len(out) == MaxBatchSamples {
			return nil, false
		}
		s, ok := d.sample(out)
		if !ok {
			return nil, false
		}
		out = append(out, s)
		if d.eat(',') {
			continue
		}
		if !d.eat(']') || !d.eat('}') {
			return nil, false
		}
		break
	}
	if d.i != len(d.b) {
		return nil, false // trailing data: encoding/json's call
	}
	return out, true
}

// maxFastKeys bounds the keys of one data object the fast decoder takes
// (it compares each with the earlier ones); a wider object takes the
// encoding/json path.
const maxFastKeys = 64

type fastDecoder struct {
	b []byte
	i int
	// scratch of one sample: leaves in document order, the path prefix
	leaves []leaf
	prefix []byte
	names  []byte // every path of the sample, concatenated
}

type leaf struct {
	start, end int // the path in names
	v          float64
}

func (d *fastDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// eat consumes c (and the white space after it) if it is next.
func (d *fastDecoder) eat(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		d.ws()
		return true
	}
	return false
}

// str reads a string without escapes whose bytes are printable ASCII,
// then the white space after it; the returned view aliases the body.
func (d *fastDecoder) str() ([]byte, bool) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, false
	}
	start := d.i + 1
	for j := start; j < len(d.b); j++ {
		c := d.b[j]
		if c == '"' {
			d.i = j + 1
			d.ws()
			return d.b[start:j], true
		}
		if c < 0x20 || c > 0x7e || c == '\\' {
			return nil, false
		}
	}
	return nil, false
}

// key reads the object key name exactly and the colon after it.
func (d *fastDecoder) key(name string) bool {
	k, ok := d.str()
	return ok && string(k) == name && d.eat(':')
}

// num reads a JSON number as encoding/json would decode it into a float64.
func (d *fastDecoder) num() (float64, bool) {
	b, i := d.b, d.i
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0, false
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0, false
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	tok := b[start:i]
	v, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(tok), len(tok)), 64)
	if err != nil {
		return 0, false // out of range: encoding/json refuses it
	}
	d.i = i
	d.ws()
	return v, true
}

// sample reads one sample object: exactly the keys plugin, timestamp and
// data, once each, in any order.
func (d *fastDecoder) sample(out []FlatSample) (FlatSample, bool) {
	var s FlatSample
	if !d.eat('{') {
		return s, false
	}
	var seen [3]bool
	d.leaves, d.names, d.prefix = d.leaves[:0], d.names[:0], d.prefix[:0]
	for {
		k, ok := d.str()
		if !ok || !d.eat(':') {
			return s, false
		}
		switch string(k) {
		case "plugin":
			if seen[0] {
				return s, false
			}
			seen[0] = true
			p, ok := d.str()
			if !ok {
				return s, false
			}
			s.Plugin = string(p)
		case "timestamp":
			if seen[1] {
				return s, false
			}
			seen[1] = true
			if s.Timestamp, ok = d.num(); !ok {
				return s, false
			}
		case "data":
			if seen[2] || !d.eat('{') || !d.object(1) {
				return s, false
			}
			seen[2] = true
		default:
			return s, false
		}
		if d.eat(',') {
			continue
		}
		if !d.eat('}') {
			return s, false
		}
		break
	}
	if !seen[0] || !seen[1] || !seen[2] || len(d.leaves) == 0 {
		return s, false
	}
	names := d.names
	slices.SortFunc(d.leaves, func(a, b leaf) int {
		return bytes.Compare(names[a.start:a.end], names[b.start:b.end])
	})
	for i := 1; i < len(d.leaves); i++ {
		a, b := d.leaves[i-1], d.leaves[i]
		if bytes.Equal(names[a.start:a.end], names[b.start:b.end]) {
			return s, false // a duplicate key: the last one wins in a map
		}
	}
	s.Values = make([]float64, len(d.leaves))
	for i, l := range d.leaves {
		s.Values[i] = l.v
	}
	// Share the path set of an earlier sample of the batch (agents send
	// one shape per plugin), else make one string holding every path.
	for i := len(out) - 1; i >= 0 && i >= len(out)-maxShapeLookback; i-- {
		if d.samePaths(out[i].Paths) {
			s.Paths = out[i].Paths
			return s, true
		}
	}
	all := string(names)
	s.Paths = make([]string, len(d.leaves))
	for i, l := range d.leaves {
		s.Paths[i] = all[l.start:l.end]
	}
	return s, true
}

// maxShapeLookback bounds the earlier samples whose path sets a sample is
// compared with.
const maxShapeLookback = 8

// samePaths reports whether the sorted leaves of the sample being read
// have exactly the paths of an earlier sample.
func (d *fastDecoder) samePaths(paths []string) bool {
	if len(paths) != len(d.leaves) {
		return false
	}
	for i, l := range d.leaves {
		if paths[i] != string(d.names[l.start:l.end]) {
			return false
		}
	}
	return true
}

// object reads the members of a data object after its '{' at nesting
// depth (1 for data itself), appending its numeric leaves.
func (d *fastDecoder) object(depth int) bool {
	if depth > MaxSampleDepth {
		return false
	}
	if d.eat('}') {
		return true // an empty object adds nothing, as in Flatten
	}
	base := len(d.prefix)
	// This level's keys, to find a repeated one (a map keeps the last,
	// which may be an object or a number): quadratic, so bounded.
	var keysBuf [16][]byte
	keys := keysBuf[:0]
	for {
		k, ok := d.str()
		if !ok || len(k) == 0 || !d.eat(':') {
			return false
		}
		for _, c := range k {
			if c == '.' {
				return false
			}
		}
		if len(keys) == maxFastKeys {
			return false
		}
		for _, o := range keys {
			if string(o) == string(k) {
				return false
			}
		}
		keys = append(keys, k)
		d.prefix = d.prefix[:base]
		if base > 0 {
			d.prefix = append(d.prefix, '.')
		}
		d.prefix = append(d.prefix, k...)
		if len(d.prefix) > MaxPathLength {
			return false
		}
		if d.eat('{') {
			if !d.object(depth + 1) {
				return false
			}
		} else {
			v, ok := d.num()
			if !ok || len(d.leaves) == MaxSampleFields {
				return false
			}
			start := len(d.names)
			d.names = append(d.names, d.prefix...)
			d.leaves = append(d.leaves, leaf{start, len(d.names), v})
		}
		if d.eat(',') {
			continue
		}
		d.prefix = d.prefix[:base]
		return d.eat('}')
	}
}
