package main

import (
	"fmt"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/component"
	"github.com/ambrosia-xmpp/ambrosia/internal/config"
	"github.com/ambrosia-xmpp/ambrosia/internal/limit"
	"github.com/ambrosia-xmpp/ambrosia/internal/muc"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"

	"log/slog"
)

// smStore is everything the session manager keeps in storage.
type smStore interface {
	sm.Accounts
	storage.Roster
	storage.Offline
	storage.Blocklist
	storage.PrivateData
	storage.Archive
	storage.PEP
	storage.Invites
}

// newSessionManagers builds the session manager of every configured
// domain, the same way for `serve` and `service sm`.
func newSessionManagers(cfg config.Config, r *router.Router, store smStore, m sm.Metrics, log *slog.Logger, adjust func(*sm.Config, *sm.Deps)) ([]*sm.SM, error) {
	var out []*sm.SM
	for _, d := range cfg.Domains {
		deps := sm.Deps{Router: r, Accounts: store, Roster: store, Offline: store, Blocklist: store, Private: store, PEP: store, Log: log, Metrics: m}
		if cfg.Archive.Enabled {
			deps.Archive = store
		}
		if cfg.Invites.Enabled && cfg.Invites.Users {
			deps.Invites = store
		}
		sc := sm.Config{Domain: d, Version: version(), ArchiveRetention: time.Duration(cfg.Archive.Retention), ContactAddresses: cfg.Contact.Addresses(), UserInvites: cfg.Invites.Enabled && cfg.Invites.Users}
		if adjust != nil {
			adjust(&sc, &deps)
		}
		m, err := sm.New(sc, deps)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// newMUC builds the conference service of every configured domain, the
// same way for `serve` and `service muc`; nil when [muc] disables it.
func newMUC(cfg config.Config, r *router.Router, store muc.Store, m muc.Metrics, log *slog.Logger, adjust func(*muc.Deps)) (*muc.Service, error) {
	if !cfg.MUC.Enabled {
		return nil, nil
	}
	mc := muc.DefaultConfig()
	mc.Services = map[string]string{}
	for _, d := range cfg.Domains {
		mc.Services[cfg.MUC.Component+"."+d] = d
	}
	mc.Create = cfg.MUC.Create
	mc.Admins = cfg.MUC.Admins
	mc.MaxRoomsPerUser = cfg.MUC.MaxRoomsPerUser
	mc.Archive = cfg.Archive.Enabled
	mc.Limits.MaxUsers = cfg.MUC.MaxOccupants
	mc.Limits.MaxHistory = cfg.MUC.MaxHistory
	mc.Limits.MessageRate = cfg.MUC.MessageRate
	mc.Limits.MessageBurst = cfg.MUC.MessageBurst
	deps := muc.Deps{Router: r, Store: store, Log: log, Metrics: m}
	if adjust != nil {
		adjust(&deps)
	}
	return muc.New(mc, deps)
}

// c2sConfig is the client edge's configuration, the same for `serve` and
// `gateway`.
func c2sConfig(cfg config.Config) c2s.Config {
	c := c2s.DefaultConfig()
	c.Addr, c.TLSAddr = cfg.C2S.Addr, cfg.C2S.TLSAddr
	c.AllowPlain = cfg.C2S.AllowPlain
	c.AllowRegistration = cfg.C2S.AllowRegistration
	c.Limits = xmlstream.DefaultLimits()
	c.Limits.MaxStanzaBytes = cfg.C2S.MaxStanzaSize
	c.NegotiationTimeout = time.Duration(cfg.C2S.NegotiationTimeout)
	c.IdleTimeout = time.Duration(cfg.C2S.IdleTimeout)
	c.ResumeTimeout = time.Duration(cfg.C2S.ResumeTimeout)
	c.MaxAuthFailures = cfg.C2S.MaxAuthFailures
	c.AuthTimeout = time.Duration(cfg.Limits.AuthTimeout)
	c.TLSHandshakeTimeout = time.Duration(cfg.Limits.TLSHandshakeTimeout)
	c.PreAuthMaxStanzaBytes = cfg.Limits.PreAuthMaxStanzaSize
	c.ReadRate = limit.Rate{Bytes: cfg.Limits.C2SRate, Burst: cfg.Limits.C2SBurst}
	c.MaxSessionsPerAccount = cfg.Limits.MaxSessionsPerAccount
	if cfg.Limits.MaxQueuedBytes > 0 {
		c.MaxQueuedBytes = cfg.Limits.MaxQueuedBytes
	}
	if cfg.Limits.MaxUnackedStanzas > 0 {
		c.SMMaxQueue = cfg.Limits.MaxUnackedStanzas
	}
	return c
}

// componentConfig is the external component listener's configuration, the
// same for `serve` and `gateway`.
func componentConfig(cfg config.Config) (component.Config, error) {
	cc := component.DefaultConfig()
	cc.Addr = cfg.Component.Addr
	cc.ReadRate = limit.Rate{Bytes: cfg.Limits.ComponentRate, Burst: cfg.Limits.ComponentBurst}
	for _, e := range cfg.Component.External {
		g, err := e.Privileges.Grant()
		if err != nil {
			return cc, fmt.Errorf("component.external.privileges.%w (component %s)", err, e.Domain)
		}
		cc.Components = append(cc.Components, component.External{Domain: e.Domain, Secret: e.Secret, Privileges: g})
	}
	return cc, nil
}
