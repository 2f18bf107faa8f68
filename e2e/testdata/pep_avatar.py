"""Personal eventing (XEP-0163): alice and bob subscribe to each other; bob's
client announces through its entity capabilities (XEP-0115) that it wants
avatar metadata (+notify); alice publishes an avatar (XEP-0084) and bob
receives the metadata event. carol, no contact of alice's, may not read it."""

import asyncio
import hashlib

from slixmpp.exceptions import IqError

import im_common as im
import xmpp_common as xc

PLUGINS = ["xep_0060", "xep_0115", "xep_0163", "xep_0084"]
PNG = b"\x89PNG\r\n\x1a\n not really an image"


async def main(args):
    pw = im.passwords(args)
    alice_jid, bob_jid, carol_jid = args.user[0][0], args.user[1][0], args.user[2][0]
    alice = await im.Session(args, alice_jid, pw[alice_jid], plugins=PLUGINS).start()
    bob = await im.Session(args, bob_jid, pw[bob_jid], plugins=PLUGINS).start()

    # Mutual subscription.
    for a, b in ((alice, bob), (bob, alice)):
        a.presence_to(b.name, "subscribe")
        await b.presences.wait_for(im.from_bare(a.name, "subscribe"), "subscribe from %s" % a.name)
        b.presence_to(a.name, "subscribed")
        await a.presences.wait_for(im.from_bare(b.name, "subscribed"), "subscribed from %s" % b.name)
    print("alice and bob are subscribed to each other", flush=True)

    events = asyncio.get_running_loop().create_future()

    def on_meta(msg):
        if msg["from"].bare == alice_jid and not events.done():
            events.set_result(msg)

    bob.xmpp.add_event_handler("avatar_metadata_publish", on_meta)
    # Caps with the +notify features go out with bob's next presence.
    await bob.xmpp["xep_0115"].update_caps(preserve=True)
    bob.xmpp.send_presence()
    await bob.xmpp["xep_0199"].send_ping(bob.xmpp.boundjid.domain, timeout=10)
    # Whether the server has learnt bob's features before alice publishes
    # or after, bob gets the metadata: as a notification, or as the last
    # item once his capabilities are verified.

    digest = hashlib.sha1(PNG).hexdigest()
    await alice.xmpp["xep_0084"].publish_avatar(PNG, timeout=10)
    await alice.xmpp["xep_0084"].publish_avatar_metadata(
        items=[{"id": digest, "type": "image/png", "bytes": len(PNG)}], timeout=10)
    print("alice published her avatar %s" % digest, flush=True)
    msg = await asyncio.wait_for(events, 10)
    info = msg["pubsub_event"]["items"]["item"]["avatar_metadata"]["items"]
    ids = [i["id"] for i in info]
    xc.check(ids == [digest], "bob's metadata event has ids %s, want %s" % (ids, [digest]))
    print("bob received alice's avatar metadata event", flush=True)

    carol = await im.Session(args, carol_jid, pw[carol_jid], plugins=PLUGINS).start()
    try:
        await carol.xmpp["xep_0060"].get_items(alice_jid, "urn:xmpp:avatar:metadata", timeout=10)
        raise xc.CheckFailed("carol read alice's avatar metadata")
    except IqError as e:
        cond = e.iq["error"]["condition"]
        xc.check(cond == "not-authorized", "carol's error is %s, want not-authorized" % cond)
    print("carol may not read alice's avatar", flush=True)
    # bob may.
    res = await bob.xmpp["xep_0060"].get_items(alice_jid, "urn:xmpp:avatar:data", timeout=10)
    xc.check(len(res["pubsub"]["items"]) == 1, "bob reads alice's avatar data: %s" % res)
    for s in (alice, bob, carol):
        await s.close()


if __name__ == "__main__":
    im.run(main, im.base_parser(__doc__).parse_args())
