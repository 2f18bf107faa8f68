//go:build !linux

package c2s

import (
	"context"
	"errors"
)

// poller is Linux-only; elsewhere every connection keeps its goroutine.
type poller struct{}

func newPoller() (*poller, error)              { return nil, errors.New("c2s: no poller on this system") }
func (p *poller) add(*conn) error              { return errors.New("c2s: no poller") }
func (p *poller) remove(*conn)                 {}
func (p *poller) queue(*conn)                  {}
func (p *poller) run(context.Context, *Server) {}
func (p *poller) close()                       {}
func (p *poller) stop()                        {}
