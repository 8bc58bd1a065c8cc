package store

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// The store's SQL is written once, in SQLite's dialect, and shared by both
// backends: every consumer-facing method, the writer, pinning and
// retention run the same statements. For PostgreSQL the driver wrapper
// (postgres.go) passes each statement through pgSQL, which rewrites the
// few SQLite forms the package uses:
//
//   - placeholders: ? and ?N become $N (a bare ? takes the number after the
//     highest one so far, as in SQLite);
//   - INSERT OR IGNORE INTO t ... becomes INSERT INTO t ... ON CONFLICT DO
//     NOTHING;
//   - INSERT OR REPLACE INTO t (cols) ... becomes an upsert on t's key
//     (pgConflictKeys) that sets every other listed column;
//   - the column name user, a reserved word in PostgreSQL, is quoted.
//
// A statement the rewrite does not understand (a PRAGMA, INSERT OR REPLACE
// into a table without a known key) is an error at prepare time, which
// the PostgreSQL variants of the store's tests catch. Data definition is
// not rewritten: PostgreSQL has its own migrations
// (migrations_postgres.go), with the same versions.

// pgConflictKeys names the key of every table written with INSERT OR
// REPLACE.
var pgConflictKeys = map[string][]string{
	"samples":        {"series", "ts"},
	"alert_silences": {"id"},
	"notify_queue":   {"id"},
}

var insertOrRE = regexp.MustCompile(`(?is)^(\s*INSERT)\s+OR\s+(IGNORE|REPLACE)(\s+INTO\s+([A-Za-z_][A-Za-z0-9_]*)\s*)(\(([^)]*)\))?`)

// pgCache remembers rewritten statements: the store uses a fixed set.
var pgCache sync.Map // string -> pgResult

type pgResult struct {
	sql string
	err error
}

// pgSQL rewrites a statement written for SQLite into PostgreSQL's dialect.
func pgSQL(q string) (string, error) {
	if r, ok := pgCache.Load(q); ok {
		res := r.(pgResult)
		return res.sql, res.err
	}
	out, err := rewritePG(q)
	pgCache.Store(q, pgResult{out, err})
	return out, err
}

func rewritePG(q string) (string, error) {
	body := q
	suffix := ""
	if m := insertOrRE.FindStringSubmatchIndex(q); m != nil {
		kind := strings.ToUpper(q[m[4]:m[5]])
		table := q[m[8]:m[9]]
		rest := strings.TrimRight(q[m[1]:], " \t\r\n;")
		if strings.Contains(strings.ToUpper(rest), "RETURNING") || strings.Contains(strings.ToUpper(rest), "ON CONFLICT") {
			return "", fmt.Errorf("store: cannot rewrite for PostgreSQL (INSERT OR %s with RETURNING or ON CONFLICT): %s", kind, oneLine(q))
		}
		head := q[m[2]:m[3]] + q[m[6]:m[7]]
		if m[10] >= 0 {
			head += q[m[10]:m[11]]
		}
		body = head + rest
		switch kind {
		case "IGNORE":
			suffix = " ON CONFLICT DO NOTHING"
		case "REPLACE":
			keys, ok := pgConflictKeys[strings.ToLower(table)]
			if !ok || m[12] < 0 {
				return "", fmt.Errorf("store: cannot rewrite INSERT OR REPLACE INTO %s for PostgreSQL: add its key to pgConflictKeys and list the columns", table)
			}
			isKey := map[string]bool{}
			for _, k := range keys {
				isKey[k] = true
			}
			var set []string
			for _, c := range strings.Split(q[m[12]:m[13]], ",") {
				c = strings.TrimSpace(c)
				if c != "" && !isKey[strings.ToLower(c)] {
					set = append(set, quoteReserved(c)+" = EXCLUDED."+quoteReserved(c))
				}
			}
			if len(set) == 0 {
				suffix = " ON CONFLICT (" + strings.Join(keys, ", ") + ") DO NOTHING"
			} else {
				suffix = " ON CONFLICT (" + strings.Join(keys, ", ") + ") DO UPDATE SET " + strings.Join(set, ", ")
			}
		}
	}
	out, err := rewriteTokens(body)
	if err != nil {
		return "", err
	}
	return out + suffix, nil
}

func quoteReserved(ident string) string {
	if strings.EqualFold(ident, "user") {
		return `"user"`
	}
	return ident
}

// rewriteTokens turns placeholders into $N and quotes the reserved column
// name user, leaving string literals, quoted identifiers and comments as
// they are.
func rewriteTokens(q string) (string, error) {
	var b strings.Builder
	b.Grow(len(q) + 16)
	highest := 0
	first := true
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(q) {
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c { // doubled quote
						j += 2
						continue
					}
					break
				}
				j++
			}
			if j >= len(q) {
				return "", fmt.Errorf("store: unterminated quote in statement: %s", oneLine(q))
			}
			b.WriteString(q[i : j+1])
			i = j + 1
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i
			}
			b.WriteString(q[i : i+j])
			i += j
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				return "", fmt.Errorf("store: unterminated comment in statement: %s", oneLine(q))
			}
			b.WriteString(q[i : i+2+j+2])
			i += 2 + j + 2
		case c == '?':
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			n := highest + 1
			if j > i+1 {
				if _, err := fmt.Sscanf(q[i+1:j], "%d", &n); err != nil || n < 1 {
					return "", fmt.Errorf("store: bad placeholder %s in statement: %s", q[i:j], oneLine(q))
				}
			}
			highest = max(highest, n)
			fmt.Fprintf(&b, "$%d", n)
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(q) && (isIdentStart(q[j]) || (q[j] >= '0' && q[j] <= '9') || q[j] == '$') {
				j++
			}
			word := q[i:j]
			if first && strings.EqualFold(word, "PRAGMA") {
				return "", fmt.Errorf("store: SQLite PRAGMA has no PostgreSQL form: %s", oneLine(q))
			}
			first = false
			prevDot := i > 0 && q[i-1] == '.'
			if !prevDot {
				word = quoteReserved(word)
			}
			b.WriteString(word)
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

// oneLine shortens a statement for an error message.
func oneLine(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	if len(q) > 160 {
		q = q[:160] + "…"
	}
	return q
}
