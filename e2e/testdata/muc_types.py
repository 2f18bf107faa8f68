"""Room types (XEP-0045 §7.2, §10.9, §6.3).

A password-protected room refuses bob without a password and with a wrong
one (not-authorized) and lets him in with the right one. A members-only
room refuses non-members (registration-required; its archive too) and
lets a member in; an admin's invitation makes carol one. A room of at most
two occupants refuses the third (service-unavailable); made members-only,
it sends its non-member away (322).
In a semi-anonymous room only the moderator sees real JIDs; in a
non-anonymous one everyone does, and a room switching to non-anonymous
tells its occupants (172). The service's disco#items lists the public
rooms and neither hidden nor locked ones, paged with RSM (after and
before). A destroyed
room tells each occupant, with the alternate venue and the reason, and
is gone."""

import muc_common as mc
import xmpp_common as xc

check = xc.check


def jid_of(rx):
    return mc.item(rx).get("jid")


async def password_room(args, alice, bob):
    room = "secret@" + args.service
    await alice.create(room, "alice", [("muc#roomconfig_passwordprotectedroom", "1"), ("muc#roomconfig_roomsecret", "s3cret")])
    _, feats, _ = await bob.disco_info(room)
    check("muc_passwordprotected" in feats, "password-protected room features %s" % sorted(feats))
    m = alice.mark()
    await bob.join_refused(room, "bob", "not-authorized", what="joining without the password")
    await bob.join_refused(room, "bob", "not-authorized", password="guess", what="joining with a wrong password")
    await alice.barrier(room)
    alice.none(lambda r: r.kind == "presence" and r.nick == "bob", "bob's refused attempts", since=m)
    await bob.join(room, "bob", password="s3cret")
    await alice.wait(mc.presence_from(room + "/bob"), "bob's arrival with the password", since=m)
    print("password room: bob entered with the right password only", flush=True)
    return room


async def members_only_room(args, alice, bob, carol):
    room = "club@" + args.service
    await alice.create(room, "alice", [("muc#roomconfig_membersonly", "1")])
    _, feats, _ = await bob.disco_info(room)
    check("muc_membersonly" in feats, "members-only room features %s" % sorted(feats))
    await bob.join_refused(room, "bob", "registration-required", what="a non-member joining a members-only room")
    await alice.admin_set(room, [{"jid": bob.bare, "affiliation": "member"}])
    got = await bob.join(room, "bob")
    sp = [r for r in got if mc.self_presence(room)(r)][0]
    check(mc.item(sp).get("affiliation") == "member", "bob entered as %s" % mc.item(sp))
    await carol.join_refused(room, "carol", "registration-required", what="carol, still no member, joining")
    await carol.iq_error(room, "set", "<query xmlns='%s'/>" % mc.NS_MAM, "forbidden", "a non-member reading the archive")
    print("members-only room: the member entered, the others did not", flush=True)

    # An invitation from an admin makes the invitee a member (§7.8.2).
    cm = carol.mark()
    alice.message(room, None, children=["<x xmlns='%s'><invite to='%s'/></x>" % (mc.NS_USER, carol.bare)])
    r = await carol.wait(lambda r: r.kind == "message" and r.frm == room, "the invitation", since=cm)
    check(r.xml.find("{%s}x/{%s}invite" % (mc.NS_USER, mc.NS_USER)) is not None, "carol's invitation %s" % r)
    members = sorted(i.get("jid") for i in await alice.admin_list(room, affiliation="member"))
    check(members == sorted([bob.bare, carol.bare]), "members after the invitation: %s" % members)
    await carol.join(room, "carol")
    await carol.leave(room, "carol")
    print("the invitation made carol a member, and she entered", flush=True)
    return room


async def small_room(args, alice, bob, carol):
    room = "small@" + args.service
    await alice.create(room, "alice", [("muc#roomconfig_maxusers", "2")])
    await bob.join(room, "bob")
    await carol.join_refused(room, "carol", "service-unavailable", what="a third occupant in a room for two")
    await bob.leave(room, "bob")
    await carol.join(room, "carol")
    print("room for two: the third was refused until one left", flush=True)

    # Made members-only, the room sends its non-members away (322).
    am, cm = alice.mark(), carol.mark()
    await alice.configure(room, [("muc#roomconfig_membersonly", "1")])
    for s, m, want in ((alice, am, {"322"}), (carol, cm, {"322", "110"})):
        r = await s.wait(mc.presence_from(room + "/carol", "unavailable"), "carol's removal", since=m)
        check(mc.codes(r) == want, "%s: removal of a non-member with %s, want %s" % (s.label, mc.codes(r), want))
    await alice.configure(room, [("muc#roomconfig_membersonly", "0")])
    print("made members-only, the room removed carol with 322", flush=True)
    return room


async def anonymity(args, alice, bob, carol):
    semi = "semi@" + args.service
    await alice.create(semi, "alice")
    got = await bob.join(semi, "bob")
    a = [r for r in got if r.frm == semi + "/alice"][0]
    sp = [r for r in got if mc.self_presence(semi)(r)][0]
    check(jid_of(a) is None, "bob, a participant, sees alice's real JID in a semi-anonymous room: %s" % a)
    check("100" not in mc.codes(sp) and jid_of(sp) == bob.jid, "bob's own presence in a semi-anonymous room: %s" % sp)
    am, bm = alice.mark(), bob.mark()
    got = await carol.join(semi, "carol")
    for r in got:
        if r.kind == "presence" and "110" not in mc.codes(r):
            check(jid_of(r) is None, "carol sees a real JID in a semi-anonymous room: %s" % r)
    r = await alice.wait(mc.presence_from(semi + "/carol"), "carol's arrival", since=am)
    check(jid_of(r) == carol.jid, "alice, the moderator, does not see carol's real JID: %s" % r)
    r = await bob.wait(mc.presence_from(semi + "/carol"), "carol's arrival", since=bm)
    check(jid_of(r) is None, "bob, a participant, sees carol's real JID: %s" % r)
    print("semi-anonymous: only the moderator saw real JIDs", flush=True)

    m = {s.label: s.mark() for s in (alice, bob, carol)}
    await alice.configure(semi, [("muc#roomconfig_whois", "anyone")])
    for s in (alice, bob, carol):
        r = await s.wait(lambda r: r.kind == "message" and r.frm == semi and r.type == "groupchat" and mc.codes(r),
                         "the notice of the change", since=m[s.label])
        check(mc.codes(r) == {"172"}, "%s: the switch to non-anonymous announced with %s" % (s.label, mc.codes(r)))
    print("the switch to non-anonymous was announced to all three with 172", flush=True)

    nonanon = "nonanon@" + args.service
    await alice.create(nonanon, "alice", [("muc#roomconfig_whois", "anyone")])
    got = await bob.join(nonanon, "bob")
    a = [r for r in got if r.frm == nonanon + "/alice"][0]
    sp = [r for r in got if mc.self_presence(nonanon)(r)][0]
    check(jid_of(a) == alice.jid, "bob does not see alice's real JID in a non-anonymous room: %s" % a)
    check("100" in mc.codes(sp), "no status 100 on entering a non-anonymous room: %s" % sp)
    bm = bob.mark()
    got = await carol.join(nonanon, "carol")
    seen = {r.nick: jid_of(r) for r in got if r.kind == "presence" and "110" not in mc.codes(r)}
    check(seen == {"alice": alice.jid, "bob": bob.jid}, "carol sees %s" % seen)
    r = await bob.wait(mc.presence_from(nonanon + "/carol"), "carol's arrival", since=bm)
    check(jid_of(r) == carol.jid, "bob does not see carol's real JID in a non-anonymous room: %s" % r)
    print("non-anonymous: every occupant saw every real JID", flush=True)
    return [semi, nonanon]


async def directory(args, alice, bob, public):
    hidden = "hidden@" + args.service
    await alice.create(hidden, "alice", [("muc#roomconfig_publicroom", "0"), ("muc#roomconfig_roomname", "Hidden")])
    pending = "pending@" + args.service
    await alice.join(pending, "alice")  # locked, not configured

    async def page(max_=None, after=None):
        rsm = ""
        if max_ is not None or after is not None:
            rsm = "<set xmlns='%s'>%s%s</set>" % (mc.NS_RSM, "<max>%d</max>" % max_ if max_ is not None else "",
                                                  "<after>%s</after>" % after if after else "")
        res = await bob.iq(args.service, "get", "<query xmlns='%s'>%s</query>" % (mc.NS_DISCO_ITEMS, rsm))
        qe = res.find("{%s}query" % mc.NS_DISCO_ITEMS)
        items = [(i.get("jid"), i.get("name")) for i in qe.findall("{%s}item" % mc.NS_DISCO_ITEMS)]
        s = qe.find("{%s}set" % mc.NS_RSM)
        rs = {}
        if s is not None:
            for c in s:
                rs[c.tag.split("}")[1]] = c.text
                if c.tag.endswith("}first"):
                    rs["index"] = c.get("index")
        return items, rs

    everything, _ = await page()
    jids = [j for j, _ in everything]
    for r in public:
        check(r in jids, "public room %s not in the directory %s" % (r, jids))
    check(hidden not in jids and pending not in jids, "the directory lists a hidden or locked room: %s" % jids)
    check(jids == sorted(jids), "directory not in a stable order: %s" % jids)
    check(len(jids) >= 5, "only %d rooms listed" % len(jids))

    paged, after, n = [], None, 0
    while True:
        items, rs = await page(2, after)
        n += 1
        check(rs.get("count") == str(len(everything)), "page %d: count %s, want %d" % (n, rs.get("count"), len(everything)))
        if not items:
            break
        check(len(items) <= 2, "page %d has %d items, max 2" % (n, len(items)))
        check(rs.get("first") == items[0][0] and rs.get("last") == items[-1][0], "page %d: rsm %s for %s" % (n, rs, items))
        check(rs.get("index") == str(len(paged)), "page %d: first index %s, want %d" % (n, rs.get("index"), len(paged)))
        paged += items
        after = rs["last"]
        check(n < 50, "paging does not end")
    check(paged == everything, "paged directory %s differs from %s" % (paged, everything))
    res = await bob.iq(args.service, "get", "<query xmlns='%s'><set xmlns='%s'><max>2</max><before/></set></query>"
                       % (mc.NS_DISCO_ITEMS, mc.NS_RSM))
    last = [(i.get("jid"), i.get("name")) for i in res.findall("{%s}query/{%s}item" % (mc.NS_DISCO_ITEMS, mc.NS_DISCO_ITEMS))]
    check(last == everything[-2:], "the last page (<before/>) is %s, want %s" % (last, everything[-2:]))
    print("directory: %d public rooms, neither hidden nor locked ones, the same in %d pages of 2" % (len(jids), n), flush=True)

    await alice.iq(pending, "set", "<query xmlns='%s'><x xmlns='%s' type='cancel'/></query>" % (mc.NS_OWNER, mc.NS_DATA))
    await bob.iq_error(pending, "get", "<query xmlns='%s'/>" % mc.NS_DISCO_INFO, "item-not-found",
                       "disco#info of a room whose creation was cancelled")


async def destruction(args, alice, bob, carol):
    room = "doomed@" + args.service
    venue = "elsewhere@" + args.service
    await alice.create(room, "alice", [("muc#roomconfig_persistentroom", "1")])
    await bob.join(room, "bob")
    await carol.join(room, "carol")
    await bob.iq_error(room, "set", "<query xmlns='%s'><destroy/></query>" % mc.NS_OWNER, "forbidden",
                       "a participant destroying the room")
    m = {s.label: s.mark() for s in (alice, bob, carol)}
    await alice.iq(room, "set", "<query xmlns='%s'><destroy jid='%s'><reason>Moving on</reason></destroy></query>"
                   % (mc.NS_OWNER, venue))
    for s in (alice, bob, carol):
        r = await s.wait(mc.presence_from(room + "/" + s.label, "unavailable"), "the room's destruction", since=m[s.label])
        d = r.xml.find("{%s}x/{%s}destroy" % (mc.NS_USER, mc.NS_USER))
        check(d is not None and d.get("jid") == venue, "%s: destruction without the venue: %s" % (s.label, r))
        reason = d.find("{%s}reason" % mc.NS_USER)
        check(reason is not None and reason.text == "Moving on", "%s: destruction without the reason: %s" % (s.label, r))
        check(mc.item(r).get("role") == "none", "%s: role after destruction: %s" % (s.label, r))
    for s in (alice, bob, carol):
        await s.barrier(args.service)
        s.none(lambda r: r.kind == "presence" and r.bare_from == room and r.type != "unavailable",
               "presence from the destroyed room", since=m[s.label])
    await bob.iq_error(room, "get", "<query xmlns='%s'/>" % mc.NS_DISCO_INFO, "item-not-found",
                       "disco#info of the destroyed room")
    # Nothing of it is left: bob creates a new room under its name.
    got = await bob.join(room, "bob")
    sp = [r for r in got if mc.self_presence(room)(r)][0]
    check("201" in mc.codes(sp) and mc.item(sp).get("affiliation") == "owner", "bob entering the old name: %s" % sp)
    await bob.configure(room, [])
    owners = [i.get("jid") for i in await bob.admin_list(room, affiliation="owner")]
    check(owners == [bob.bare], "the new room's owners %s" % owners)
    await bob.leave(room, "bob")
    print("destroyed: each occupant got the venue and the reason; the room is gone, its name free", flush=True)


async def main(args):
    alice = await mc.connect(args, "alice")
    bob = await mc.connect(args, "bob")
    carol = await mc.connect(args, "carol")
    public = [await password_room(args, alice, bob), await members_only_room(args, alice, bob, carol),
              await small_room(args, alice, bob, carol)]
    public += await anonymity(args, alice, bob, carol)
    await directory(args, alice, bob, public)
    await destruction(args, alice, bob, carol)
    await mc.close_all(alice, bob, carol)


if __name__ == "__main__":
    mc.run(main, mc.base_parser(__doc__).parse_args())
