"""Logs in to the server a migration brought the users of
migrate_populate.py to, with their old passwords, and checks what they
find: rosters (subscriptions, names, groups, the pending request), alice's
vCard, bookmarks, PEP nickname and archive, carol's offline message and, unless
--no-room, the room with its name and bob's membership."""

import asyncio

from slixmpp.xmlstream import ET
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import xmpp_common as xc


class Client(xc.Client):
    """A client that lets slixmpp move on to the next mechanism after a
    failure, as any slixmpp user sees it: accounts imported with another
    server's SCRAM-SHA-1 keys refuse the stronger mechanisms first."""

    def _on_failed_auth(self, stanza):
        mech = self.xmpp["feature_mechanisms"].mech
        print("%s refused (%s), trying the next mechanism" % (mech.name if mech else "?", stanza["condition"]), flush=True)


async def iq_get(c, payload, to=None):
    iq = c.xmpp.make_iq_get(ito=to)
    iq.append(ET.fromstring(payload))
    return (await iq.send(timeout=15)).xml


async def roster(c):
    res = await iq_get(c, "<query xmlns='jabber:iq:roster'/>")
    out = {}
    for item in res.iter("{jabber:iq:roster}item"):
        out[item.get("jid")] = (item.get("subscription", "none"), item.get("ask"), item.get("name"),
                                sorted(g.text for g in item.iter("{jabber:iq:roster}group")))
    return out


async def main(args):
    d = args.domain
    alice_jid, bob_jid, carol_jid = "alice@" + d, "bob@" + d, "carol@" + d

    alice = await Client(args, alice_jid, "alice-pw").start()
    r = await roster(alice)
    xc.check(r.get(bob_jid) == ("both", None, "Bob", ["Friends"]), "alice's roster item for bob: %r" % (r.get(bob_jid),))
    want_carol = ("none", None if args.no_pending_out else "subscribe", None, [])
    xc.check(r.get(carol_jid) == want_carol, "alice's roster item for carol: %r" % (r.get(carol_jid),))
    print("alice's roster: %r" % r, flush=True)
    vc = await iq_get(alice, "<vCard xmlns='vcard-temp'/>")
    fn = vc.find("{vcard-temp}vCard/{vcard-temp}FN")
    xc.check(fn is not None and fn.text == "Alice Liddell", "alice's vCard: %s" % ET.tostring(vc))
    pv = await iq_get(alice, "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>")
    conf = pv.find("{jabber:iq:private}query/{storage:bookmarks}storage/{storage:bookmarks}conference")
    xc.check(conf is not None and conf.get("jid") == "lounge@" + args.service, "alice's bookmarks: %s" % ET.tostring(pv))
    print("alice's vCard and bookmarks are there", flush=True)
    if not args.no_pep:
        ps = await iq_get(alice, "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='http://jabber.org/protocol/nick'/></pubsub>", to=alice_jid)
        nick = ps.find(".//{http://jabber.org/protocol/nick}nick")
        xc.check(nick is not None and nick.text == "Alice L.", "alice's PEP nickname: %s" % ET.tostring(ps))
        print("alice's PEP nickname is there", flush=True)

    if not args.no_archive:
        iq = alice.xmpp.make_iq_set()
        iq.append(ET.fromstring("<query xmlns='urn:xmpp:mam:2'/>"))
        got = []
        alice.xmpp.register_handler(Callback("mam results", MatchXPath("{jabber:client}message/{urn:xmpp:mam:2}result"),
                                             lambda m: got.append(m.xml)))
        await iq.send(timeout=15)
        bodies = [b.text for m in got for b in m.iter("{jabber:client}body")]
        xc.check("Archived hello" in bodies, "alice's archive: %r" % bodies)
        print("alice's archive has %r" % bodies, flush=True)

    bob = await Client(args, bob_jid, "bob-pw").start()
    r = await roster(bob)
    xc.check(r.get(alice_jid, ("",))[0] == "both", "bob's roster: %r" % r)
    print("bob's roster: %r" % r, flush=True)

    # carol: the message sent while she was offline, and alice's request.
    loop = asyncio.get_running_loop()
    got_msg, got_sub = loop.create_future(), loop.create_future()
    carol = Client(args, carol_jid, "carol-pw")
    carol.xmpp.auto_authorize = None  # leave the request pending
    carol.xmpp.add_event_handler("message", lambda m: got_msg.done() or got_msg.set_result(m))
    carol.xmpp.add_event_handler("presence_subscribe", lambda p: got_sub.done() or got_sub.set_result(p))
    await carol.start()
    if not args.no_offline:
        m = await asyncio.wait_for(got_msg, 15)
        xc.check(m["body"] == "Hello from the old server" and m["from"].bare == alice_jid, "carol's offline message: %s" % m)
        xc.check(m.xml.find("{urn:xmpp:delay}delay") is not None, "the offline message has no delay: %s" % m)
        print("carol got the offline message %r" % m["body"], flush=True)
    p = await asyncio.wait_for(got_sub, 15)
    xc.check(p["from"].bare == alice_jid, "carol's subscription request from %s" % p["from"])
    print("carol got alice's pending subscription request", flush=True)

    if not args.no_room:
        room = "lounge@" + args.service
        alice.xmpp.register_plugin("xep_0045")
        info = await alice.xmpp["xep_0030"].get_info(jid=room)
        feats = info["disco_info"]["features"]
        xc.check("muc_persistent" in feats, "the room is not persistent: %r" % feats)
        name = list(info["disco_info"]["identities"])[0][3]
        xc.check(name == "The Lounge", "room name %r" % name)
        members = await alice.xmpp["xep_0045"].get_affiliation_list(room, "member")
        xc.check(bob_jid in [str(j) for j in members], "bob is not a member: %r" % members)
        owners = await alice.xmpp["xep_0045"].get_affiliation_list(room, "owner")
        xc.check(alice_jid in [str(j) for j in owners], "alice is not an owner: %r" % owners)
        print("room %s: %r, bob a member, alice an owner" % (room, name), flush=True)

    for c in (alice, bob, carol):
        await c.close()
    print("MIGRATED", flush=True)


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--domain", required=True)
    p.add_argument("--service", required=True, help="the conference service")
    p.add_argument("--no-room", action="store_true", help="the export held no rooms")
    p.add_argument("--no-offline", action="store_true", help="the export held no offline messages")
    p.add_argument("--no-pep", action="store_true", help="the export held no PEP items")
    p.add_argument("--no-archive", action="store_true", help="the export held no message archives")
    p.add_argument("--no-pending-out", action="store_true",
                   help="the importing server drops alice's pending request to carol from her roster (ejabberd does)")
    xc.run(main, p.parse_args())
