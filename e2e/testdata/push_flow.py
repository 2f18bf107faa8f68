"""Push Notifications (XEP-0357) where push, stream management and offline
storage meet. An app server (slixmpp's ComponentXMPP on the component port)
answers the notifications the server publishes. Alice, with resumable
stream management, registers it (slixmpp 1.8 has no XEP-0357 plugin, so
the <enable/> IQ is built by hand) and loses her connection; bob writes.
The app server must hear of the messages, without their bodies; once the
session has expired, alice logs in again and gets every message exactly
once from offline storage, and her archive holds each exactly once."""

import asyncio
import xml.etree.ElementTree as ET

from slixmpp.componentxmpp import ComponentXMPP
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import xmpp_common as xc

NS_PUSH = "urn:xmpp:push:0"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_DATA = "jabber:x:data"
NS_CLIENT = "jabber:client"
NS_COMPONENT = "jabber:component:accept"
NS_MAM = "urn:xmpp:mam:2"
NS_FWD = "urn:xmpp:forward:0"
NODE = "alice-phone-node"


def start_app_server(args, loop):
    comp = ComponentXMPP(args.app_domain, args.app_secret, args.host, args.component_port)
    ready = loop.create_future()
    notes = asyncio.Queue()

    def on_publish(iq):
        x = iq.xml
        pub = x.find("{%s}pubsub/{%s}publish" % (NS_PUBSUB, NS_PUBSUB))
        fields = {}
        for f in x.iter("{%s}field" % NS_DATA):
            v = f.find("{%s}value" % NS_DATA)
            fields[f.get("var")] = v.text if v is not None else None
        raw = ET.tostring(x, encoding="unicode")
        notes.put_nowait((iq["from"].full, pub.get("node") if pub is not None else None, fields, raw))
        iq.reply().send()

    comp.register_handler(Callback("push publish", MatchXPath("{%s}iq/{%s}pubsub" % (NS_COMPONENT, NS_PUBSUB)), on_publish))
    comp.add_event_handler("session_start", lambda _: ready.done() or ready.set_result(True))
    comp.connect()
    return comp, ready, notes


async def expect_note(notes, sender, what):
    frm, node, fields, raw = await asyncio.wait_for(notes.get(), 10)
    xc.check(frm == "alice@localhost", "%s: notification from %s" % (what, frm))
    xc.check(node == NODE, "%s: node %r" % (what, node))
    xc.check(fields.get("FORM_TYPE") == "urn:xmpp:push:summary", "%s: no summary form: %s" % (what, raw))
    xc.check(fields.get("last-message-sender") == sender, "%s: sender %r" % (what, fields.get("last-message-sender")))
    xc.check("secret body" not in raw, "%s: the body leaked to the push service: %s" % (what, raw))


async def main(args):
    loop = asyncio.get_running_loop()
    app, ready, notes = start_app_server(args, loop)
    await asyncio.wait_for(ready, 10)
    bob = await xc.Client(args, args.to, args.to_password).start()

    a = xc.Client(args, args.jid, args.password)
    x = a.xmpp
    x.register_plugin("xep_0198")
    x.end_session_on_disconnect = False
    enabled = loop.create_future()
    lost = loop.create_future()
    got = []
    x.add_event_handler("message", lambda m: got.append(m["body"]) if m["body"] else None)
    x.add_event_handler("sm_enabled", lambda _: enabled.done() or enabled.set_result(True))
    x.add_event_handler("disconnected", lambda _: lost.done() or lost.set_result(True))
    await a.start()
    await asyncio.wait_for(enabled, 10)
    iq = x.make_iq_set()
    en = ET.Element("{%s}enable" % NS_PUSH, jid=args.app_domain, node=NODE)
    iq.append(en)
    await iq.send(timeout=10)
    full = x.boundjid.full

    bob.xmpp.send_message(mto=full, mbody="secret body 0", mtype="chat")
    while not got:
        await asyncio.sleep(0.01)
    xc.check(notes.empty(), "notified while alice was connected")
    x.transport.abort()  # the phone loses its network
    await asyncio.wait_for(lost, 10)
    # Give the server time to see the connection go, then write.
    await asyncio.sleep(0.5)
    bob_full = bob.xmpp.boundjid.full
    for i in range(1, 4):
        bob.xmpp.send_message(mto=full, mbody="secret body %d" % i, mtype="chat")
    # One notification per message given to the detached session.
    for i in range(1, 4):
        await expect_note(notes, bob_full, "detached session, message %d" % i)
    print("app server notified of 3 messages while the session was detached", flush=True)

    # The session expires (2 s): its unacknowledged messages go to offline
    # storage, which notifies again.
    await expect_note(notes, bob_full, "offline storage")
    print("app server notified when the messages went to offline storage", flush=True)
    await asyncio.sleep(0.5)
    while not notes.empty():
        notes.get_nowait()

    a2 = xc.Client(args, args.jid, args.password)
    got2 = []
    a2.xmpp.add_event_handler("message", lambda m: got2.append(m["body"]) if m["body"] else None)
    await a2.start()
    await a2.xmpp["xep_0199"].send_ping(a2.xmpp.boundjid.domain, timeout=10)
    want = ["secret body %d" % i for i in range(1, 4)]
    for w in want:
        xc.check(got2.count(w) == 1, "offline: %r delivered %d times (got %r)" % (w, got2.count(w), got2))
    print("offline delivery after expiry: %r" % got2, flush=True)

    counts = {}

    def on_result(msg):
        b = msg.xml.find("{%s}result/{%s}forwarded/{%s}message/{%s}body" % (NS_MAM, NS_FWD, NS_CLIENT, NS_CLIENT))
        if b is not None:
            counts[b.text] = counts.get(b.text, 0) + 1

    a2.xmpp.register_handler(Callback("mam", MatchXPath("{%s}message/{%s}result" % (NS_CLIENT, NS_MAM)), on_result))
    q = a2.xmpp.make_iq_set()
    q.append(ET.Element("{%s}query" % NS_MAM, queryid="all"))
    await q.send(timeout=10)
    for w in ["secret body 0"] + want:
        xc.check(counts.get(w) == 1, "archive: %r stored %s times (%r)" % (w, counts.get(w), counts))
    print("archive holds each message once: %r" % counts, flush=True)

    await a2.close()
    await bob.close()
    app.disconnect()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--to-password", required=True)
    p.add_argument("--component-port", type=int, required=True)
    p.add_argument("--app-domain", required=True)
    p.add_argument("--app-secret", required=True)
    args = p.parse_args()
    xc.run(main, args)
