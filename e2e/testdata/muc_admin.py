"""Roles and affiliations (XEP-0045 §8, §9, §10).

alice owns the room; bob, carol and dave are in it. She makes carol a
moderator, which everyone sees; carol, a moderator but no admin, may not
kick alice (not-allowed) nor ban anyone (forbidden). alice kicks bob with
a reason (307 to everyone, with 110 for bob) and bans dave (301), who then
cannot come back (forbidden) and is on the outcast list. The room becomes
moderated (104 to everyone): bob comes back a visitor whose messages are
refused (forbidden) and reach nobody, gets voice, speaks, loses it again.
alice edits the member, admin and owner lists, which read back as set;
bob may not read the admin list, and the last owner cannot be removed
(conflict), neither through muc#admin nor through the form."""

import muc_common as mc
import xmpp_common as xc

check = xc.check


def role_of(rx):
    return mc.item(rx).get("role")


async def main(args):
    alice = await mc.connect(args, "alice")
    bob = await mc.connect(args, "bob")
    carol = await mc.connect(args, "carol")
    dave = await mc.connect(args, "dave")
    room = "roles@" + args.service
    occupant = lambda n: room + "/" + n  # noqa: E731

    await alice.create(room, "alice", [("muc#roomconfig_roomname", "Roles")])
    for s in (bob, carol, dave):
        await s.join(room, s.label)
    everyone = [alice, bob, carol, dave]

    async def seen_by_all(sessions, marks, pred, what):
        out = {}
        for s in sessions:
            out[s.label] = await s.wait(pred, what, since=marks[s.label])
        return out

    def marks_of(sessions):
        return {s.label: s.mark() for s in sessions}

    # carol becomes a moderator.
    m = marks_of(everyone)
    await alice.admin_set(room, [{"nick": "carol", "role": "moderator"}])
    got = await seen_by_all(everyone, m, lambda r: r.kind == "presence" and r.frm == occupant("carol") and role_of(r) == "moderator",
                            "carol's presence as moderator")
    check(("110" in mc.codes(got["carol"])) and not any("110" in mc.codes(got[n]) for n in ("alice", "bob", "dave")),
          "status 110 in the wrong copies: %s" % got)
    print("carol is a moderator, as all four occupants saw", flush=True)

    await carol.iq_error(room, "set", mc.admin_query([{"nick": "alice", "role": "none", "reason": "coup"}]), "not-allowed",
                         "a moderator kicking the owner")
    await carol.iq_error(room, "set", mc.admin_query([{"jid": dave.bare, "affiliation": "outcast"}]), "forbidden",
                         "a moderator banning")
    await bob.iq_error(room, "set", mc.admin_query([{"nick": "dave", "role": "none"}]), "forbidden",
                       "a participant kicking")

    # Kick (§8.2).
    m = marks_of(everyone)
    await alice.admin_set(room, [{"nick": "bob", "role": "none", "reason": "Too loud"}])
    for s in everyone:
        r = await s.wait(mc.presence_from(occupant("bob"), "unavailable"), "bob's removal", since=m[s.label])
        want = {"307", "110"} if s is bob else {"307"}
        check(mc.codes(r) == want, "%s: kick status %s, want %s: %s" % (s.label, mc.codes(r), want, r))
        check(role_of(r) == "none" and mc.item_child_text(r, "reason") == "Too loud" and mc.actor(r) == "alice",
              "%s: kick presence %s" % (s.label, r))
    await bob.iq_error(room, "get", "<query xmlns='%s'><item role='participant'/></query>" % mc.NS_ADMIN, "forbidden",
                       "the kicked bob listing participants")
    print("bob was kicked: 307 with the reason and actor to all, 110 to him", flush=True)

    # Ban (§9.1).
    inroom = [alice, carol, dave]
    m = marks_of(inroom)
    await alice.admin_set(room, [{"jid": dave.bare, "affiliation": "outcast", "reason": "Banned for the test"}])
    for s in inroom:
        r = await s.wait(mc.presence_from(occupant("dave"), "unavailable"), "dave's removal", since=m[s.label])
        want = {"301", "110"} if s is dave else {"301"}
        check(mc.codes(r) == want and mc.item(r).get("affiliation") == "outcast"
              and mc.item_child_text(r, "reason") == "Banned for the test",
              "%s: ban presence %s" % (s.label, r))
    await dave.join_refused(room, "dave", "forbidden", what="the banned dave rejoining")
    await dave.join_refused(room, "someone-else", "forbidden", what="the banned dave rejoining under another nick")
    outcasts = await alice.admin_list(room, affiliation="outcast")
    check([(o.get("jid"), o.get("reason")) for o in outcasts] == [(dave.bare, "Banned for the test")], "outcast list %s" % outcasts)
    print("dave was banned (301), cannot rejoin, and is on the outcast list", flush=True)

    # Moderated room, voice (§8.3, §8.4).
    inroom = [alice, carol]
    m = marks_of(inroom)
    await alice.configure(room, [("muc#roomconfig_moderatedroom", "1")])
    for s in inroom:
        r = await s.wait(lambda r: r.kind == "message" and r.frm == room and "104" in mc.codes(r),
                         "the configuration change notice", since=m[s.label])
    got = await bob.join(room, "bob")
    sp = [r for r in got if mc.self_presence(room)(r)][0]
    check(role_of(sp) == "visitor", "bob entered the moderated room as %s" % role_of(sp))
    m = marks_of(everyone[:3])
    mb = bob.mark()
    bob.say(room, "may I speak?", mid="visitor-1")
    r = await bob.wait(mc.error_from(room, "message"), "the refusal of a visitor's message", since=mb)
    check(mc.error_condition(r.xml) == "forbidden" and r.id == "visitor-1", "visitor's message answered %s" % r)
    for s in (alice, carol):
        await s.barrier(room)
        s.none(mc.with_body("may I speak?"), "the visitor's message", since=m[s.label])
    print("bob is a visitor: his message was refused (forbidden) and reached nobody", flush=True)

    m = marks_of([alice, bob, carol])
    await alice.admin_set(room, [{"nick": "bob", "role": "participant", "reason": "Speak up"}])
    for s in (alice, bob, carol):
        r = await s.wait(lambda r: r.kind == "presence" and r.frm == occupant("bob") and role_of(r) == "participant",
                         "bob's voice", since=m[s.label])
    bob.say(room, "thank you")
    for s in (alice, bob, carol):
        await s.wait(mc.groupchat_body("thank you"), "bob's message with voice", since=m[s.label])
    m = marks_of([alice, bob, carol])
    await alice.admin_set(room, [{"nick": "bob", "role": "visitor"}])
    for s in (alice, bob, carol):
        await s.wait(lambda r: r.kind == "presence" and r.frm == occupant("bob") and role_of(r) == "visitor",
                     "bob's voice revoked", since=m[s.label])
    mb = bob.mark()
    bob.say(room, "once more", mid="visitor-2")
    r = await bob.wait(mc.error_from(room, "message"), "the refusal after the revocation", since=mb)
    check(mc.error_condition(r.xml) == "forbidden", "message after the revocation answered %s" % r)
    visitors = await alice.admin_list(room, role="visitor")
    check([(v.get("nick"), v.get("jid")) for v in visitors] == [("bob", bob.jid)], "visitor list %s" % visitors)
    print("voice granted (bob spoke) and revoked (refused again), seen by all", flush=True)

    # Affiliation lists (§9.5, §9.8, §10.5, §10.8).
    eve = accounts_bare(args, "eve")
    frank = accounts_bare(args, "frank")
    m = marks_of([alice, bob, carol])
    await alice.admin_set(room, [{"jid": bob.bare, "affiliation": "member"}, {"jid": eve, "affiliation": "admin"}])
    for s in (alice, bob, carol):
        r = await s.wait(lambda r: r.kind == "presence" and r.frm == occupant("bob") and mc.item(r).get("affiliation") == "member",
                         "bob's membership", since=m[s.label])
        check(role_of(r) == "participant", "%s: a member visitor of a moderated room becomes %s" % (s.label, role_of(r)))
    await alice.admin_set(room, [{"jid": frank, "affiliation": "owner"}])

    async def lists():
        out = {}
        for a in ("member", "admin", "owner"):
            out[a] = sorted(i.get("jid") for i in await alice.admin_list(room, affiliation=a))
        return out

    got = await lists()
    want = {"member": [bob.bare], "admin": [eve], "owner": sorted([alice.bare, frank])}
    check(got == want, "affiliation lists %s, want %s" % (got, want))
    print("member, admin and owner lists read back: %s" % got, flush=True)
    await bob.iq_error(room, "get", mc.admin_query([{"affiliation": "admin"}]), "forbidden", "a member reading the admin list")

    await alice.admin_set(room, [{"jid": eve, "affiliation": "none"}, {"jid": frank, "affiliation": "none"}])
    got = await lists()
    want = {"member": [bob.bare], "admin": [], "owner": [alice.bare]}
    check(got == want, "affiliation lists after the removals %s, want %s" % (got, want))

    await alice.iq_error(room, "set", mc.admin_query([{"jid": alice.bare, "affiliation": "admin"}]), "conflict",
                         "the last owner stepping down")
    q = mc.owner_query([("muc#roomconfig_roomowners", [])])
    await alice.iq_error(room, "set", q, "conflict", "a configuration form with no owner")
    got = await lists()
    check(got["owner"] == [alice.bare], "owners after the refusals: %s" % got["owner"])
    print("the last owner stays: conflict both ways", flush=True)

    await mc.close_all(alice, bob, carol, dave)


def accounts_bare(args, who):
    return mc.accounts(args)[who][0]


if __name__ == "__main__":
    mc.run(main, mc.base_parser(__doc__).parse_args())
