"""Fills a real Prosody or ejabberd with what a migration must bring: alice
and bob in each other's roster (subscription both, a name and a group),
alice's pending request to carol, alice's vCard, bookmarks (private XML)
and PEP nickname, a message from alice to bob (for the archives), a
message to carol while she is offline, and a
persistent room owned by alice with bob as a member."""

import asyncio

from slixmpp.xmlstream import ET

import xmpp_common as xc


async def iq_set(c, payload):
    iq = c.xmpp.make_iq_set()
    iq.append(ET.fromstring(payload))
    return await iq.send(timeout=15)


async def roster_subscription(c, contact):
    """The subscription of contact on c's roster, as the server has it."""
    iq = c.xmpp.make_iq_get(queryxmlns="jabber:iq:roster")
    res = await iq.send(timeout=15)
    for item in res.xml.iter("{jabber:iq:roster}item"):
        if item.get("jid") == contact:
            return item.get("subscription", "none")
    return None


async def join(c, room, nick):
    x = c.xmpp
    seated = asyncio.get_running_loop().create_future()

    def on_presence(p):
        if p["from"].bare == room and p["from"].resource == nick and not seated.done():
            seated.set_result(True)

    x.add_event_handler("presence", on_presence)
    p = x.make_presence(pto="%s/%s" % (room, nick))
    p.enable("muc_join")
    p.send()
    await asyncio.wait_for(seated, 15)
    x.del_event_handler("presence", on_presence)


async def main(args):
    d = args.domain
    alice_jid, bob_jid, carol_jid = "alice@" + d, "bob@" + d, "carol@" + d
    alice = await xc.Client(args, alice_jid, "alice-pw").start()
    bob = await xc.Client(args, bob_jid, "bob-pw").start()
    for c in (alice, bob):
        c.xmpp.auto_authorize = True
        c.xmpp.auto_subscribe = True
        c.xmpp.register_plugin("xep_0045")
        c.xmpp.register_plugin("xep_0004")

    await alice.xmpp.update_roster(bob_jid, name="Bob", groups=["Friends"])
    alice.xmpp.send_presence_subscription(pto=bob_jid)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while True:
        sub = await roster_subscription(alice, bob_jid)
        if sub == "both":
            break
        xc.check(loop.time() < deadline, "alice's subscription with bob: %s" % sub)
        await asyncio.sleep(0.2)
    print("alice and bob: subscription both", flush=True)
    # carol is offline: the request stays pending.
    alice.xmpp.send_presence_subscription(pto=carol_jid)

    await iq_set(alice, "<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN><NICKNAME>alice</NICKNAME></vCard>")
    await iq_set(alice, "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>"
                 "<conference jid='lounge@%s' autojoin='true' name='The Lounge'><nick>alice</nick></conference>"
                 "</storage></query>" % args.service)
    await iq_set(alice, "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='http://jabber.org/protocol/nick'>"
                 "<item id='current'><nick xmlns='http://jabber.org/protocol/nick'>Alice L.</nick></item></publish></pubsub>")
    print("vCard, bookmarks and nickname stored", flush=True)

    # While both are online: a message for the archives (where the
    # server keeps them).
    got = asyncio.get_running_loop().create_future()
    bob.xmpp.add_event_handler("message", lambda m: got.done() or m["body"] != "Archived hello" or got.set_result(m))
    alice.xmpp.send_message(mto=bob_jid, mbody="Archived hello", mtype="chat")
    await asyncio.wait_for(got, 15)
    alice.xmpp.send_message(mto=carol_jid, mbody="Hello from the old server", mtype="chat")

    room = "lounge@" + args.service
    await join(alice, room, "Alice")
    form = await alice.xmpp["xep_0045"].get_room_config(room)
    form.field["muc#roomconfig_persistentroom"].set_value(True)
    form.field["muc#roomconfig_roomname"].set_value("The Lounge")
    await alice.xmpp["xep_0045"].set_room_config(room, form)
    await alice.xmpp["xep_0045"].set_affiliation(room, "member", jid=bob_jid)
    print("room %s created" % room, flush=True)

    # A round trip after the message: the server has stored it.
    await alice.xmpp["xep_0199"].send_ping(d, timeout=10)
    await alice.close()
    await bob.close()
    print("POPULATED", flush=True)


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--domain", required=True)
    p.add_argument("--service", required=True, help="the conference service")
    xc.run(main, p.parse_args())
