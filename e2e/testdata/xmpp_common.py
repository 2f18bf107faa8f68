"""Shared helpers for the Ambrosia end-to-end client scripts.

Every script prints what it checked and exits 0 on success. Failures exit
with a code the Go tests can tell apart:
  1  a check failed or something unexpected happened
  2  bad command line
  3  SASL authentication was refused (the condition is printed)
  4  the overall deadline passed
"""

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import slixmpp

EXIT_FAIL = 1
EXIT_AUTH_FAILED = 3
EXIT_TIMEOUT = 4


class CheckFailed(Exception):
    pass


class AuthFailed(Exception):
    def __init__(self, condition):
        super().__init__(condition)
        self.condition = condition


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def base_parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True, help="PEM file trusted as the only root")
    # Left to itself, slixmpp 1.8 first tries -PLUS mechanisms with
    # tls-unique channel binding, which TLS 1.3 does not define; the server
    # refuses those at once and slixmpp falls back to plain SCRAM, as any
    # user of slixmpp would see.
    p.add_argument("--mech", default="", help="force this SASL mechanism (default: slixmpp chooses)")
    p.add_argument("--direct-tls", action="store_true", help="XEP-0368 direct TLS instead of STARTTLS")
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--debug", action="store_true")
    return p


class Client:
    """One logged-in slixmpp session, connected with certificate verification on."""

    def __init__(self, args, jid, password):
        self.args = args
        self.xmpp = slixmpp.ClientXMPP(jid, password, sasl_mech=args.mech or None)
        for plugin in ("xep_0030", "xep_0092", "xep_0199"):
            self.xmpp.register_plugin(plugin)
        # The server's self-signed certificate is the only trust anchor, so a
        # wrong certificate or host name fails the handshake instead of being
        # silently accepted.
        self.xmpp.ca_certs = Path(args.ca)
        if args.direct_tls:
            # XEP-0368 requires the ALPN protocol; slixmpp 1.8 does not set it.
            self.xmpp.ssl_context.set_alpn_protocols(["xmpp-client"])
        self.mech_used = None
        self._started = asyncio.get_running_loop().create_future()
        x = self.xmpp
        x.add_event_handler("session_start", self._on_start)
        x.add_event_handler("auth_success", self._on_auth_success)
        x.add_event_handler("failed_auth", self._on_failed_auth)
        x.add_event_handler("failed_all_auth", lambda _=None: self._fail(AuthFailed("no usable mechanism")))
        x.add_event_handler("connection_failed", lambda e: self._fail(CheckFailed("connection failed: %s" % e)))
        x.add_event_handler("ssl_invalid_chain", lambda e: self._fail(CheckFailed("certificate not trusted: %s" % e)))
        x.add_event_handler("disconnected", lambda reason: self._fail(CheckFailed("disconnected before session start: %s" % reason)))

    def _fail(self, exc):
        if not self._started.done():
            self._started.set_exception(exc)

    def _on_auth_success(self, _stanza):
        mech = self.xmpp["feature_mechanisms"].mech
        self.mech_used = mech.name if mech is not None else None

    def _on_failed_auth(self, stanza):
        mech = self.xmpp["feature_mechanisms"].mech
        name = mech.name if mech is not None else ""
        if not self.args.mech and name.endswith("-PLUS"):
            # Left to choose, slixmpp tries -PLUS with tls-unique first and
            # then moves on to the next mechanism by itself.
            print("%s refused, trying the next mechanism" % name, flush=True)
            return
        self._fail(AuthFailed(stanza["condition"] or "(no condition)"))

    def _on_start(self, _event):
        if not self._started.done():
            self._started.set_result(True)

    async def start(self, presence=True):
        a = self.args
        self.xmpp.connect((a.host, a.port), use_ssl=a.direct_tls, force_starttls=not a.direct_tls)
        await self._started
        if a.mech:
            check(self.mech_used == a.mech, "SASL mechanism used was %r, want %r" % (self.mech_used, a.mech))
        if presence:
            self.xmpp.send_presence()
            # A ping answered after the presence shows the server has handled
            # the presence, so messages sent by others from now on find this
            # resource available.
            await self.xmpp["xep_0199"].send_ping(self.xmpp.boundjid.domain, timeout=10)
        print("logged in as %s (mechanism %s)" % (self.xmpp.boundjid, self.mech_used), flush=True)
        return self

    async def close(self):
        try:
            await asyncio.wait_for(self.xmpp.disconnect(wait=1), timeout=5)
        except (asyncio.TimeoutError, ConnectionError):
            # The checks are done; a slow goodbye is not a test failure.
            pass


def run(main_coro_fn, args):
    """Runs main under the overall deadline and maps outcomes to exit codes."""
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        format="%(levelname)-8s %(name)s: %(message)s")

    async def guarded():
        return await asyncio.wait_for(main_coro_fn(args), timeout=args.timeout)

    try:
        asyncio.run(guarded())
    except AuthFailed as e:
        print("AUTH_FAILED condition=%s" % e.condition, flush=True)
        sys.exit(EXIT_AUTH_FAILED)
    except CheckFailed as e:
        print("FAIL: %s" % e, flush=True)
        sys.exit(EXIT_FAIL)
    except asyncio.TimeoutError:
        print("FAIL: no result within %.0f s" % args.timeout, flush=True)
        sys.exit(EXIT_TIMEOUT)
    except slixmpp.exceptions.IqError as e:
        print("FAIL: IQ error: %s" % e.iq, flush=True)
        sys.exit(EXIT_FAIL)
    except slixmpp.exceptions.IqTimeout as e:
        print("FAIL: IQ timeout: %s" % e.iq, flush=True)
        sys.exit(EXIT_FAIL)
    print("OK", flush=True)
