package memory

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

var _ storage.PEP = (*Store)(nil)

// pepNode is a node with its items, oldest first.
type pepNode struct {
	cfg   storage.PEPNode
	items []storage.PEPItem
}

func clonePEPItem(it storage.PEPItem) storage.PEPItem {
	it.Payload = bytes.Clone(it.Payload)
	return it
}

// pepNodeLocked returns the node or nil; s.mu is held.
func (s *Store) pepNodeLocked(owner, node string) *pepNode {
	return s.pep[owner][node]
}

// PEPNodes implements storage.PEP.
func (s *Store) PEPNodes(ctx context.Context, owner string) ([]storage.PEPNode, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: pep nodes %s: %w", owner, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []storage.PEPNode
	for _, n := range s.pep[owner] {
		out = append(out, n.cfg)
	}
	slices.SortFunc(out, func(a, b storage.PEPNode) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}

// PEPNode implements storage.PEP.
func (s *Store) PEPNode(ctx context.Context, owner, node string) (storage.PEPNode, error) {
	if err := ctx.Err(); err != nil {
		return storage.PEPNode{}, fmt.Errorf("memory: pep node %s %s: %w", owner, node, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.pepNodeLocked(owner, node)
	if n == nil {
		return storage.PEPNode{}, fmt.Errorf("memory: pep node %s %s: %w", owner, node, storage.ErrNotFound)
	}
	return n.cfg, nil
}

// PutPEPNode implements storage.PEP.
func (s *Store) PutPEPNode(ctx context.Context, owner string, cfg storage.PEPNode) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: put pep node %s: %w", owner, err)
	}
	if cfg.Node == "" {
		return fmt.Errorf("memory: put pep node %s: %w: empty node", owner, storage.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pep == nil {
		s.pep = make(map[string]map[string]*pepNode)
	}
	if s.pep[owner] == nil {
		s.pep[owner] = make(map[string]*pepNode)
	}
	if n := s.pep[owner][cfg.Node]; n != nil {
		n.cfg = cfg
		return nil
	}
	s.pep[owner][cfg.Node] = &pepNode{cfg: cfg}
	return nil
}

// DeletePEPNode implements storage.PEP.
func (s *Store) DeletePEPNode(ctx context.Context, owner, node string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: delete pep node %s: %w", owner, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pepNodeLocked(owner, node) == nil {
		return fmt.Errorf("memory: delete pep node %s %s: %w", owner, node, storage.ErrNotFound)
	}
	delete(s.pep[owner], node)
	return nil
}

// PublishPEPItem implements storage.PEP.
func (s *Store) PublishPEPItem(ctx context.Context, owner, node string, it storage.PEPItem, max int) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: publish pep item %s: %w", owner, err)
	}
	if it.ID == "" {
		return fmt.Errorf("memory: publish pep item %s %s: %w: empty id", owner, node, storage.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.pepNodeLocked(owner, node)
	if n == nil {
		return fmt.Errorf("memory: publish pep item %s %s: %w", owner, node, storage.ErrNotFound)
	}
	n.items = slices.DeleteFunc(n.items, func(x storage.PEPItem) bool { return x.ID == it.ID })
	n.items = append(n.items, clonePEPItem(it))
	if max > 0 && len(n.items) > max {
		n.items = slices.Delete(n.items, 0, len(n.items)-max)
	}
	return nil
}

// PEPItems implements storage.PEP.
func (s *Store) PEPItems(ctx context.Context, owner, node string, ids []string, max int) ([]storage.PEPItem, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: pep items %s: %w", owner, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.pepNodeLocked(owner, node)
	if n == nil {
		return nil, fmt.Errorf("memory: pep items %s %s: %w", owner, node, storage.ErrNotFound)
	}
	var out []storage.PEPItem
	for i := len(n.items) - 1; i >= 0; i-- {
		if max > 0 && len(out) >= max {
			break
		}
		if len(ids) > 0 && !slices.Contains(ids, n.items[i].ID) {
			continue
		}
		out = append(out, clonePEPItem(n.items[i]))
	}
	return out, nil
}

// RetractPEPItem implements storage.PEP.
func (s *Store) RetractPEPItem(ctx context.Context, owner, node, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: retract pep item %s: %w", owner, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.pepNodeLocked(owner, node)
	if n == nil {
		return fmt.Errorf("memory: retract pep item %s %s: %w", owner, node, storage.ErrNotFound)
	}
	before := len(n.items)
	n.items = slices.DeleteFunc(n.items, func(x storage.PEPItem) bool { return x.ID == id })
	if len(n.items) == before {
		return fmt.Errorf("memory: retract pep item %s %s %s: %w", owner, node, id, storage.ErrNotFound)
	}
	return nil
}

// PurgePEPNode implements storage.PEP.
func (s *Store) PurgePEPNode(ctx context.Context, owner, node string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: purge pep node %s: %w", owner, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.pepNodeLocked(owner, node)
	if n == nil {
		return fmt.Errorf("memory: purge pep node %s %s: %w", owner, node, storage.ErrNotFound)
	}
	n.items = nil
	return nil
}
