"""Exactly once and in order across the death of one process of a split
server. alice (on --port) sends --count numbered chat messages, each with
an id and an XEP-0359 origin-id, to bob (on --to-port); both use Stream
Management (XEP-0198) with resumption. After --kill-after messages the
script prints KILL and the test kills one process. A client whose
connection drops reconnects to its --*-reconnect-port: it tries to resume
there and, when that fails, binds a new session, sends its presence (bob
then gets his offline messages) and, for alice, sends again what the
server had not acknowledged, with the same id and origin-id, as a careful
client does. Then bob pages through his archive of the conversation.

The last line before OK is
  RESULT received=N dup=[...] lost=[...] reordered=[...] archived=N archive_dup=[...] archive_lost=[...] archive_reordered=[...]
where reordered lists the numbers that arrived after a higher one."""

import asyncio
import copy
import re

from slixmpp.xmlstream import ET
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import xmpp_common as xc

NS_SID = "urn:xmpp:sid:0"
NS_MAM = "urn:xmpp:mam:2"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_FWD = "urn:xmpp:forward:0"
NS_CLIENT = "jabber:client"

# The id of a numbered message in serialized XML.
MESSAGE_ID = re.compile(r"<message\b[^>]*\bid=[\"'](m\d+)[\"']")


class SMClient:
    """A client with resumable Stream Management that reconnects by itself."""

    def __init__(self, args, jid, password, port, reconnect_port, name):
        a = copy.copy(args)
        a.port = port
        self.args = a
        self.name = name
        self.reconnect_port = reconnect_port
        self.c = xc.Client(a, jid, password)
        x = self.x = self.c.xmpp
        x.register_plugin("xep_0198")
        x.end_session_on_disconnect = False
        self.online = asyncio.Event()
        self.closing = False
        self.starts = 0
        self.resumes = 0
        self.on_new_session = None
        # The numbered messages as they went to the wire, per connection:
        # a failed run then shows whether the client itself sent them in
        # another order than it numbered them.
        self.connections = 0
        self.wire = []
        send_raw = x.send_raw

        def recording_send_raw(data):
            text = data if isinstance(data, str) else data.decode("utf-8", "replace")
            ids = MESSAGE_ID.findall(text)
            if ids:
                where = "c%d" % self.connections if x.transport else "c%d-unsent" % self.connections
                self.wire.extend("%s:%s" % (where, i) for i in ids)
            send_raw(data)

        x.send_raw = recording_send_raw
        x.add_event_handler("connected", self._on_connected)
        x.add_event_handler("session_start", self._on_session_start)
        x.add_event_handler("session_resumed", self._on_resumed)
        x.add_event_handler("disconnected", self._on_disconnected)
        x.add_event_handler("connection_failed", self._on_connection_failed)

    async def start(self):
        await self.c.start()
        self.online.set()
        return self

    def _on_connected(self, _):
        self.connections += 1

    def _on_session_start(self, _):
        self.starts += 1
        if self.starts == 1:
            return
        print("%s: new session %s after a failed resumption" % (self.name, self.x.boundjid.full), flush=True)
        self.x.send_presence()
        if self.on_new_session:
            self.on_new_session()
        self.online.set()

    def _on_resumed(self, _):
        self.resumes += 1
        print("%s: resumed" % self.name, flush=True)
        self.online.set()

    def _on_disconnected(self, _):
        self.online.clear()
        if self.closing or self.starts == 0:
            return
        print("%s: disconnected, reconnecting to port %d" % (self.name, self.reconnect_port), flush=True)
        asyncio.get_running_loop().call_later(0.3, self._reconnect)

    def _on_connection_failed(self, _):
        if self.closing or self.starts == 0:
            return
        asyncio.get_running_loop().call_later(1, self._reconnect)

    def _reconnect(self):
        if not self.closing:
            self.x.connect((self.args.host, self.reconnect_port), force_starttls=True)

    async def close(self):
        self.closing = True
        await self.c.close()


def message(x, to, n):
    m = x.make_message(mto=to, mbody="n=%d" % n, mtype="chat")
    m["id"] = "m%d" % n
    ET.SubElement(m.xml, "{%s}origin-id" % NS_SID, id="m%d" % n)
    return m


def faults(seq, count):
    """Returns (duplicates, lost, reordered) of a sequence of numbers."""
    seen, dup, reordered, top = set(), [], [], 0
    for n in seq:
        if n in seen:
            dup.append(n)
            continue
        seen.add(n)
        if n < top:
            reordered.append(n)
        top = max(top, n)
    lost = [n for n in range(1, count + 1) if n not in seen]
    return dup, lost, reordered


async def archive(bob, with_jid):
    """Pages forward through bob's archive with with_jid; returns the numbers."""
    x = bob.x
    results = {}

    def on_result(msg):
        r = msg.xml.find("{%s}result" % NS_MAM)
        if r is None or r.get("queryid") not in results:
            return
        body = r.find("{%s}forwarded/{%s}message/{%s}body" % (NS_FWD, NS_CLIENT, NS_CLIENT))
        if body is not None and body.text and body.text.startswith("n="):
            results[r.get("queryid")].append(int(body.text[2:]))

    x.register_handler(Callback("mam results", MatchXPath("{%s}message/{%s}result" % (NS_CLIENT, NS_MAM)), on_result))
    got, after, n = [], None, 0
    while True:
        qid = "q%d" % n
        n += 1
        results[qid] = []
        iq = x.make_iq_set()
        q = ET.SubElement(iq.xml, "{%s}query" % NS_MAM, queryid=qid)
        form = ET.SubElement(q, "{jabber:x:data}x", type="submit")
        f = ET.SubElement(form, "{jabber:x:data}field", var="FORM_TYPE", type="hidden")
        ET.SubElement(f, "{jabber:x:data}value").text = NS_MAM
        f = ET.SubElement(form, "{jabber:x:data}field", var="with")
        ET.SubElement(f, "{jabber:x:data}value").text = with_jid
        s = ET.SubElement(q, "{%s}set" % NS_RSM)
        ET.SubElement(s, "{%s}max" % NS_RSM).text = "100"
        if after is not None:
            ET.SubElement(s, "{%s}after" % NS_RSM).text = after
        resp = await iq.send(timeout=20)
        fin = resp.xml.find("{%s}fin" % NS_MAM)
        xc.check(fin is not None, "no <fin/> in %s" % resp)
        got += results.pop(qid)
        if fin.get("complete") == "true":
            return got
        last = fin.find("{%s}set/{%s}last" % (NS_RSM, NS_RSM))
        xc.check(last is not None and last.text, "incomplete page without <last/>")
        after = last.text


async def main(args):
    loop = asyncio.get_running_loop()
    bob = SMClient(args, args.to_jid, args.to_password, args.to_port, args.bob_reconnect_port or args.to_port, "bob")
    received = []
    all_in = loop.create_future()

    def on_message(msg):
        body = msg["body"]
        if not body.startswith("n="):
            return
        received.append(int(body[2:]))
        if len(set(received)) == args.count and not all_in.done():
            all_in.set_result(True)

    bob.x.add_event_handler("message", on_message)
    await bob.start()
    alice = SMClient(args, args.from_jid, args.from_password, args.port, args.alice_reconnect_port or args.port, "alice")
    await alice.start()
    await asyncio.wait_for(alice.online.wait(), 10)
    await asyncio.sleep(0.5)  # let both sessions enable Stream Management

    # What alice sent that the server has not acknowledged (XEP-0198).
    pending = {}

    def on_acked(st):
        sid = st["id"] if hasattr(st, "get") else None
        if sid and sid in pending:
            del pending[sid]

    def resend():
        for sid in sorted(pending, key=lambda s: int(s[1:])):
            print("alice: sending %s again" % sid, flush=True)
            message(alice.x, args.to_jid, int(sid[1:])).send()

    alice.x.add_event_handler("stanza_acked", on_acked)
    alice.on_new_session = resend

    for i in range(1, args.count + 1):
        # Sent only while the session is up, looked at with no await
        # before the send: wait_for may return after a disconnection it
        # did not see (its inner wait finished first), and slixmpp keeps a
        # stanza sent then for the next session, where it goes out before
        # the messages sent again: out of order by the client's doing.
        while not alice.online.is_set():
            await asyncio.wait_for(alice.online.wait(), 60)
        m = message(alice.x, args.to_jid, i)
        pending[m["id"]] = True
        m.send()
        if i == args.kill_after:
            print("KILL", flush=True)
        await asyncio.sleep(args.interval)
    print("alice: sent %d" % args.count, flush=True)
    try:
        await asyncio.wait_for(all_in, args.settle)
    except asyncio.TimeoutError:
        pass
    # Late duplicates and redeliveries would arrive now.
    await asyncio.sleep(args.linger)
    await asyncio.wait_for(bob.online.wait(), 30)
    archived = await archive(bob, args.from_jid)
    d, l, r = faults(received, args.count)
    ad, al, ar = faults(archived, args.count)
    print("bob received: %s" % received, flush=True)
    if r or ar or d or l:
        # Where it went wrong: the client's own order on the wire.
        print("alice wire: %s" % " ".join(alice.wire), flush=True)
    print("RESULT received=%d dup=%s lost=%s reordered=%s archived=%d archive_dup=%s archive_lost=%s archive_reordered=%s" % (
        len(set(received)), d, l, r, len(set(archived)), ad, al, ar), flush=True)
    await alice.close()
    await bob.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--to-port", type=int, required=True)
    p.add_argument("--alice-reconnect-port", type=int, default=0)
    p.add_argument("--bob-reconnect-port", type=int, default=0)
    p.add_argument("--from-jid", required=True)
    p.add_argument("--from-password", required=True)
    p.add_argument("--to-jid", required=True)
    p.add_argument("--to-password", required=True)
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--kill-after", type=int, default=100)
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--settle", type=float, default=60)
    p.add_argument("--linger", type=float, default=3)
    xc.run(main, p.parse_args())
