package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// RosterItems implements storage.Roster.
func (s *Store) RosterItems(ctx context.Context, user string) ([]storage.RosterItem, int64, error) {
	var (
		items   []storage.RosterItem
		version int64
	)
	// One read transaction, so that the items, their groups and the
	// version all come from the same snapshot.
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: roster items %s: %w", user, err)
	}
	defer tx.Rollback()
	err = func() error {
		err := tx.QueryRowContext(ctx, `SELECT version FROM roster_versions WHERE username = ?`, user).Scan(&version)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		rows, err := tx.QueryContext(ctx,
			`SELECT contact, name, subscription, ask, pending_in, approved FROM roster_items WHERE username = ? ORDER BY contact`, user)
		if err != nil {
			return err
		}
		defer rows.Close()
		index := make(map[string]int)
		for rows.Next() {
			var it storage.RosterItem
			if err := rows.Scan(&it.Contact, &it.Name, &it.Subscription, &it.Ask, &it.PendingIn, &it.Approved); err != nil {
				return err
			}
			index[it.Contact] = len(items)
			items = append(items, it)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(items) == 0 {
			return nil
		}
		grows, err := tx.QueryContext(ctx,
			`SELECT contact, grp FROM roster_groups WHERE username = ? ORDER BY contact, grp`, user)
		if err != nil {
			return err
		}
		defer grows.Close()
		for grows.Next() {
			var contact, grp string
			if err := grows.Scan(&contact, &grp); err != nil {
				return err
			}
			if i, ok := index[contact]; ok {
				items[i].Groups = append(items[i].Groups, grp)
			}
		}
		return grows.Err()
	}()
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: roster items %s: %w", user, err)
	}
	return items, version, nil
}

// RosterItem implements storage.Roster.
func (s *Store) RosterItem(ctx context.Context, user, contact string) (storage.RosterItem, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return storage.RosterItem{}, fmt.Errorf("sqlite: roster item %s %s: %w", user, contact, err)
	}
	defer tx.Rollback()
	it := storage.RosterItem{Contact: contact}
	err = func() error {
		err := tx.QueryRowContext(ctx,
			`SELECT name, subscription, ask, pending_in, approved FROM roster_items WHERE username = ? AND contact = ?`,
			user, contact).Scan(&it.Name, &it.Subscription, &it.Ask, &it.PendingIn, &it.Approved)
		if errors.Is(err, sql.ErrNoRows) {
			return storage.ErrNotFound
		}
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx,
			`SELECT grp FROM roster_groups WHERE username = ? AND contact = ? ORDER BY grp`, user, contact)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var grp string
			if err := rows.Scan(&grp); err != nil {
				return err
			}
			it.Groups = append(it.Groups, grp)
		}
		return rows.Err()
	}()
	if err != nil {
		return storage.RosterItem{}, fmt.Errorf("sqlite: roster item %s %s: %w", user, contact, err)
	}
	return it, nil
}

// bumpVersion increments the roster version of user inside tx and returns
// the new value. The upsert serves users whose roster was never written.
func bumpVersion(ctx context.Context, tx *sql.Tx, user string) (int64, error) {
	var v int64
	err := tx.QueryRowContext(ctx,
		`INSERT INTO roster_versions (username, version) VALUES (?, 1)
		 ON CONFLICT (username) DO UPDATE SET version = roster_versions.version + 1
		 RETURNING version`, user).Scan(&v)
	return v, err
}

// PutRosterItem implements storage.Roster.
func (s *Store) PutRosterItem(ctx context.Context, user string, item storage.RosterItem) (int64, error) {
	item, err := storage.NormalizeRosterItem(item)
	if err != nil {
		return 0, fmt.Errorf("sqlite: put roster item %s: %w", user, err)
	}
	var version int64
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO roster_items (username, contact, name, subscription, ask, pending_in, approved)
			 VALUES (?, ?, ?, ?, ?, ?, ?)
			 ON CONFLICT (username, contact) DO UPDATE SET
			   name = excluded.name, subscription = excluded.subscription, ask = excluded.ask,
			   pending_in = excluded.pending_in, approved = excluded.approved`,
			user, item.Contact, item.Name, item.Subscription, item.Ask, item.PendingIn, item.Approved)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM roster_groups WHERE username = ? AND contact = ?`, user, item.Contact); err != nil {
			return err
		}
		for _, g := range item.Groups {
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO roster_groups (username, contact, grp) VALUES (?, ?, ?)`, user, item.Contact, g); err != nil {
				return err
			}
		}
		version, err = bumpVersion(ctx, tx, user)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: put roster item %s %s: %w", user, item.Contact, err)
	}
	return version, nil
}

// DeleteRosterItem implements storage.Roster.
func (s *Store) DeleteRosterItem(ctx context.Context, user, contact string) (int64, error) {
	var version int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM roster_groups WHERE username = ? AND contact = ?`, user, contact); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM roster_items WHERE username = ? AND contact = ?`, user, contact)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return storage.ErrNotFound
		}
		version, err = bumpVersion(ctx, tx, user)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete roster item %s %s: %w", user, contact, err)
	}
	return version, nil
}
