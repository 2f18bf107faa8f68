package main

import (
	"log/slog"
	"time"

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

// serverLimits builds the limits of incoming server streams: a share of
// the descriptors, a twentieth for streams not authenticated yet, and the
// per-address cap on those of the clients. No rate: a peer that restarts
// opens a stream per domain pair at once.
func serverLimits(cfg config.Config, files uint64) *limit.Conns {
	exempt, _ := limit.ParseNets(cfg.Limits.Exempt)
	sc := limit.ConnConfig{MaxUnauthenticatedPerAddr: cfg.Limits.MaxUnauthenticatedPerIP, Exempt: exempt}
	if files > 0 && files < 1<<40 {
		sc.Max = int(max(files/s2sShare, 16))
		sc.MaxUnauthenticated = int(max(files/20, 16))
	}
	return limit.NewConns(sc)
}

// clientLimits builds the connection, login and registration limits of
// the client edge for a process that may open files descriptors.
func clientLimits(cfg config.Config, files uint64, log *slog.Logger) (*limit.Conns, *limit.Failures, *limit.Events) {
	l := cfg.Limits
	exempt, _ := limit.ParseNets(l.Exempt) // validated with the config
	cc := limit.ConnConfig{
		MaxUnauthenticated:        l.MaxUnauthenticated,
		MaxUnauthenticatedPerAddr: l.MaxUnauthenticatedPerIP,
		MaxPerAddr:                l.MaxConnectionsPerIP,
		NewPerSecond:              l.NewConnectionsPerIP,
		NewBurst:                  l.NewConnectionsBurst,
		Exempt:                    exempt,
	}
	if files > 0 && files < 1<<40 {
		reserve := max(files*fileReserve/100, 64) + files/s2sShare
		if files > reserve {
			cc.Max = int(files - reserve)
		}
		if cc.MaxUnauthenticated == 0 {
			cc.MaxUnauthenticated = int(max(files/4, 16))
		}
	}
	log.Info("client limits", "max_connections", cc.Max, "max_unauthenticated", cc.MaxUnauthenticated,
		"max_unauthenticated_per_ip", cc.MaxUnauthenticatedPerAddr, "max_connections_per_ip", cc.MaxPerAddr,
		"new_connections_per_ip", cc.NewPerSecond, "exempt", l.Exempt)
	fc := limit.DefaultFailureConfig()
	fc.PerAddr, fc.PerAccount = l.LoginFailuresPerIP, l.LoginFailuresPerAccount
	fc.Window = time.Duration(l.LoginFailureWindow)
	fc.Exempt = exempt
	regs := limit.NewEvents(l.RegistrationsPerIP, time.Duration(l.RegistrationWindow), exempt)
	return limit.NewConns(cc), limit.NewFailures(fc), regs
}
