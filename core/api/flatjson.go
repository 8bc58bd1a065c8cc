package api

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hbdmon/hbd/core/protocol"
)

// jsonBytes answers 200 with b, a compact JSON value ending in a newline,
// as c.JSON would: indented by two spaces for ?pretty (and echo's debug
// mode).
func jsonBytes(c echo.Context, b []byte) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, prettyIfAsked(c, b))
}

// jsonBytesWithETag is jsonBytes with an ETag of the answer, and 304 when
// the request names it (blobWithETag).
func jsonBytesWithETag(c echo.Context, b []byte) error {
	return blobWithETag(c, prettyIfAsked(c, b))
}

// prettyIfAsked indents the JSON b when the request asks (?pretty) or
// the server is in debug mode.
func prettyIfAsked(c echo.Context, b []byte) []byte {
	if _, pretty := c.QueryParams()["pretty"]; pretty || c.Echo().Debug {
		var out bytes.Buffer
		if err := json.Indent(&out, bytes.TrimSuffix(b, []byte("\n")), "", "  "); err == nil {
			out.WriteByte('\n')
			b = out.Bytes()
		}
	}
	return b
}

// appendNested appends the JSON object protocol.Unflatten(paths, values)
// encodes to, byte for byte as encoding/json writes it (keys sorted at
// every level, its float and string forms), without building the maps.
// paths must be parallel to values. A path set that is not a tree (a path
// that is also the parent of another) takes the map route.
func appendNested(b []byte, paths []string, values []float64) []byte {
	type entry struct {
		rest string // the path below the current level
		v    float64
	}
	list := make([]entry, len(paths))
	for i, p := range paths {
		list[i] = entry{p, values[i]}
	}
	var walk func(b []byte, list []entry) ([]byte, bool)
	walk = func(b []byte, list []entry) ([]byte, bool) {
		// Sort by the first segment; entries of one segment stay together.
		slices.SortStableFunc(list, func(x, y entry) int {
			return strings.Compare(firstSegment(x.rest), firstSegment(y.rest))
		})
		b = append(b, '{')
		for i := 0; i < len(list); {
			seg := firstSegment(list[i].rest)
			j := i + 1
			for j < len(list) && firstSegment(list[j].rest) == seg {
				j++
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, seg)
			b = append(b, ':')
			if len(list[i].rest) == len(seg) {
				if j != i+1 {
					return b, false // a leaf and more under the same key
				}
				b = appendJSONFloat(b, list[i].v)
			} else {
				sub := make([]entry, 0, j-i)
				for _, e := range list[i:j] {
					if len(e.rest) == len(seg) {
						return b, false // a leaf that is also a parent
					}
					sub = append(sub, entry{e.rest[len(seg)+1:], e.v})
				}
				var ok bool
				if b, ok = walk(b, sub); !ok {
					return b, false
				}
			}
			i = j
		}
		return append(b, '}'), true
	}
	start := len(b)
	out, ok := walk(b, list)
	if ok {
		return out
	}
	enc, err := json.Marshal(protocol.Unflatten(paths, values))
	if err != nil {
		enc = []byte("{}")
	}
	return append(b[:start], enc...)
}

func firstSegment(p string) string {
	if i := strings.IndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return p
}

// appendJSONString appends s as encoding/json writes it (with its HTML
// escaping).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s)
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONFloat appends f as encoding/json writes a float64. NaN and
// infinities, which encoding/json refuses, never reach here: samples are
// finite.
func appendJSONFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
