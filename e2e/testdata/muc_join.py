"""Creating and entering rooms (XEP-0045 §7.1-7.7, §10.1).

A reserved room: alice creates it (201), it stays locked to others until
she has fetched and submitted the configuration form (persistent, named,
non-anonymous), which then shows in the form and in disco#info. She sets a
subject and sends six messages, three of them more than a second before
the others. bob enters as "  Bob  ": alice's presence first, then his own
with 110, 100, 170 and 210 (the nickname prepared to "Bob"), the six
messages of history with delay stamps, and the subject last. carol enters
with maxstanzas, maxchars, seconds and since and gets exactly the history
each allows. bob changes his nickname (303 to everyone), a change to a
nickname in use and a join under one are refused with conflict. dave
enters under one nickname from two resources: both get the room's
messages and a private message, and one leaving does not make the
occupant leave; the other disconnecting does. A participant may not change
the subject.

An instant room: carol creates it and submits an empty form; a room made
by a join without <x/> (groupchat 1.0) is open at once; both are
temporary and disappear with their last occupant."""

import asyncio

import muc_common as mc
import xmpp_common as xc

check = xc.check


async def reserved_room(args, alice, bob, carol, dave1, dave2):
    room = "reserved@" + args.service
    lower = room.lower()

    got = await alice.join(room, "Alice")
    sp = [r for r in got if mc.self_presence(room)(r)]
    check(len(sp) == 1, "alice: %d self-presences on creation: %s" % (len(sp), got))
    want = {"110", "201", "170"}
    check(mc.codes(sp[0]) == want, "alice: creation status codes %s, want %s: %s" % (mc.codes(sp[0]), want, sp[0]))
    it = mc.item(sp[0])
    check(it.get("affiliation") == "owner" and it.get("role") == "moderator" and it.get("jid") == alice.jid,
          "alice: creator's item %s, want owner, moderator, %s" % (it, alice.jid))
    check(sp[0].frm == room + "/Alice", "alice: self-presence from %s" % sp[0].frm)
    print("alice created %s: status %s, owner and moderator" % (room, sorted(mc.codes(sp[0]))), flush=True)

    # Locked until configured (§10.1.1).
    await bob.join_refused(room, "Bob", "item-not-found", what="joining the locked room")

    values, types = await alice.config_form(room)
    check(values.get("FORM_TYPE") == [mc.NS_MUC + "#roomconfig"], "configuration form type %s" % values.get("FORM_TYPE"))
    for var in ("muc#roomconfig_roomname", "muc#roomconfig_persistentroom", "muc#roomconfig_whois",
                "muc#roomconfig_publicroom", "muc#roomconfig_enablelogging", "muc#roomconfig_roomowners"):
        check(var in values, "configuration form lacks %s: %s" % (var, sorted(values)))
    check(values["muc#roomconfig_persistentroom"] == ["0"] and types["muc#roomconfig_persistentroom"] == "boolean",
          "a new room is persistent: %s" % values["muc#roomconfig_persistentroom"])
    check(values["muc#roomconfig_whois"] == ["moderators"], "a new room's whois is %s" % values["muc#roomconfig_whois"])
    check(values["muc#roomconfig_roomowners"] == [alice.bare], "owners %s, want %s" % (values["muc#roomconfig_roomowners"], alice.bare))
    print("alice got the configuration form (%d fields)" % len(values), flush=True)

    await alice.configure(room, [
        ("muc#roomconfig_persistentroom", "1"),
        ("muc#roomconfig_roomname", "Reserved Room"),
        ("muc#roomconfig_roomdesc", "Where the end-to-end test meets"),
        ("muc#roomconfig_whois", "anyone"),
    ])
    values, _ = await alice.config_form(room)
    check(values["muc#roomconfig_persistentroom"] == ["1"] and values["muc#roomconfig_roomname"] == ["Reserved Room"]
          and values["muc#roomconfig_whois"] == ["anyone"], "configuration after the submission: %s" % values)
    ids, feats, info = await bob.disco_info(room)
    check(ids and ids[0].get("name") == "Reserved Room" and ids[0].get("category") == "conference",
          "room identity %s" % ids)
    for f in ("muc_persistent", "muc_nonanonymous", "muc_public", "muc_open", "muc_unmoderated", "muc_unsecured"):
        check(f in feats, "room features lack %s: %s" % (f, sorted(feats)))
    check(info.get("muc#roominfo_description") == ["Where the end-to-end test meets"], "roominfo %s" % info)
    print("configured: persistent, named, non-anonymous; disco#info agrees", flush=True)

    m = alice.mark()
    alice.message(room, "groupchat", subj="Welcome to the reserved room")
    await alice.wait(lambda r: mc.is_subject(r) and r.frm == room + "/Alice", "her subject change", since=m)

    # carol's joins with each history limit.
    async def history_with(h, want, what):
        m = carol.mark()
        await carol.join(room, "carol", history=h)
        # Anything the room sent with the join has come once it answers.
        await carol.barrier(room)
        got = carol.since(m, lambda r: r.bare_from == lower)
        bodies = [mc.body(r) for r in got if r.kind == "message" and mc.body(r)]
        check(bodies == want, "history with %s: %s, want %s" % (what, bodies, want))
        check(mc.is_subject(got[-1]), "history with %s: the subject is not last: %s" % (what, got[-1]))
        print("history with %s: %s, then the subject" % (what, bodies or "nothing"), flush=True)
        await carol.leave(room, "carol")

    # History: h1-h3, then more than two seconds later h4-h6.
    m = alice.mark()
    for i in range(1, 4):
        alice.say(room, "h%d" % i)
    await alice.wait_all(lambda r: r.kind == "message" and (mc.body(r) or "").startswith("h"), 3, "her first messages", since=m)
    await asyncio.sleep(2.1)
    for i in range(4, 7):
        alice.say(room, "h%d" % i)
    await alice.wait_all(lambda r: r.kind == "message" and (mc.body(r) or "").startswith("h"), 6, "her messages", since=m)
    # At once, while h4 is less than a second old and h3 more than two.
    await history_with({"seconds": 1}, ["h4", "h5", "h6"], "seconds=1")

    # bob enters as "  Bob  ": the Nickname profile trims it (210).
    am, bm = alice.mark(), bob.mark()
    await bob.join(room, "  Bob  ")
    await bob.barrier(room)
    got = bob.since(bm, lambda r: r.bare_from == lower)
    kinds = []
    for r in got:
        if r.kind == "presence" and r.frm == room + "/Alice":
            kinds.append("alice")
            it = mc.item(r)
            check(it.get("jid") == alice.jid and it.get("affiliation") == "owner" and it.get("role") == "moderator",
                  "bob sees alice's item %s, want her real JID %s in a non-anonymous room" % (it, alice.jid))
        elif mc.self_presence(room)(r):
            kinds.append("self")
            check(r.frm == room + "/Bob", "bob's self-presence from %s, want %s/Bob" % (r.frm, room))
            check(mc.codes(r) == {"110", "100", "170", "210"}, "bob's status codes %s, want 110 100 170 210" % sorted(mc.codes(r)))
            check(mc.item(r).get("role") == "participant" and mc.item(r).get("affiliation") == "none", "bob's item %s" % mc.item(r))
        elif r.kind == "message" and mc.body(r):
            kinds.append(mc.body(r))
            stamp, dfrom = mc.delay(r)
            check(stamp and dfrom == room, "history message without the room's delay: %s" % r)
            check(r.frm == room + "/Alice" and r.type == "groupchat", "history message %s" % r)
            check(mc.stanza_id(r) != (None, None), "history message without stanza-id: %s" % r)
        elif mc.is_subject(r):
            kinds.append("subject")
            check(mc.subject(r) == "Welcome to the reserved room" and r.frm == room + "/Alice", "subject %s" % r)
        else:
            kinds.append("other")
    want = ["alice", "self", "h1", "h2", "h3", "h4", "h5", "h6", "subject"]
    check(kinds == want, "bob's join: %s, want %s" % (kinds, want))
    print("bob entered as '  Bob  ': %s" % " ".join(kinds), flush=True)
    r = await alice.wait(mc.presence_from(room + "/Bob"), "bob's arrival", since=am)
    check(mc.codes(r) == set() and mc.item(r).get("jid") == bob.jid, "alice sees bob's arrival as %s" % r)
    history = {mc.body(r): r for r in got if r.kind == "message" and mc.body(r)}

    # Only moderators change the subject here (§8.1).
    am, bm = alice.mark(), bob.mark()
    bob.message(room, "groupchat", subj="Bob's subject", mid="subj-1")
    r = await bob.wait(mc.error_from(room, "message"), "the refusal of his subject change", since=bm)
    check(mc.error_condition(r.xml) == "forbidden" and r.id == "subj-1", "a participant's subject change answered %s" % r)
    await alice.barrier(room)
    alice.none(mc.is_subject, "bob's subject change", since=am)

    await history_with({"maxstanzas": 2}, ["h5", "h6"], "maxstanzas=2")
    await history_with({"maxchars": 0}, [], "maxchars=0")
    # The room counts the characters of each message as it keeps it,
    # without 'to' and the delay; two and a half times one of them leaves
    # room for two.
    one = history["h6"].xml
    one.attrib.pop("to", None)
    for d in one.findall("{%s}delay" % mc.NS_DELAY):
        one.remove(d)
    size = len(mc.tostring(one))
    await history_with({"maxchars": int(size * 2.5)}, ["h5", "h6"], "maxchars=%d" % int(size * 2.5))
    since, _ = mc.delay(history["h5"])
    await history_with({"since": since}, ["h5", "h6"], "since=" + since)

    # Nick change (§7.6).
    am, bm = alice.mark(), bob.mark()
    bob.presence(room + "/Robert")
    for s, m, self_ in ((alice, am, False), (bob, bm, True)):
        gone = await s.wait(mc.presence_from(room + "/Bob", "unavailable"), "303 for bob", since=m)
        want = {"303", "110"} if self_ else {"303"}
        check(mc.codes(gone) == want and mc.item(gone).get("nick") == "Robert",
              "%s: nick change announced as %s" % (s.label, gone))
        back = await s.wait(mc.presence_from(room + "/Robert"), "Robert's presence", since=m)
        check(s.rx.index(gone) < s.rx.index(back), "%s: new nick before the 303" % s.label)
        check(("110" in mc.codes(back)) == self_, "%s: Robert's presence %s" % (s.label, back))
    print("bob is now Robert: 303 then the new presence, at alice's and his own", flush=True)

    am = alice.mark()
    await bob.join_refused(room, "alice", "conflict", what="changing nick to 'alice' (alice's)")
    await carol.join_refused(room, "ROBERT", "conflict", what="joining as 'ROBERT' (bob's)")
    await alice.barrier(room)
    alice.none(lambda r: r.kind == "presence" and r.bare_from == lower and r.nick not in ("Alice",),
               "presence about the refused nicknames", since=am)

    # One nick, two resources of dave (§7.2.9 leaves it to the service;
    # the sessions share the occupant).
    await dave1.join(room, "Dave")
    m1, am, bm = dave1.mark(), alice.mark(), bob.mark()
    got = await dave2.join(room, "Dave")
    others = [r.nick for r in got if r.kind == "presence" and "110" not in mc.codes(r)]
    check(others == ["Alice", "Robert"], "dave's second resource saw the room as %s" % others)
    await dave1.wait(mc.self_presence(room), "own presence after the second resource joined", since=m1)
    for s, m in ((alice, am), (bob, bm)):
        await s.wait(mc.presence_from(room + "/Dave"), "dave's presence", since=m)
    m1, m2 = dave1.mark(), dave2.mark()
    alice.say(room, "to both of dave")
    bob.message(room + "/Dave", "chat", "private to dave")
    for s, m in ((dave1, m1), (dave2, m2)):
        r = await s.wait(mc.groupchat_body("to both of dave"), "the room message", since=m)
        check(r.to == s.jid, "%s: room message addressed to %s" % (s.label, r.to))
        r = await s.wait(mc.with_body("private to dave"), "bob's private message", since=m)
        check(r.to == s.jid and r.frm == room + "/Robert" and r.child(mc.NS_USER, "x") is not None,
              "%s: private message %s" % (s.label, r))
    print("dave's two resources both got the room message and the private message", flush=True)

    m1, m2, am, bm = dave1.mark(), dave2.mark(), alice.mark(), bob.mark()
    dave1.presence(room + "/Dave", "unavailable")
    r = await dave1.wait(mc.self_presence(room, "unavailable"), "own unavailable presence", since=m1)
    r = await dave2.wait(mc.self_presence(room), "own presence after the other resource left", since=m2)
    for s, m in ((alice, am), (bob, bm)):
        await s.wait(mc.presence_from(room + "/Dave"), "dave's remaining presence", since=m)
    alice.say(room, "after dave one left")
    await dave2.wait(mc.groupchat_body("after dave one left"), "the message after one resource left", since=m2)
    for s, m in ((alice, am), (bob, bm), (dave2, m2)):
        await s.barrier(room)
        s.none(mc.presence_from(room + "/Dave", "unavailable"), "dave leaving the room", since=m)
    await dave1.barrier(room)
    dave1.none(mc.groupchat_body("after dave one left"), "a room message after leaving", since=m1)
    ids, _, info = await alice.disco_info(room)
    check(info.get("muc#roominfo_occupants") == ["3"], "occupants %s, want 3 (Alice, Robert, Dave)" % info.get("muc#roominfo_occupants"))
    print("one of dave's resources left; the occupant stayed with the other", flush=True)

    # The other one disconnects without a word: its session ends, and with
    # it the occupant (RFC 6121 §4.6.3 has the server send unavailable).
    am, bm = alice.mark(), bob.mark()
    await dave2.close()
    for s, m in ((alice, am), (bob, bm)):
        await s.wait(mc.presence_from(room + "/Dave", "unavailable"), "dave leaving with his connection", since=m)
    ids, _, info = await alice.disco_info(room)
    check(info.get("muc#roominfo_occupants") == ["2"], "occupants %s after dave disconnected, want 2" % info.get("muc#roominfo_occupants"))
    print("dave's last resource disconnected: everyone saw him leave", flush=True)


async def instant_rooms(args, carol, bob, eve):
    room = "instant@" + args.service
    await carol.create(room, "carol")
    await bob.join(room, "bob")
    _, feats, _ = await bob.disco_info(room)
    check("muc_temporary" in feats, "an instant room is %s" % sorted(feats))
    print("carol created an instant room with an empty form; bob entered", flush=True)

    old = "oldstyle@" + args.service
    got = await eve.join(old, "eve", muc=False)
    sp = [r for r in got if mc.self_presence(old)(r)]
    check(sp and "201" in mc.codes(sp[0]), "a groupchat 1.0 join created no room: %s" % got)
    await bob.join(old, "bob")
    print("a join without <x/> made an open room at once", flush=True)

    for s, r, n in ((carol, room, "carol"), (bob, room, "bob"), (eve, old, "eve"), (bob, old, "bob")):
        await s.leave(r, n)
    for r in (room, old):
        await bob.iq_error(r, "get", "<query xmlns='%s'/>" % mc.NS_DISCO_INFO, "item-not-found",
                           "disco#info of %s after its last occupant left" % r)


async def main(args):
    alice = await mc.connect(args, "alice")
    bob = await mc.connect(args, "bob")
    carol = await mc.connect(args, "carol")
    dave1 = await mc.connect(args, "dave", "dave/one", resource="one")
    dave2 = await mc.connect(args, "dave", "dave/two", resource="two")
    eve = await mc.connect(args, "eve")
    await reserved_room(args, alice, bob, carol, dave1, dave2)
    await instant_rooms(args, carol, bob, eve)
    await mc.close_all(alice, bob, carol, dave1, eve)


if __name__ == "__main__":
    mc.run(main, mc.base_parser(__doc__).parse_args())
