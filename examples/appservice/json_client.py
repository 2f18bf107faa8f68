#!/usr/bin/env python3
"""Asks the example directory (directory.py) a question in JSON.

An XMPP client (slixmpp: Debian python3-slixmpp) logs in, sends dir-alice an
XEP-0335 JSON container,

  <message to='dir-alice@localhost' type='chat'>
    <json xmlns='urn:xmpp:json:0'>{"op": "lookup", "name": "carol"}</json>
  </message>

and prints the JSON of the answer, which comes in a container too:

  python3 json_client.py --jid me@localhost --password ... --name carol \\
      --ca DATA/tls/localhost.crt

--ca is the server's certificate (Ambrosia makes a self-signed one in its
data directory); without it, the system's roots are trusted.
"""

import argparse
import asyncio
import json
import sys
from pathlib import Path

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

NS_JSON = "urn:xmpp:json:0"


async def ask(args):
    x = slixmpp.ClientXMPP(args.jid, args.password)
    x.register_plugin("xep_0335")
    if args.ca:
        x.ca_certs = Path(args.ca)
    started, answer = asyncio.Event(), asyncio.get_running_loop().create_future()
    x.add_event_handler("session_start", lambda _: started.set())

    def on_answer(msg):
        if msg["from"].bare == args.to and not answer.done():
            answer.set_result(json.loads(msg.xml.find("{%s}json" % NS_JSON).text))

    # slixmpp's "message" event is only for messages with a body.
    x.register_handler(Callback("JSON answer", MatchXPath("{jabber:client}message/{%s}json" % NS_JSON), on_answer))
    x.connect((args.host, args.port))
    await asyncio.wait_for(started.wait(), args.timeout)

    req = x.make_message(mto=args.to, mtype="chat")
    req["json"]["value"] = {"op": "lookup", "name": args.name}
    req.send()
    result = await asyncio.wait_for(answer, args.timeout)
    print(json.dumps(result, sort_keys=True))
    await x.disconnect()
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--to", default="dir-alice@localhost")
    p.add_argument("--name", default="carol", help="whom to look up")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5222)
    p.add_argument("--ca", default="", help="PEM file of the server's certificate")
    p.add_argument("--timeout", type=float, default=20)
    args = p.parse_args()
    try:
        result = asyncio.run(ask(args))
    except asyncio.TimeoutError:
        sys.exit("no answer within %.0f s" % args.timeout)
    sys.exit(0 if result.get("found") else 1)


if __name__ == "__main__":
    main()
