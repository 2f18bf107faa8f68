"""What modern clients expect of a room beyond XEP-0045.

Discovery: the service and the room answer disco#info with their identity,
the features clients look for and the muc#roominfo form. Archive
(XEP-0313 on the room JID): twelve messages page back in three pages of at
most five, with ids equal to the stanza-ids occupants saw, for an occupant
and for a visitor of this public room alike. Self-ping (XEP-0410): answered
for an occupant, not-acceptable for someone who is not in the room; a ping
to another occupant is forwarded and answered. Moderation (XEP-0425): a
participant may not, the moderator retracts a message, every occupant
gets the retraction, the archive and the history of a newcomer keep a
tombstone. Avatar (XEP-0486):
the owner sets the room's vCard, occupants get status 104 and the new
hash, disco#info shows it, a newcomer gets it on entering."""

import base64
import hashlib
import struct
import zlib

import muc_common as mc
import xmpp_common as xc

check = xc.check


def tiny_png():
    """A 1x1 PNG, made here so that the test carries no binary file."""
    def chunk(kind, data):
        c = kind + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x80\x00")) + chunk(b"IEND", b""))


async def archive_page(s, room, qid, max_, after=None, with_=None):
    """One MAM query on the room; returns ([(id, message element)], fin)."""
    m = s.mark()
    flt = ""
    if with_:
        flt = mc.tostring(mc.form("submit", [("with", with_)], form_type=mc.NS_MAM))
    rsm = "<set xmlns='%s'><max>%d</max>%s</set>" % (mc.NS_RSM, max_, "<after>%s</after>" % after if after else "")
    res = await s.iq(room, "set", "<query xmlns='%s' queryid='%s'>%s%s</query>" % (mc.NS_MAM, qid, flt, rsm))
    fin = res.find("{%s}fin" % mc.NS_MAM)
    check(fin is not None, "%s: no <fin/>: %s" % (s.label, mc.tostring(res)))
    out = []
    for r in s.since(m, lambda r: r.kind == "message" and r.child(mc.NS_MAM, "result") is not None):
        res_el = r.child(mc.NS_MAM, "result")
        if res_el.get("queryid") != qid:
            continue
        check(r.frm == room, "%s: archive result from %s, want the room" % (s.label, r.frm))
        fwd = res_el.find("{%s}forwarded" % mc.NS_FORWARD)
        msg = fwd.find("{%s}message" % mc.NS_CLIENT)
        check(fwd.find("{%s}delay" % mc.NS_DELAY) is not None, "%s: archived message without delay: %s" % (s.label, r))
        out.append((res_el.get("id"), msg))
    return out, fin


def rsm_of(fin, name):
    e = fin.find("{%s}set/{%s}%s" % (mc.NS_RSM, mc.NS_RSM, name))
    return e.text if e is not None else None


async def read_archive(s, room, tag, max_=5, with_=None):
    items, after, pages = [], None, 0
    while True:
        page, fin = await archive_page(s, room, "%s-%d" % (tag, pages), max_, after, with_)
        pages += 1
        check(len(page) <= max_, "page of %d, max %d" % (len(page), max_))
        items += page
        if fin.get("complete") == "true":
            return items, pages, rsm_of(fin, "count")
        check(page, "an empty incomplete page")
        after = rsm_of(fin, "last")
        check(after == page[-1][0], "rsm last %s is not the last id %s" % (after, page[-1][0]))


def mbody(el):
    b = el.find("{%s}body" % mc.NS_CLIENT)
    return b.text if b is not None else None


async def main(args):
    alice = await mc.connect(args, "alice")
    bob = await mc.connect(args, "bob")
    carol = await mc.connect(args, "carol")
    dave = await mc.connect(args, "dave")
    room = "modern@" + args.service
    occ = lambda n: room + "/" + n  # noqa: E731

    # Discovery.
    ids, feats, _ = await bob.disco_info(args.service)
    check(("conference", "text") in [(i.get("category"), i.get("type")) for i in ids], "service identity %s" % ids)
    for f in (mc.NS_MUC, mc.NS_DISCO_INFO, mc.NS_DISCO_ITEMS, mc.NS_RSM):
        check(f in feats, "service features lack %s: %s" % (f, sorted(feats)))
    print("service disco#info: %s, %d features" % (ids, len(feats)), flush=True)

    await alice.create(room, "alice", [("muc#roomconfig_roomname", "Modern"), ("muc#roomconfig_roomdesc", "All the extensions")])
    await bob.join(room, "bob")
    await carol.join(room, "carol")
    ids, feats, info = await dave.disco_info(room)
    check(ids == [{"category": "conference", "type": "text", "name": "Modern"}], "room identity %s" % ids)
    for f in (mc.NS_MUC, "muc_public", "muc_temporary", "muc_open", "muc_unmoderated", "muc_semianonymous", "muc_unsecured",
              mc.NS_MAM, mc.NS_SID, mc.NS_OCCUPANT, mc.NS_MODERATE, mc.NS_PING, mc.NS_VCARD, mc.NS_REGISTER,
              mc.NS_MUC + "#self-ping-optimization", mc.NS_MUC + "#stable_id"):
        check(f in feats, "room features lack %s: %s" % (f, sorted(feats)))
    check(info.get("muc#roominfo_description") == ["All the extensions"] and info.get("muc#roominfo_occupants") == ["3"],
          "muc#roominfo form %s" % info)
    print("room disco#info: %d features and the muc#roominfo form %s" % (len(feats), sorted(info)), flush=True)

    # Archive with RSM paging.
    cm = carol.mark()
    for i in range(12):
        alice.say(room, "a%d" % i)
    live = await carol.wait_all(lambda r: r.kind == "message" and (mc.body(r) or "").startswith("a"), 12, "alice's messages", since=cm)
    live_ids = [mc.stanza_id(r)[0] for r in live]
    want = ["a%d" % i for i in range(12)]
    check([mc.body(r) for r in live] == want, "carol got %s" % [mc.body(r) for r in live])
    for s in (bob, dave):
        items, pages, count = await read_archive(s, room, s.label)
        check([mbody(m) for _, m in items] == want, "%s: archive %s" % (s.label, [mbody(m) for _, m in items]))
        check([i for i, _ in items] == live_ids, "%s: archive ids %s, want the stanza-ids %s" % (s.label, [i for i, _ in items], live_ids))
        check(all(m.get("from") == occ("alice") for _, m in items), "%s: archived senders %s" % (s.label, [m.get("from") for _, m in items]))
        check(pages == 3 and count == "12", "%s: %d pages, count %s" % (s.label, pages, count))
    print("archive: 12 messages in 3 pages of at most 5, ids equal to the live stanza-ids, for an occupant and an outsider", flush=True)

    # Self-ping (XEP-0410).
    await bob.iq(occ("bob"), "get", "<ping xmlns='%s'/>" % mc.NS_PING)
    await dave.iq_error(occ("dave"), "get", "<ping xmlns='%s'/>" % mc.NS_PING, "not-acceptable", "a self-ping from outside the room")
    res = await bob.iq(occ("carol"), "get", "<ping xmlns='%s'/>" % mc.NS_PING)
    check(res.get("from") == occ("carol"), "a ping to carol answered from %s" % res.get("from"))
    print("self-ping answered for bob, not-acceptable for dave; a ping to carol went through her", flush=True)

    # Moderation (XEP-0425).
    target = live_ids[5]
    moderate = "<moderate xmlns='%s' id='%s'><retract xmlns='%s'/><reason>Off topic</reason></moderate>" % (
        mc.NS_MODERATE, target, mc.NS_RETRACT)
    await bob.iq_error(room, "set", moderate, "forbidden", "a participant moderating")
    m = {s.label: s.mark() for s in (alice, bob, carol)}
    await alice.iq(room, "set", moderate)
    alice_oid = None
    for s in (alice, bob, carol):
        r = await s.wait(lambda r: r.kind == "message" and r.child(mc.NS_RETRACT, "retract") is not None, "the retraction", since=m[s.label])
        rt = r.child(mc.NS_RETRACT, "retract")
        mod = rt.find("{%s}moderated" % mc.NS_MODERATE)
        reason = rt.find("{%s}reason" % mc.NS_RETRACT)
        check(r.frm == room and r.type == "groupchat" and rt.get("id") == target, "%s: retraction %s" % (s.label, r))
        check(mod is not None and mod.get("by") == occ("alice") and reason is not None and reason.text == "Off topic",
              "%s: retraction without moderator or reason: %s" % (s.label, r))
        oid = mod.find("{%s}occupant-id" % mc.NS_OCCUPANT)
        check(oid is not None, "%s: retraction without the moderator's occupant-id: %s" % (s.label, r))
        alice_oid = alice_oid or oid.get("id")
        check(oid.get("id") == alice_oid, "%s: moderator's occupant-id %s" % (s.label, oid.get("id")))
    items, _, count = await read_archive(bob, room, "after")
    byid = dict(items)
    tomb = byid.get(target)
    check(tomb is not None, "the moderated message is gone from the archive")
    retracted = tomb.find("{%s}retracted" % mc.NS_RETRACT)
    check(mbody(tomb) is None and retracted is not None and retracted.find("{%s}moderated" % mc.NS_MODERATE) is not None,
          "the archive keeps %s instead of a tombstone" % mc.tostring(tomb))
    check(count == "13" and items[-1][1].find("{%s}retract" % mc.NS_RETRACT) is not None,
          "the archive does not end with the retraction: count %s, last %s" % (count, mc.tostring(items[-1][1])))
    check([mbody(m) for i, m in items[:12] if i != target] == [w for w in want if w != "a5"], "the other messages changed")
    print("moderation: retraction with moderator, occupant-id and reason to all; tombstone in the archive", flush=True)

    # Avatar (XEP-0486).
    png = tiny_png()
    digest = hashlib.sha1(png).hexdigest()
    vcard = "<vCard xmlns='%s'><PHOTO><TYPE>image/png</TYPE><BINVAL>%s</BINVAL></PHOTO></vCard>" % (
        mc.NS_VCARD, base64.b64encode(png).decode())
    await bob.iq_error(room, "set", vcard, "forbidden", "a participant setting the room's avatar")
    m = {s.label: s.mark() for s in (alice, bob, carol)}
    await alice.iq(room, "set", vcard)
    for s in (alice, bob, carol):
        r = await s.wait(lambda r: r.kind == "message" and r.frm == room and "104" in mc.codes(r), "status 104", since=m[s.label])
        r = await s.wait(lambda r: r.kind == "presence" and r.frm == room and r.child(mc.NS_VCARD_UPDATE, "x") is not None,
                         "the avatar hash", since=m[s.label])
        photo = r.xml.find("{%s}x/{%s}photo" % (mc.NS_VCARD_UPDATE, mc.NS_VCARD_UPDATE))
        check(photo is not None and photo.text == digest, "%s: avatar hash %s, want %s" % (s.label, r, digest))
    _, _, info = await dave.disco_info(room)
    check(info.get("muc#roominfo_avatarhash") == [digest], "disco#info avatar hash %s, want %s" % (info.get("muc#roominfo_avatarhash"), digest))
    res = await dave.iq(room, "get", "<vCard xmlns='%s'/>" % mc.NS_VCARD)
    bv = res.find("{%s}vCard/{%s}PHOTO/{%s}BINVAL" % (mc.NS_VCARD, mc.NS_VCARD, mc.NS_VCARD))
    check(bv is not None and base64.b64decode("".join(bv.text.split())) == png, "the room's vCard: %s" % mc.tostring(res))
    got = await dave.join(room, "dave")
    av = [r for r in got if r.kind == "presence" and r.frm == room]
    check(len(av) == 1 and av[0].xml.find("{%s}x/{%s}photo" % (mc.NS_VCARD_UPDATE, mc.NS_VCARD_UPDATE)).text == digest,
          "dave's join brought no avatar hash: %s" % got)
    print("avatar %s: 104 and the hash to all, in disco#info, in the vCard and on entering" % digest, flush=True)

    # The history a newcomer gets has the tombstone, not the moderated text.
    hist = [r for r in got if r.kind == "message" and mc.delay(r)[0]]
    check([mc.body(r) for r in hist] == [w if w != "a5" else None for w in want], "dave's history %s" % [mc.body(r) for r in hist])
    tomb = hist[5]
    check(mc.stanza_id(tomb)[0] == target and tomb.child(mc.NS_RETRACT, "retracted") is not None,
          "dave's history keeps %s where the moderated message was" % tomb)
    print("a newcomer's history has the tombstone in place of the moderated message", flush=True)

    await mc.close_all(alice, bob, carol, dave)


if __name__ == "__main__":
    mc.run(main, mc.base_parser(__doc__).parse_args())
