package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// RosterItems implements storage.Roster. The items, their groups and the
// version come from one statement, and so from one snapshot, in one round
// trip: every login loads its roster, and a session manager taking over
// many users at once (a failover) waits for each.
func (s *Store) RosterItems(ctx context.Context, user string) ([]storage.RosterItem, int64, error) {
	var (
		items   []storage.RosterItem
		version int64
	)
	err := func() error {
		// One row per (item, group), or per item without groups; one
		// row of NULLs (but the version) without items.
		rows, err := s.pool.Query(ctx, `SELECT COALESCE((SELECT version FROM roster_versions WHERE username = $1), 0),
			i.contact, i.name, i.subscription, i.ask, i.pending_in, i.approved, g.grp
			FROM (SELECT 1 AS one) AS o
			LEFT JOIN roster_items i ON i.username = $1
			LEFT JOIN roster_groups g ON g.username = i.username AND g.contact = i.contact
			ORDER BY i.contact, g.grp`, user)
		if err != nil {
			return err
		}
		var (
			contact, name, sub, grp *string
			ask, pending, approved  *bool
		)
		_, err = pgx.ForEachRow(rows, []any{&version, &contact, &name, &sub, &ask, &pending, &approved, &grp}, func() error {
			if contact == nil {
				return nil
			}
			if n := len(items); n == 0 || items[n-1].Contact != *contact {
				items = append(items, storage.RosterItem{Contact: *contact, Name: deref(name), Subscription: deref(sub),
					Ask: derefBool(ask), PendingIn: derefBool(pending), Approved: derefBool(approved)})
			}
			if grp != nil {
				items[len(items)-1].Groups = append(items[len(items)-1].Groups, *grp)
			}
			return nil
		})
		return err
	}()
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: roster items %s: %w", user, err)
	}
	return items, version, nil
}

// deref is *p, "" for nil: a column of an outer join's missing side.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// derefBool is *p, false for nil.
func derefBool(p *bool) bool {
	return p != nil && *p
}

// RosterItem implements storage.Roster.
func (s *Store) RosterItem(ctx context.Context, user, contact string) (storage.RosterItem, error) {
	var it storage.RosterItem
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		it = storage.RosterItem{Contact: contact}
		err := tx.QueryRow(ctx,
			`SELECT name, subscription, ask, pending_in, approved FROM roster_items WHERE username = $1 AND contact = $2`,
			user, contact).Scan(&it.Name, &it.Subscription, &it.Ask, &it.PendingIn, &it.Approved)
		if errors.Is(err, pgx.ErrNoRows) {
			return storage.ErrNotFound
		}
		if err != nil {
			return err
		}
		it.Groups, err = collectStrings(ctx, tx,
			`SELECT grp FROM roster_groups WHERE username = $1 AND contact = $2 ORDER BY grp`, user, contact)
		return err
	})
	if err != nil {
		return storage.RosterItem{}, fmt.Errorf("postgres: roster item %s %s: %w", user, contact, err)
	}
	return it, nil
}

// bumpVersion increments the roster version of user inside tx and returns
// the new value. The upsert serves users whose roster was never written;
// its row lock orders concurrent writers of one roster, so versions only
// grow.
func bumpVersion(ctx context.Context, tx pgx.Tx, user string) (int64, error) {
	var v int64
	err := tx.QueryRow(ctx,
		`INSERT INTO roster_versions (username, version) VALUES ($1, 1)
		 ON CONFLICT (username) DO UPDATE SET version = roster_versions.version + 1
		 RETURNING version`, user).Scan(&v)
	return v, err
}

// PutRosterItem implements storage.Roster. The item's row is written
// first and locks out concurrent writers of the same contact until
// commit, so the groups of two racing writes never mix.
func (s *Store) PutRosterItem(ctx context.Context, user string, item storage.RosterItem) (int64, error) {
	item, err := storage.NormalizeRosterItem(item)
	if err != nil {
		return 0, fmt.Errorf("postgres: put roster item %s: %w", user, err)
	}
	var version int64
	err = s.inTx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx,
			`INSERT INTO roster_items (username, contact, name, subscription, ask, pending_in, approved)
			 VALUES ($1, $2, $3, $4, $5, $6, $7)
			 ON CONFLICT (username, contact) DO UPDATE SET
			   name = excluded.name, subscription = excluded.subscription, ask = excluded.ask,
			   pending_in = excluded.pending_in, approved = excluded.approved`,
			user, item.Contact, item.Name, item.Subscription, item.Ask, item.PendingIn, item.Approved)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM roster_groups WHERE username = $1 AND contact = $2`, user, item.Contact); err != nil {
			return err
		}
		for _, g := range item.Groups {
			if _, err := tx.Exec(ctx,
				`INSERT INTO roster_groups (username, contact, grp) VALUES ($1, $2, $3)`, user, item.Contact, g); err != nil {
				return err
			}
		}
		version, err = bumpVersion(ctx, tx, user)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: put roster item %s %s: %w", user, item.Contact, err)
	}
	return version, nil
}

// DeleteRosterItem implements storage.Roster. The groups go with the item
// (ON DELETE CASCADE); deleting the item first takes the locks in the
// same order as PutRosterItem.
func (s *Store) DeleteRosterItem(ctx context.Context, user, contact string) (int64, error) {
	var version int64
	err := s.inTx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM roster_items WHERE username = $1 AND contact = $2`, user, contact)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return storage.ErrNotFound
		}
		version, err = bumpVersion(ctx, tx, user)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: delete roster item %s %s: %w", user, contact, err)
	}
	return version, nil
}
