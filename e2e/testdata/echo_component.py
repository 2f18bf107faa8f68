"""A plain XEP-0114 component written with slixmpp's ComponentXMPP: it
connects to the component port, authenticates with the shared secret, prints
READY, and answers every message with one whose body is "echo: " and the
original body, from the address the message was sent to. It runs until it is
killed or its deadline passes; a refused handshake or a lost connection
exits 1."""

import argparse
import asyncio
import logging
import sys

from slixmpp.componentxmpp import ComponentXMPP


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--domain", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--debug", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        format="%(levelname)-8s %(name)s: %(message)s")

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    comp = ComponentXMPP(args.domain, args.secret, args.host, args.port)
    failed = loop.create_future()

    def on_start(_event):
        print("READY", flush=True)

    def on_message(msg):
        if msg["type"] == "error" or not msg["body"]:
            return
        print("echoing %r from %s to %s" % (msg["body"], msg["from"], msg["to"]), flush=True)
        reply = comp.make_message(mto=msg["from"], mfrom=msg["to"], mbody="echo: " + msg["body"], mtype=msg["type"])
        reply["id"] = msg["id"]
        reply.send()

    def on_gone(reason):
        if not failed.done():
            failed.set_result("disconnected: %s" % reason)

    comp.add_event_handler("session_start", on_start)
    comp.add_event_handler("message", on_message)
    comp.add_event_handler("disconnected", on_gone)
    comp.add_event_handler("connection_failed", on_gone)
    comp.connect()
    try:
        reason = loop.run_until_complete(asyncio.wait_for(failed, timeout=args.timeout))
    except asyncio.TimeoutError:
        print("deadline reached", flush=True)
        return
    print("FAIL: %s" % reason, flush=True)
    sys.exit(1)


if __name__ == "__main__":
    main()
