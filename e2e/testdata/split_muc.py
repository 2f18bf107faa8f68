"""A room on a split server whose conference service runs as two
instances. alice (on one gateway) creates a persistent room and makes bob
a member; bob (on the other gateway) joins; they talk. The script prints
READY and waits for the file --go-file: meanwhile the test kills, with
SIGKILL, the instance that owns the room. Then alice's self-ping
(XEP-0410) tells her she is no longer in the room; both rejoin, the
configuration, the membership and the archived history are there, and
they talk again."""

import asyncio
import copy
import os
import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError, IqTimeout

import xmpp_common as xc

NS_MUC = "http://jabber.org/protocol/muc"


async def join(c, room, nick):
    """Joins and returns the bodies of the history received."""
    x = c.xmpp
    loop = asyncio.get_running_loop()
    seated = loop.create_future()
    history = []

    def on_presence(p):
        if p["from"].bare == room and p["from"].resource == nick and "110" in [str(s) for s in p["muc"]["status_codes"]] and not seated.done():
            seated.set_result(True)

    def on_message(m):
        if m["from"].bare == room and m["delay"]["stamp"] and m["body"]:
            history.append(m["body"])

    x.add_event_handler("presence", on_presence)
    x.add_event_handler("groupchat_message", on_message)
    p = x.make_presence(pto="%s/%s" % (room, nick))
    p.enable("muc_join")
    p["muc_join"]["history"]["maxstanzas"] = "20"
    p.send()
    await asyncio.wait_for(seated, 15)
    await asyncio.sleep(0.5)
    x.del_event_handler("presence", on_presence)
    x.del_event_handler("groupchat_message", on_message)
    return history


async def said(c, room, body):
    fut = asyncio.get_running_loop().create_future()

    def on_message(m):
        if m["from"].bare == room and m["body"] == body and not fut.done():
            fut.set_result(m)

    c.xmpp.add_event_handler("groupchat_message", on_message)
    return fut, lambda: c.xmpp.del_event_handler("groupchat_message", on_message)


async def talk(alice, bob, room, body):
    fut, done = await said(bob, room, body)
    alice.xmpp.send_message(mto=room, mbody=body, mtype="groupchat")
    await asyncio.wait_for(fut, 15)
    done()
    print("bob got %r" % body, flush=True)


async def main(args):
    room = args.room
    aargs = copy.copy(args)
    alice = await xc.Client(aargs, args.alice, args.password).start()
    bargs = copy.copy(args)
    bargs.port = args.bob_port
    bob = await xc.Client(bargs, args.bob, args.password).start()
    for c in (alice, bob):
        c.xmpp.register_plugin("xep_0045")
        c.xmpp.register_plugin("xep_0004")
        c.xmpp.register_plugin("xep_0203")

    await join(alice, room, "Alice")
    form = await alice.xmpp["xep_0045"].get_room_config(room)
    form.field["muc#roomconfig_persistentroom"].set_value(True)
    form.field["muc#roomconfig_roomname"].set_value("Split room")
    await alice.xmpp["xep_0045"].set_room_config(room, form)
    await alice.xmpp["xep_0045"].set_affiliation(room, "member", jid=args.bob.split("/")[0])
    await join(bob, room, "Bob")
    for i in range(3):
        await talk(alice, bob, room, "before %d" % i)

    # The room's archive is written in batches, a few milliseconds after
    # the messages are reflected; a query flushes it, so that what the
    # crash is to keep is known to be stored.
    iq = alice.xmpp.make_iq_set(ito=room)
    iq.append(ET.fromstring("<query xmlns='urn:xmpp:mam:2'/>"))
    fin = await iq.send(timeout=15)
    count = fin.xml.find("{urn:xmpp:mam:2}fin/{http://jabber.org/protocol/rsm}set/{http://jabber.org/protocol/rsm}count")
    xc.check(count is not None and count.text == "3", "archive before the crash: %s" % fin)
    print("READY", flush=True)
    while not os.path.exists(args.go_file):
        await asyncio.sleep(0.1)

    # XEP-0410: the self-ping answers not-acceptable once the room has
    # forgotten its occupant.
    iq = alice.xmpp.make_iq_get(ito="%s/Alice" % room)
    iq.enable("ping")
    try:
        await iq.send(timeout=15)
        xc.check(False, "the self-ping succeeded after the room's instance died")
    except IqError as e:
        cond = e.iq["error"]["condition"]
        xc.check(cond == "not-acceptable", "self-ping error %r, want not-acceptable" % cond)
        print("self-ping: not-acceptable, rejoining", flush=True)
    except IqTimeout:
        xc.check(False, "no answer to the self-ping")

    history = await join(alice, room, "Alice")
    xc.check(history[-3:] == ["before 0", "before 1", "before 2"], "history after failover: %r" % history)
    print("history after failover: %r" % history, flush=True)
    await join(bob, room, "Bob")
    info = await alice.xmpp["xep_0030"].get_info(jid=room)
    feats = info["disco_info"]["features"]
    xc.check("muc_persistent" in feats, "room no longer persistent: %r" % feats)
    xc.check(list(info["disco_info"]["identities"])[0][3] == "Split room", "room name lost: %r" % (info["disco_info"]["identities"],))
    members = await alice.xmpp["xep_0045"].get_affiliation_list(room, "member")
    xc.check(args.bob.split("/")[0] in [str(j) for j in members], "bob's membership lost: %r" % members)
    print("configuration and membership intact", flush=True)
    await talk(alice, bob, room, "after")
    await alice.close()
    await bob.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--bob-port", type=int, required=True)
    p.add_argument("--alice", required=True)
    p.add_argument("--bob", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--room", required=True)
    p.add_argument("--go-file", required=True)
    a = p.parse_args()
    xc.run(main, a)
