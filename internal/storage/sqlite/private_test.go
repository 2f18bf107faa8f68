package sqlite

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// TestPrivateGroupCommit writes private documents from many goroutines at
// once, so that most commit in shared transactions, and checks that each
// write is there when its call returns, that a user's successive writes
// end with the last, and that a cancelled caller fails alone.
func TestPrivateGroupCommit(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	const users, writes = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, users*writes)
	for u := range users {
		wg.Go(func() {
			user := fmt.Sprintf("u%d@example.org", u)
			for i := range writes {
				want := fmt.Sprintf("<last n='%d'/>", i)
				if err := s.SetPrivateXML(ctx, user, "last", []byte(want)); err != nil {
					errs <- err
					return
				}
				got, err := s.PrivateXML(ctx, user, "last")
				if err != nil || string(got) != want {
					errs <- fmt.Errorf("%s after write %d: %q, %v", user, i, got, err)
					return
				}
			}
		})
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	wg.Go(func() {
		for range writes {
			if err := s.SetPrivateXML(cancelled, "gone@example.org", "last", []byte("<x/>")); err == nil {
				errs <- fmt.Errorf("a write with a cancelled context succeeded")
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for u := range users {
		user := fmt.Sprintf("u%d@example.org", u)
		if got, err := s.PrivateXML(ctx, user, "last"); err != nil || string(got) != fmt.Sprintf("<last n='%d'/>", writes-1) {
			t.Errorf("%s: %q, %v", user, got, err)
		}
	}
}
