package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// RosterItems implements storage.Roster. The items, their groups and the
// version come from one snapshot.
func (s *Store) RosterItems(ctx context.Context, user string) ([]storage.RosterItem, int64, error) {
	var (
		items   []storage.RosterItem
		version int64
	)
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		items, version = nil, 0
		err := tx.QueryRow(ctx, `SELECT version FROM roster_versions WHERE username = $1`, user).Scan(&version)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		rows, err := tx.Query(ctx,
			`SELECT contact, name, subscription, ask, pending_in, approved FROM roster_items WHERE username = $1 ORDER BY contact`, user)
		if err != nil {
			return err
		}
		index := make(map[string]int)
		var it storage.RosterItem
		_, err = pgx.ForEachRow(rows, []any{&it.Contact, &it.Name, &it.Subscription, &it.Ask, &it.PendingIn, &it.Approved}, func() error {
			index[it.Contact] = len(items)
			items = append(items, it)
			return nil
		})
		if err != nil || len(items) == 0 {
			return err
		}
		grows, err := tx.Query(ctx, `SELECT contact, grp FROM roster_groups WHERE username = $1 ORDER BY contact, grp`, user)
		if err != nil {
			return err
		}
		var contact, grp string
		_, err = pgx.ForEachRow(grows, []any{&contact, &grp}, func() error {
			if i, ok := index[contact]; ok {
				items[i].Groups = append(items[i].Groups, grp)
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: roster items %s: %w", user, err)
	}
	return items, version, nil
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
