package glob

import (
	"fmt"
	"sync"
	"testing"
)

func TestCacheIsBounded(t *testing.T) {
	c := NewCache(8)
	for i := range 100 {
		p := fmt.Sprintf("web%02d*", i)
		if !c.MatchAny([]string{p}, fmt.Sprintf("web%02d-a", i)) {
			t.Fatalf("%s does not match its own host", p)
		}
		if n := c.Len(); n > 8 {
			t.Fatalf("cache holds %d patterns after %d distinct ones; bound is 8", n, i+1)
		}
	}
	// A pattern forgotten by a reset is compiled again, with the same result.
	if !c.MatchAny([]string{"web00*"}, "web00-a") || c.MatchAny([]string{"web00*"}, "db00") {
		t.Fatal("a pattern compiled again after a reset matches differently")
	}
}

func TestCacheInvalidPatternMatchesNothing(t *testing.T) {
	c := NewCache(0)
	if c.MatchAny([]string{"", "a***"}, "a") {
		t.Fatal("invalid patterns matched")
	}
	if c.size != DefaultCacheSize {
		t.Fatalf("size %d, want DefaultCacheSize", c.size)
	}
}

func TestCacheConcurrent(t *testing.T) {
	c := NewCache(4)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				p := fmt.Sprintf("h%d-%d*", g, i%10)
				if !c.MatchAny([]string{p}, fmt.Sprintf("h%d-%dx", g, i%10)) {
					t.Errorf("%s did not match", p)
					return
				}
			}
		}()
	}
	wg.Wait()
	if c.Len() > 4 {
		t.Fatalf("cache holds %d patterns; bound is 4", c.Len())
	}
}
