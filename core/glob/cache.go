package glob

import "sync"

// DefaultCacheSize bounds a Cache made with NewCache(0).
const DefaultCacheSize = 4096

// Cache keeps compiled patterns for callers that match the same patterns
// again and again (the dispatcher's channel host filters). It holds at
// most its size of patterns: when full, it forgets them all and starts
// over, so patterns no longer in use (a channel deleted or reloaded away)
// do not stay forever. Invalid patterns match nothing (config and API
// validation reject them before they get here). It is safe for concurrent
// use.
type Cache struct {
	size int
	mu   sync.RWMutex
	m    map[string]Pattern
}

// NewCache returns a cache of at most size patterns (DefaultCacheSize when
// size <= 0).
func NewCache(size int) *Cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	return &Cache{size: size, m: make(map[string]Pattern)}
}

// Pattern returns p compiled (the zero Pattern, which matches nothing,
// when p is invalid).
func (c *Cache) Pattern(p string) Pattern {
	c.mu.RLock()
	pat, ok := c.m[p]
	c.mu.RUnlock()
	if ok {
		return pat
	}
	pat, _ = Compile(p)
	c.mu.Lock()
	if len(c.m) >= c.size {
		clear(c.m)
	}
	c.m[p] = pat
	c.mu.Unlock()
	return pat
}

// MatchAny reports whether s matches one of patterns.
func (c *Cache) MatchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if c.Pattern(p).Match(s) {
			return true
		}
	}
	return false
}

// Len returns how many patterns the cache holds now.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
