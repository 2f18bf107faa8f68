package main

import (
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/config"
	"github.com/ambrosia-xmpp/ambrosia/internal/limit"
)

// fileReserve is the share of the file limit kept from client and
// server connections: for the listeners, the store and the monitoring
// endpoints.
const fileReserve = 10 // percent

// s2sShare: incoming server streams may hold one in s2sShare of the file
// limit, kept from the clients' share.
const s2sShare = 10

// restartLimits are the keys of [limits] a reload does not apply: the
// read rates of server and component streams are fixed when their
// services start.
var restartLimits = []string{"limits.s2s_rate", "limits.s2s_burst", "limits.component_rate", "limits.component_burst"}

// limits is the bookkeeping of the [limits] section for the edges of a
// process. It is built once at start; a reload gives it new bounds
// (apply), which the edges read at their next decision, so that nothing
// open is dropped.
type limits struct {
	files uint64 // the process's file limit, which the caps derive from
	log   *slog.Logger

	conns         *limit.Conns    // client connections
	failures      *limit.Failures // failed logins
	invites       *limit.Failures // invalid invitation tokens
	registrations *limit.Events   // in-band registrations
	servers       *limit.Conns    // incoming server streams
	// edge, once set, takes the per-connection limits of the client edge.
	edge *c2s.Server
}

// newLimits builds the limits of cfg for a process that may open files
// descriptors.
func newLimits(cfg config.Config, files uint64, log *slog.Logger) *limits {
	l := &limits{files: files, log: log}
	cc, sc, fc, ic := l.configs(cfg)
	l.conns, l.servers = limit.NewConns(cc), limit.NewConns(sc)
	l.failures, l.invites = limit.NewFailures(fc), limit.NewFailures(ic)
	l.registrations = limit.NewEvents(cfg.Limits.RegistrationsPerIP, time.Duration(cfg.Limits.RegistrationWindow), fc.Exempt)
	l.logClient(cc)
	return l
}

// configs are the bounds of cfg for the client connections, the server
// streams, the failed logins and the invalid invitations.
func (l *limits) configs(cfg config.Config) (client, server limit.ConnConfig, logins, invites limit.FailureConfig) {
	lc := cfg.Limits
	exempt, _ := limit.ParseNets(lc.Exempt) // validated with the config
	files := l.files
	client = limit.ConnConfig{
		MaxUnauthenticated:        lc.MaxUnauthenticated,
		MaxUnauthenticatedPerAddr: lc.MaxUnauthenticatedPerIP,
		MaxPerAddr:                lc.MaxConnectionsPerIP,
		NewPerSecond:              lc.NewConnectionsPerIP,
		NewBurst:                  lc.NewConnectionsBurst,
		Exempt:                    exempt,
	}
	// Incoming server streams: a share of the descriptors, a twentieth
	// for streams not authenticated yet, and the per-address cap on those
	// of the clients. No rate: a peer that restarts opens a stream per
	// domain pair at once.
	server = limit.ConnConfig{MaxUnauthenticatedPerAddr: lc.MaxUnauthenticatedPerIP, Exempt: exempt}
	if files > 0 && files < 1<<40 {
		reserve := max(files*fileReserve/100, 64) + files/s2sShare
		if files > reserve {
			client.Max = int(files - reserve)
		}
		if client.MaxUnauthenticated == 0 {
			client.MaxUnauthenticated = int(max(files/4, 16))
		}
		server.Max = int(max(files/s2sShare, 16))
		server.MaxUnauthenticated = int(max(files/20, 16))
	}
	logins = limit.DefaultFailureConfig()
	logins.PerAddr, logins.PerAccount = lc.LoginFailuresPerIP, lc.LoginFailuresPerAccount
	logins.Window = time.Duration(lc.LoginFailureWindow)
	logins.Exempt = exempt
	invites = limit.DefaultFailureConfig()
	invites.PerAddr, invites.PerAccount = lc.InviteFailuresPerIP, 0
	invites.Window = time.Duration(lc.InviteFailureWindow)
	invites.Exempt = exempt
	return client, server, logins, invites
}

func (l *limits) logClient(cc limit.ConnConfig) {
	l.log.Info("client limits", "max_connections", cc.Max, "max_unauthenticated", cc.MaxUnauthenticated,
		"max_unauthenticated_per_ip", cc.MaxUnauthenticatedPerAddr, "max_connections_per_ip", cc.MaxPerAddr,
		"new_connections_per_ip", cc.NewPerSecond, "exempt", cc.Exempt.Strings())
}

// c2sLimits are the per-connection limits of cfg for the client edge.
func c2sLimits(cfg config.Config) c2s.LiveLimits {
	lc := cfg.Limits
	return c2s.LiveLimits{
		ReadRate:              limit.Rate{Bytes: lc.C2SRate, Burst: lc.C2SBurst},
		MaxSessionsPerAccount: lc.MaxSessionsPerAccount,
		AuthTimeout:           time.Duration(lc.AuthTimeout),
		TLSHandshakeTimeout:   time.Duration(lc.TLSHandshakeTimeout),
		PreAuthMaxStanzaBytes: lc.PreAuthMaxStanzaSize,
		MaxQueuedBytes:        lc.MaxQueuedBytes,
		SMMaxQueue:            lc.MaxUnackedStanzas,
	}
}

// apply gives the edges the bounds of cfg's [limits], as a reload does,
// and logs each key that changed from old with its new value. It returns
// the keys applied; those of restartLimits are left to the caller to
// name as waiting for a restart.
func (l *limits) apply(old, cfg config.Config) []string {
	var keys []string
	for _, k := range config.Changed(old, cfg) {
		if strings.HasPrefix(k, "limits.") && !slices.Contains(restartLimits, k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	cc, sc, fc, ic := l.configs(cfg)
	l.conns.SetConfig(cc)
	l.servers.SetConfig(sc)
	l.failures.SetConfig(fc)
	l.invites.SetConfig(ic)
	l.registrations.Set(cfg.Limits.RegistrationsPerIP, time.Duration(cfg.Limits.RegistrationWindow), fc.Exempt)
	if l.edge != nil {
		l.edge.SetLimits(c2sLimits(cfg))
	}
	for _, k := range keys {
		l.log.Info("reload: limit changed", "key", k, "from", config.Value(old, k), "to", config.Value(cfg, k))
	}
	l.logClient(cc)
	return keys
}
