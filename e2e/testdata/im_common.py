"""Helpers shared by the instant-messaging scripts (im_*.py): several
sessions in one event loop, each recording the roster pushes, presences and
messages it receives so that a script can wait for one of them, with a
deadline, and later check the whole sequence."""

import argparse
import asyncio

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import xmpp_common as xc

NS_ROSTER = "jabber:iq:roster"


def base_parser(description):
    """The common connection options; users come as --user JID PASSWORD."""
    p = xc.base_parser(description)
    p.add_argument("--user", nargs=2, action="append", default=[], metavar=("JID", "PASSWORD"),
                   help="an account the script may log in with (repeatable)")
    return p


def passwords(args):
    return {jid: pw for jid, pw in args.user}


def account(args, spec):
    """The connection arguments and credentials of a user given on the
    command line as JID PASSWORD PORT CA, PORT being HOST:PORT for a server
    on another loopback address (a federation peer): each user logs in to
    their own server with that server's CA."""
    jid, password, port, ca = spec
    ns = argparse.Namespace(**vars(args))
    if ":" in port:
        ns.host, port = port.rsplit(":", 1)
    ns.port, ns.ca = int(port), ca
    return ns, jid, password


def account_parser(description):
    """A parser for scripts whose users come as JID PASSWORD PORT CA, each
    with its own server: --port and --ca are then not needed."""
    p = xc.base_parser(description)
    p.set_defaults(port=0, ca="")
    for action in p._actions:
        if action.dest in ("port", "ca"):
            action.required = False
    return p


class Log:
    """Things one session received, in order, with a way to wait for one."""

    def __init__(self, name):
        self.name = name
        self.items = []
        self._changed = asyncio.Event()

    def add(self, item):
        self.items.append(item)
        self._changed.set()

    async def wait_for(self, pred, what, timeout=10.0):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for item in self.items:
                if pred(item):
                    return item
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise xc.CheckFailed("%s: no %s within %.0f s; got:\n  %s" % (
                    self.name, what, timeout, "\n  ".join(str(i) for i in self.items) or "(nothing)"))
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def wait_count(self, n, what, timeout=10.0):
        await self.wait_for(lambda _: len(self.items) >= n, "%s (%d in all)" % (what, n), timeout)
        return self.items[:n]


class Push:
    """One item of a roster push, reduced to what the tests compare."""

    def __init__(self, jid, subscription, ask, ver):
        self.jid, self.subscription, self.ask, self.ver = jid, subscription, ask, ver

    def state(self):
        return (self.jid, self.subscription, self.ask)

    def __repr__(self):
        return "push(%s subscription=%s ask=%s ver=%s)" % (self.jid, self.subscription, self.ask or "-", self.ver)


class Session:
    """A logged-in client that records what it receives. Subscription
    requests are left to the script: slixmpp would otherwise approve them
    and subscribe back on its own."""

    def __init__(self, args, jid, password, plugins=()):
        self.client = xc.Client(args, jid, password)
        self.xmpp = x = self.client.xmpp
        for p in plugins:
            x.register_plugin(p)
        x.auto_authorize = None
        x.auto_subscribe = False
        self.name = jid
        self.pushes = Log(jid + " roster pushes")
        self.presences = Log(jid + " presences")
        self.messages = Log(jid + " messages")
        x.add_event_handler("roster_update", self._on_roster)
        x.add_event_handler("presence", self.presences.add)
        # Every message, not only those with a body that slixmpp's
        # "message" event reports: errors and carbons count too.
        x.register_handler(Callback("record messages", MatchXPath("{jabber:client}message"), self.messages.add))

    def _on_roster(self, iq):
        if iq["type"] != "set":
            return
        ver = iq["roster"]["ver"]
        for jid, item in iq["roster"]["items"].items():
            self.pushes.add(Push(str(jid), item["subscription"], item["ask"], ver))

    @property
    def jid(self):
        return self.xmpp.boundjid

    async def start(self, presence=True, roster=True):
        await self.client.start(presence=presence)
        if roster:
            # RFC 6121 §2.1.6: only resources that asked for the roster get
            # pushes.
            self.roster = await self.get_roster()
        return self

    async def get_roster(self):
        iq = self.xmpp.make_iq_get(queryxmlns=NS_ROSTER)
        res = await iq.send(timeout=10)
        return {str(j): (i["subscription"], i["ask"]) for j, i in res["roster"]["items"].items()}

    def presence_to(self, to, ptype=None):
        self.xmpp.send_presence(pto=to, ptype=ptype)

    async def close(self):
        await self.client.close()


def from_bare(bare, ptype):
    """A predicate for a presence of type ptype from any resource of bare."""
    return lambda p: p["from"].bare == str(bare) and p["type"] == ptype


def run(main, args):
    xc.run(main, args)
