"""A persistent room across a restart of the server.

--phase before: alice creates a persistent, named, described,
non-anonymous, moderated room, sets its subject and avatar, makes carol
an admin, eve an owner and dave an outcast; bob registers the nickname
"Bobby" (a member). alice and bob send five messages; their stanza-ids
are printed. alice also holds a temporary room. The script prints READY
and waits for the server to stop: each occupant of both rooms is told
(status 332).

--phase after (a server on the same data directory): the configuration,
every affiliation list, the registered nickname, the avatar and the
archive (same ids, in order, filtered by occupant JID) are as they were; bob entering gets the five
messages as history and then the subject; frank enters a visitor and the
outcast is refused; a new message is archived after the old ones, with
bob's occupant-id unchanged; the temporary room is gone."""

import asyncio
import base64
import hashlib

import muc_common as mc
import muc_modern
import xmpp_common as xc

check = xc.check

ROOM_FIELDS = [
    ("muc#roomconfig_persistentroom", "1"),
    ("muc#roomconfig_roomname", "Kept"),
    ("muc#roomconfig_roomdesc", "Survives restarts"),
    ("muc#roomconfig_whois", "anyone"),
    ("muc#roomconfig_moderatedroom", "1"),
    ("muc#roomconfig_allowpm", "participants"),
]
# (sender's nickname, body)
BODIES = [("alice", "p0"), ("Bobby", "p1"), ("alice", "p2"), ("Bobby", "p3"), ("alice", "p4")]


async def before(args, room, temp):
    alice = await mc.connect(args, "alice")
    bob = await mc.connect(args, "bob")
    acc = mc.accounts(args)
    await alice.create(room, "alice", ROOM_FIELDS)
    alice.message(room, "groupchat", subj="Kept subject")
    await alice.iq(room, "set", "<vCard xmlns='%s'><PHOTO><TYPE>image/png</TYPE><BINVAL>%s</BINVAL></PHOTO></vCard>"
                   % (mc.NS_VCARD, base64.b64encode(muc_modern.tiny_png()).decode()))
    await alice.admin_set(room, [
        {"jid": acc["carol"][0], "affiliation": "admin"},
        {"jid": acc["eve"][0], "affiliation": "owner"},
        {"jid": acc["dave"][0], "affiliation": "outcast", "reason": "Kept out"},
    ])
    await bob.iq(room, "set", "<query xmlns='%s'>%s</query>" % (mc.NS_REGISTER, mc.tostring(mc.form(
        "submit", [("muc#register_roomnick", "Bobby")], form_type=mc.NS_MUC + "#register"))))
    got = await bob.join(room, "Bobby")
    sp = [r for r in got if mc.self_presence(room)(r)][0]
    check(mc.item(sp).get("role") == "participant", "bob, a member, entered as %s" % mc.item(sp))
    am = alice.mark()
    for who, text in BODIES:
        (alice if who == "alice" else bob).say(room, text)
        await alice.wait(mc.groupchat_body(text), "message %s" % text, since=am)
    live = alice.since(am, lambda r: r.kind == "message" and mc.body(r) in [b for _, b in BODIES])
    print("stanza-ids: %s" % " ".join(mc.stanza_id(r)[0] for r in live), flush=True)
    await alice.join(temp, "alice", muc=False)

    m = {s.label: s.mark() for s in (alice, bob)}
    print("READY", flush=True)
    for s, rooms in ((alice, (room, temp)), (bob, (room,))):
        for r in rooms:
            p = await s.wait(mc.self_presence(r, "unavailable"), "the shutdown notice from %s" % r, since=m[s.label], timeout=40)
            check("332" in mc.codes(p), "%s: leaving %s at shutdown with %s" % (s.label, r, p))
    print("332 received for both rooms", flush=True)
    for s in (alice, bob):
        try:
            await asyncio.wait_for(s.close(), 3)
        except Exception:
            pass  # the server is gone


async def after(args, room, temp, ids):
    acc = mc.accounts(args)
    alice = await mc.connect(args, "alice")
    bob = await mc.connect(args, "bob")
    carol = await mc.connect(args, "carol")
    dave = await mc.connect(args, "dave")
    frank = await mc.connect(args, "frank")

    values, _ = await alice.config_form(room)
    for var, want in ROOM_FIELDS:
        check(values.get(var) == [want], "after the restart %s is %s, want %s" % (var, values.get(var), want))
    lists = {}
    for a in ("member", "admin", "owner", "outcast"):
        lists[a] = sorted((i.get("jid"), i.get("nick"), i.get("reason")) for i in await alice.admin_list(room, affiliation=a))
    want = {"member": [(bob.bare, "Bobby", None)], "admin": [(carol.bare, None, None)],
            "owner": sorted([(alice.bare, None, None), (acc["eve"][0], None, None)]), "outcast": [(dave.bare, None, "Kept out")]}
    check(lists == want, "affiliations after the restart %s, want %s" % (lists, want))
    print("configuration and affiliations survived: %s" % lists, flush=True)

    digest = hashlib.sha1(muc_modern.tiny_png()).hexdigest()
    ids_, feats, info = await frank.disco_info(room)
    check(ids_[0].get("name") == "Kept" and "muc_persistent" in feats and "muc_moderated" in feats
          and info.get("muc#roominfo_avatarhash") == [digest] and info.get("muc#roominfo_subject") == ["Kept subject"],
          "disco#info after the restart: %s %s %s" % (ids_, sorted(feats), info))
    res = await frank.iq(args.service, "get", "<query xmlns='%s'/>" % mc.NS_DISCO_ITEMS)
    items = [(i.get("jid"), i.get("name")) for i in res.findall("{%s}query/{%s}item" % (mc.NS_DISCO_ITEMS, mc.NS_DISCO_ITEMS))]
    check((room, "Kept") in items and not any(j == temp for j, _ in items), "directory after the restart: %s" % items)
    await frank.iq_error(temp, "get", "<query xmlns='%s'/>" % mc.NS_DISCO_INFO, "item-not-found",
                         "disco#info of the temporary room after the restart")

    items, pages, count = await muc_modern.read_archive(frank, room, "kept", max_=2)
    check([(m.get("from"), muc_modern.mbody(m)) for _, m in items] == [(room + "/" + w, b) for w, b in BODIES]
          and [i for i, _ in items] == ids, "archive after the restart %s, want %s with ids %s" % (
              [(i, m.get("from"), muc_modern.mbody(m)) for i, m in items], BODIES, ids))
    print("archive survived: %d messages in %d pages, same ids" % (len(items), pages), flush=True)
    items, _, count = await muc_modern.read_archive(frank, room, "bobby", with_=room + "/Bobby")
    check([muc_modern.mbody(m) for _, m in items] == ["p1", "p3"] and count == "2",
          "archive with=%s/Bobby: %s (count %s)" % (room, [muc_modern.mbody(m) for _, m in items], count))

    await carol.join_refused(room, "bobby", "conflict", what="taking bob's registered nickname after the restart")
    await dave.join_refused(room, "dave", "forbidden", what="the outcast entering after the restart")
    bm = bob.mark()
    await bob.join(room, "Bobby")
    await bob.barrier(room)
    got = bob.since(bm, lambda r: r.bare_from == room)
    kinds = []
    for r in got:
        if r.kind == "presence" and r.frm == room:
            photo = r.xml.find("{%s}x/{%s}photo" % (mc.NS_VCARD_UPDATE, mc.NS_VCARD_UPDATE))
            check(photo is not None and photo.text == digest, "avatar presence %s" % r)
            kinds.append("avatar")
        elif mc.self_presence(room)(r):
            check(mc.item(r).get("affiliation") == "member" and mc.item(r).get("role") == "participant" and "100" in mc.codes(r),
                  "bob's presence after the restart %s" % r)
            kinds.append("self")
        elif r.kind == "message" and mc.body(r):
            check(mc.delay(r)[0] and r.frm.startswith(room + "/"), "history message %s" % r)
            kinds.append(mc.body(r))
        elif mc.is_subject(r):
            check(mc.subject(r) == "Kept subject", "subject after the restart %s" % r)
            kinds.append("subject")
        else:
            kinds.append(repr(r))
    want = ["self", "avatar"] + [b for _, b in BODIES] + ["subject"]
    check(kinds == want, "bob's join after the restart: %s, want %s" % (kinds, want))
    print("bob entered: %s" % " ".join(kinds), flush=True)

    got = await frank.join(room, "frank")
    sp = [r for r in got if mc.self_presence(room)(r)][0]
    check(mc.item(sp).get("role") == "visitor", "frank entered the moderated room as %s" % mc.item(sp))
    bm = bob.mark()
    bob.say(room, "p5")
    r = await bob.wait(mc.groupchat_body("p5"), "his new message", since=bm)
    items, _, count = await muc_modern.read_archive(frank, room, "more", max_=10)
    check([muc_modern.mbody(m) for _, m in items] == [b for _, b in BODIES] + ["p5"] and items[-1][0] == mc.stanza_id(r)[0],
          "archive after a new message: %s" % [(i, muc_modern.mbody(m)) for i, m in items])
    # Occupant ids derive from a secret the room keeps: bob's is the same.
    old = items[1][1].find("{%s}occupant-id" % mc.NS_OCCUPANT)
    check(old is not None and old.get("id") == mc.occupant_id(r), "bob's occupant-id changed with the restart: %s, now %s"
          % (mc.tostring(items[1][1]), mc.occupant_id(r)))
    print("a new message was archived after the old ones (id %s)" % items[-1][0], flush=True)
    await mc.close_all(alice, bob, carol, dave, frank)


async def main(args):
    room, temp = "kept@" + args.service, "fleeting@" + args.service
    if args.phase == "before":
        await before(args, room, temp)
    else:
        await after(args, room, temp, args.stanza_ids.split())


if __name__ == "__main__":
    p = mc.base_parser(__doc__)
    p.add_argument("--phase", choices=("before", "after"), required=True)
    p.add_argument("--stanza-ids", default="", help="after: the ids printed before")
    mc.run(main, p.parse_args())
