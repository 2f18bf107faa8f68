package appservice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Senders are the senders of several services, one goroutine each when
// they run. Their Enqueue is where the events the server produces go.
type Senders struct {
	list []*Sender
	by   map[string]*Sender
	log  *slog.Logger
}

// NewSenders returns a sender for each of services, all with d.
func NewSenders(services []*Service, d SenderDeps) (*Senders, error) {
	if d.Log == nil {
		return nil, errors.New("appservice: senders: logger is required")
	}
	ss := &Senders{by: map[string]*Sender{}, log: d.Log.With("component", "appservice")}
	for _, svc := range services {
		if svc != nil && ss.by[svc.Name] != nil {
			return nil, fmt.Errorf("appservice: two services named %s", svc.Name)
		}
		s, err := NewSender(svc, d)
		if err != nil {
			return nil, err
		}
		ss.list = append(ss.list, s)
		ss.by[svc.Name] = s
	}
	return ss, nil
}

// Sender returns the named service's sender, nil if there is none.
func (ss *Senders) Sender(service string) *Sender { return ss.by[service] }

// Enqueue queues events for the named service (Sender.Enqueue). It
// returns nothing: its callers produce events as the server works and
// could do nothing about a failure, which is logged.
func (ss *Senders) Enqueue(ctx context.Context, service string, events []Event) {
	s := ss.by[service]
	if s == nil {
		ss.log.Error("events for an undeclared service", "service", service, "events", len(events))
		return
	}
	if err := s.Enqueue(ctx, events); err != nil {
		s.log.Error("cannot enqueue events", "events", len(events), "err", err)
	}
}

// Run runs every sender (Sender.Run) until ctx is done, and returns once
// all have returned.
func (ss *Senders) Run(ctx context.Context) error {
	errs := make([]error, len(ss.list))
	var wg sync.WaitGroup
	for i, s := range ss.list {
		wg.Go(func() { errs[i] = s.Run(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
