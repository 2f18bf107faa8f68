package router

import (
	"fmt"
	"testing"
)

func TestOwner(t *testing.T) {
	tests := []struct {
		name string
		ids  []string
		want int
	}{
		{"none", nil, -1},
		{"one", []string{"a"}, 0},
	}
	for _, tt := range tests {
		if got := Owner("alice@example.org", tt.ids); got != tt.want {
			t.Errorf("%s: Owner = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestOwnerOrderIndependent checks that every gateway computes the same
// owner whatever order it learned the instances in.
func TestOwnerOrderIndependent(t *testing.T) {
	a := []string{"i1", "i2", "i3"}
	b := []string{"i3", "i1", "i2"}
	for u := 0; u < 200; u++ {
		k := fmt.Sprintf("user%d@example.org", u)
		if a[Owner(k, a)] != b[Owner(k, b)] {
			t.Fatalf("%s: owner depends on order", k)
		}
	}
}

// TestOwnerMinimalMoves checks the rendezvous property: when an instance
// joins, only users it wins move, and they move to it; when it leaves,
// only its users move.
func TestOwnerMinimalMoves(t *testing.T) {
	before := []string{"i1", "i2", "i3"}
	after := []string{"i1", "i2", "i3", "i4"}
	moved, spread := 0, map[string]int{}
	for u := 0; u < 4000; u++ {
		k := fmt.Sprintf("user%d@example.org", u)
		o1, o2 := before[Owner(k, before)], after[Owner(k, after)]
		spread[o2]++
		if o1 != o2 {
			moved++
			if o2 != "i4" {
				t.Fatalf("%s moved from %s to %s, not to the new instance", k, o1, o2)
			}
		}
	}
	if moved == 0 || moved == 4000 {
		t.Fatalf("moved %d of 4000 users", moved)
	}
	for id, n := range spread {
		// A fair share is 1000; anything near 0 or 4000 means a broken hash.
		if n < 500 || n > 1500 {
			t.Errorf("instance %s owns %d of 4000 users", id, n)
		}
	}
}

func TestRoundRobin(t *testing.T) {
	var r RoundRobin
	if r.Next(0) != -1 {
		t.Fatal("Next(0) must be -1")
	}
	seen := map[int]int{}
	for i := 0; i < 9; i++ {
		seen[r.Next(3)]++
	}
	for i := 0; i < 3; i++ {
		if seen[i] != 3 {
			t.Fatalf("turns %v, want 3 each", seen)
		}
	}
}

func TestStateful(t *testing.T) {
	for kind, want := range map[string]bool{"sm": true, "muc": true, "bridge": true, "upload": false, "component": false} {
		if Stateful(kind) != want {
			t.Errorf("Stateful(%q) = %v", kind, !want)
		}
	}
}
