"""The other occupant of a room a terminal client creates: logs in, enters
the room as soon as its creator has unlocked it (until then the room
answers item-not-found), checks that the creator is there as its owner, prints
JOINED, waits for the creator's message with the given body, answers in
the room and prints REPLIED once its answer is reflected."""

import asyncio

import muc_common as mc
import xmpp_common as xc

check = xc.check


async def main(args):
    s = await mc.Session(args, args.jid, args.password, "peer").start()
    room = args.room
    loop = asyncio.get_running_loop()
    # Until its creator has configured it, the room answers item-not-found
    # to everyone else; a join would create it.
    deadline = loop.time() + 30
    while True:
        iq = s.xmpp.Iq()
        iq["type"], iq["to"] = "get", room
        iq.xml.append(mc.xml("<query xmlns='%s'/>" % mc.NS_DISCO_INFO))
        try:
            await iq.send(timeout=10)
            break
        except mc.IqError as e:
            check(e.iq["error"]["condition"] == "item-not-found", "disco#info of %s: %s" % (room, e.iq))
        check(loop.time() < deadline, "%s not open after 30 s" % room)
        await asyncio.sleep(0.2)
    m = s.mark()
    got = await s.join(room, args.nick, subject=False)
    r = [x for x in got if mc.self_presence(room)(x)][0]
    check("201" not in mc.codes(r), "the peer created %s instead of entering it: %s" % (room, r))
    creator = [x for x in s.since(m, mc.presence_from(room + "/" + args.expect_nick))]
    check(creator and mc.item(creator[0]).get("affiliation") == "owner" and mc.item(creator[0]).get("role") == "moderator",
          "%s is not in the room as its owner: %s" % (args.expect_nick, creator))
    await s.wait(lambda r: mc.is_subject(r) and r.bare_from == room, "the subject", since=m)
    print("JOINED", flush=True)

    got = await s.wait(mc.groupchat_body(args.body), "the creator's message", since=m, timeout=40)
    print("received: %s" % got, flush=True)
    check(got.frm == room + "/" + args.expect_nick, "message from %s, want %s/%s" % (got.frm, room, args.expect_nick))
    check(mc.stanza_id(got)[1] == room, "message without the room's stanza-id: %s" % got)
    m = s.mark()
    s.say(room, args.reply)
    await s.wait(mc.groupchat_body(args.reply), "the reflection of the answer", since=m)
    print("REPLIED", flush=True)
    await s.leave(room, args.nick)
    await s.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--room", required=True)
    p.add_argument("--nick", required=True)
    p.add_argument("--expect-nick", required=True, help="the creator's nickname")
    p.add_argument("--body", required=True, help="the creator's message to wait for")
    p.add_argument("--reply", required=True, help="the answer sent to the room")
    xc.run(main, p.parse_args())
