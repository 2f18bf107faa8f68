"""A gateway-like XEP-0114 component, written with slixmpp's ComponentXMPP
and its XEP-0356 plugin, that the server granted roster access: it waits
for the server's advertisement of its privileges, puts a legacy contact
into a user's roster with a privileged roster set, reads the roster back
with a privileged roster get, and checks that the roster push of the
change came to it too. Exits 0 and prints OK when all of that held."""

import argparse
import asyncio
import logging
import sys

from slixmpp.componentxmpp import ComponentXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--domain", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--server", default="localhost", help="the domain whose users the component manages")
    p.add_argument("--user", required=True, help="bare JID whose roster to change")
    p.add_argument("--contact", required=True, help="the legacy contact to add")
    p.add_argument("--name", default="Legacy Friend")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--debug", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        format="%(levelname)-8s %(name)s: %(message)s")

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    comp = ComponentXMPP(args.domain, args.secret, args.host, args.port)
    comp.register_plugin("xep_0297")
    comp.register_plugin("xep_0356")
    advertised = loop.create_future()
    pushes = asyncio.Queue()
    failed = loop.create_future()

    def on_advertised(_event):
        if not advertised.done():
            advertised.set_result(dict(comp["xep_0356"].granted_privileges))

    def on_privilege_message(msg):
        print("advertisement from %s: %s" % (msg["from"], msg["privilege"]), flush=True)

    def on_push(iq):
        pushes.put_nowait(iq)
        iq.reply().send()

    def on_gone(reason):
        if not failed.done():
            failed.set_result("disconnected: %s" % reason)

    comp.add_event_handler("privileges_advertised", on_advertised)
    comp.register_handler(Callback("privilege message", StanzaPath("message/privilege"), on_privilege_message))
    comp.register_handler(Callback("roster push", StanzaPath("iq@type=set/roster"), on_push))
    comp.add_event_handler("disconnected", on_gone)
    comp.add_event_handler("connection_failed", on_gone)

    async def run():
        perms = await advertised
        print("privileges: %s" % perms, flush=True)
        if perms.get("roster") != "both":
            raise RuntimeError("roster privilege %r, want both" % perms.get("roster"))
        res = await comp["xep_0356"].set_roster(args.user, {
            args.contact: {"name": args.name, "subscription": "both", "groups": ["Bridge"]},
        }, timeout=10)
        print("roster set answered %s from %s" % (res["type"], res["from"]), flush=True)
        push = await asyncio.wait_for(pushes.get(), timeout=10)
        print("roster push: %s" % push, flush=True)
        if push["from"].bare != args.user or args.contact not in push["roster"]["items"]:
            raise RuntimeError("push %s is not of %s from %s" % (push, args.contact, args.user))
        res = await comp["xep_0356"].get_roster(args.user, timeout=10)
        items = res["roster"]["items"]
        print("roster of %s: %s" % (args.user, dict(items)), flush=True)
        item = items.get(args.contact)
        if item is None or item["subscription"] != "both" or item["name"] != args.name:
            raise RuntimeError("roster get: %s is missing or wrong: %s" % (args.contact, dict(items)))

    async def guarded():
        task = asyncio.ensure_future(run())
        done, _ = await asyncio.wait([task, failed], timeout=args.timeout, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
            return
        if failed in done:
            raise RuntimeError(failed.result())
        raise asyncio.TimeoutError()

    comp.connect()
    try:
        loop.run_until_complete(guarded())
    except (IqError, IqTimeout) as e:
        print("FAIL: IQ %s" % e.iq, flush=True)
        sys.exit(1)
    except asyncio.TimeoutError:
        print("FAIL: no result within %.0f s" % args.timeout, flush=True)
        sys.exit(4)
    except RuntimeError as e:
        print("FAIL: %s" % e, flush=True)
        sys.exit(1)
    print("OK", flush=True)
    comp.disconnect()


if __name__ == "__main__":
    main()
