"""A user asks a bot for arithmetic in JSON containers (XEP-0335): in a
chat message to the bot's bare JID, and in an IQ to its full JID; the
answers carry the results, and an operation the bot does not know comes
back as a bad-request error."""

import asyncio

from slixmpp import Iq
from slixmpp.plugins.xep_0335 import JSON_Container
from slixmpp.xmlstream import register_stanza_plugin
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath, StanzaPath

import xmpp_common as xc

NS_JSON = "{urn:xmpp:json:0}json"


async def main(args):
    answers = asyncio.Queue()
    errors = asyncio.Queue()
    c = xc.Client(args, args.jid, args.password)
    c.xmpp.register_plugin("xep_0335")
    register_stanza_plugin(Iq, JSON_Container)

    def on_message(msg):
        if msg["from"].bare == args.bot and msg["type"] != "error":
            answers.put_nowait(msg)

    def on_error(msg):
        if msg["from"].bare == args.bot:
            errors.put_nowait(msg)

    # slixmpp's "message" event is only for messages with a body; the
    # bot's answers carry JSON alone.
    c.xmpp.register_handler(Callback("json answer", MatchXPath("{jabber:client}message/" + NS_JSON), on_message))
    c.xmpp.register_handler(Callback("error answer", StanzaPath("message@type=error"), on_error))
    await c.start()

    m = c.xmpp.make_message(mto=args.bot, mtype="chat")
    m["json"]["value"] = {"op": "add", "a": 1, "b": 2}
    m.send()
    a = await answers.get()
    print("answer: %s" % a, flush=True)
    xc.check(a["json"]["value"] == {"result": 3}, "answer %r, want {'result': 3}" % a["json"]["value"])
    xc.check(a["type"] == "chat", "answer of type %r, want chat" % a["type"])
    xc.check(a["to"].full == c.xmpp.boundjid.full, "answer to %s, want %s" % (a["to"], c.xmpp.boundjid))

    iq = c.xmpp.make_iq_get(ito=args.bot_full)
    iq["json"]["value"] = {"op": "mul", "a": 6, "b": 7}
    r = await iq.send(timeout=10)
    print("IQ result: %s" % r, flush=True)
    xc.check(r["json"]["value"] == {"result": 42}, "IQ result %r, want {'result': 42}" % r["json"]["value"])

    m = c.xmpp.make_message(mto=args.bot, mtype="chat")
    m["json"]["value"] = {"op": "div", "a": 1, "b": 0}
    m.send()
    e = await errors.get()
    print("error: %s" % e, flush=True)
    xc.check(e["error"]["condition"] == "bad-request", "error %r, want bad-request" % e["error"]["condition"])
    await c.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--bot", required=True, help="the bot's bare JID")
    p.add_argument("--bot-full", required=True, help="the bot's full JID, for the IQ")
    xc.run(main, p.parse_args())
