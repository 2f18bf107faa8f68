"""Limits and bad input, on a server whose [muc] lets an occupant send
--burst messages at once and then one every five seconds.

bob sends twice that many messages at once: exactly the first --burst
reach alice and him, each of the others is answered resource-constraint
and reaches nobody, and a private message then is refused the same way;
alice, whose allowance is her own, still speaks. A nickname made only of
spaces is refused (jid-malformed); so is bob's creating a room when
[muc] lets only admins create them (not-allowed). A configuration form with an unknown
field is refused (not-acceptable), one with an invalid value too
(bad-request), and neither changes anything."""

import muc_common as mc
import xmpp_common as xc

check = xc.check


async def main(args):
    alice = await mc.connect(args, "alice")
    bob = await mc.connect(args, "bob")
    carol = await mc.connect(args, "carol")
    room = "limits@" + args.service
    await alice.create(room, "alice", [("muc#roomconfig_roomname", "Limits")])
    await bob.join(room, "bob")

    n = 2 * args.burst
    am, bm = alice.mark(), bob.mark()
    for i in range(n):
        bob.say(room, "burst %d" % i, mid="burst-%d" % i)
    errors = await bob.wait_all(mc.error_from(room, "message"), n - args.burst, "refusals of the excess", since=bm)
    check([r.id for r in errors] == ["burst-%d" % i for i in range(args.burst, n)],
          "refused messages %s, want burst-%d..%d" % ([r.id for r in errors], args.burst, n - 1))
    for r in errors:
        check(mc.error_condition(r.xml) == "resource-constraint", "excess message answered %s" % r)
    bob.message(room + "/alice", "chat", "private burst", mid="burst-pm")
    r = await bob.wait(lambda r: r.type == "error" and r.id == "burst-pm", "the refusal of the private message", since=bm)
    check(mc.error_condition(r.xml) == "resource-constraint", "private message over the limit answered %s" % r)
    alice.say(room, "alice still speaks")
    want = ["burst %d" % i for i in range(args.burst)] + ["alice still speaks"]
    for s, m in ((alice, am), (bob, bm)):
        await s.wait(mc.groupchat_body("alice still speaks"), "alice's message", since=m)
        await s.barrier(room)
        got = [mc.body(r) for r in s.since(m, lambda r: r.kind == "message" and r.type != "error" and mc.body(r))]
        check(got == want, "%s received %s, want %s" % (s.label, got, want))
    print("burst of %d: %d reflected to both, %d refused with resource-constraint; a private message too" %
          (n, args.burst, n - args.burst), flush=True)

    await carol.join_refused(room, "   ", "jid-malformed", what="a nickname of spaces only")
    if args.creator_only:
        await bob.join_refused("bobs-own@" + args.service, "bob", "not-allowed", what="creating a room when only %s may" % args.creator_only)
        await bob.iq_error("bobs-own@" + args.service, "get", "<query xmlns='%s'/>" % mc.NS_DISCO_INFO, "item-not-found",
                           "disco#info of the room bob could not create")

    before, _ = await alice.config_form(room)
    await alice.iq_error(room, "set", mc.owner_query([("muc#roomconfig_roomname", "Changed"), ("muc#roomconfig_flying", "1")]),
                         "not-acceptable", "a configuration form with an unknown field")
    for var, bad in (("muc#roomconfig_maxusers", "lots"), ("muc#roomconfig_whois", "everyone"),
                     ("muc#roomconfig_persistentroom", "maybe"), ("muc#maxhistoryfetch", "-1")):
        await alice.iq_error(room, "set", mc.owner_query([("muc#roomconfig_roomname", "Changed"), (var, bad)]),
                             "bad-request", "%s=%r" % (var, bad))
    after, _ = await alice.config_form(room)
    check(after == before, "refused forms changed the configuration: %s -> %s" % (before, after))
    print("refused configuration forms left the configuration as it was", flush=True)
    await mc.close_all(alice, bob, carol)


if __name__ == "__main__":
    p = mc.base_parser(__doc__)
    p.add_argument("--burst", type=int, required=True, help="[muc] message_burst of the server")
    p.add_argument("--creator-only", default="", help="the one user [muc] lets create rooms, if any")
    mc.run(main, p.parse_args())
