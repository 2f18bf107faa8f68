package main

import (
	"log/slog"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/config"
	"github.com/ambrosia-xmpp/ambrosia/internal/limit"
)

// fileReserve is the share of the file limit kept from client
// connections: for the listeners, the store, federation and the
// monitoring endpoints.
const fileReserve = 10 // percent

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
		reserve := max(files*fileReserve/100, 64)
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
