"""Messages in a room (XEP-0045 §7.4-7.5, §7.8, §7.13, §8.6; XEP-0249,
XEP-0359, XEP-0421).

bob's message reaches alice, carol and himself from his occupant JID with
the room's stanza-id (by the room, the same for all) and his occupant-id;
the ones he made up himself are dropped. A private message reaches only
the addressee's real JID, marked with muc#user; one to an absent nick is
refused (item-not-found); messages from outside the room are refused
(not-acceptable).
bob cannot pass himself off as alice: a stanza with her JID or her
occupant JID as 'from' is delivered as his. alice invites dave through the room and his decline
comes back to her; she invites eve directly (XEP-0249). In the room, made
moderated, eve is a visitor; her voice request reaches the moderator only,
who approves it, and everyone sees her get voice."""

import muc_common as mc
import xmpp_common as xc

check = xc.check


async def main(args):
    alice = await mc.connect(args, "alice")
    bob = await mc.connect(args, "bob")
    carol = await mc.connect(args, "carol")
    dave = await mc.connect(args, "dave")
    eve = await mc.connect(args, "eve")
    room = "talk@" + args.service
    occ = lambda n: room + "/" + n  # noqa: E731
    await alice.create(room, "alice")
    am = alice.mark()
    await bob.join(room, "bob")
    bob_pres = await alice.wait(mc.presence_from(occ("bob")), "bob's arrival", since=am)
    bob_oid = mc.occupant_id(bob_pres)
    check(bob_oid, "bob's presence has no occupant-id: %s" % bob_pres)
    await carol.join(room, "carol")
    inroom = [alice, bob, carol]

    def marks(ss):
        return {s.label: s.mark() for s in ss}

    # Reflection with stanza-id and occupant-id.
    m = marks(inroom + [dave])
    bob.say(room, "hello room", mid="m1", children=[
        "<stanza-id xmlns='%s' by='%s' id='made-up'/>" % (mc.NS_SID, room),
        "<occupant-id xmlns='%s' id='made-up'/>" % mc.NS_OCCUPANT])
    sids = set()
    for s in inroom:
        r = await s.wait(mc.groupchat_body("hello room"), "bob's message", since=m[s.label])
        check(r.frm == occ("bob") and r.to == s.jid and r.id == "m1", "%s: reflection %s" % (s.label, r))
        ids = r.xml.findall("{%s}stanza-id" % mc.NS_SID)
        check(len(ids) == 1 and ids[0].get("by") == room and ids[0].get("id") not in ("", "made-up"),
              "%s: stanza-ids %s" % (s.label, r))
        sids.add(ids[0].get("id"))
        oids = r.xml.findall("{%s}occupant-id" % mc.NS_OCCUPANT)
        check(len(oids) == 1 and oids[0].get("id") == bob_oid, "%s: occupant-id %s, want %s" % (s.label, r, bob_oid))
    check(len(sids) == 1, "the copies carry different stanza-ids: %s" % sids)
    await dave.barrier(room)
    dave.none(mc.with_body("hello room"), "a message of a room he is not in", since=m["dave"])
    print("bob's message reflected to all three with stanza-id %s by the room and occupant-id %s" % (sids.pop(), bob_oid), flush=True)

    # Private messages.
    m = marks(inroom)
    bob.message(occ("carol"), "chat", "psst, carol", mid="pm1")
    r = await carol.wait(mc.with_body("psst, carol"), "bob's private message", since=m["carol"])
    check(r.frm == occ("bob") and r.to == carol.jid and r.type == "chat" and r.child(mc.NS_USER, "x") is not None,
          "carol got the private message as %s" % r)
    for s in (alice, bob):
        await s.barrier(room)
        s.none(mc.with_body("psst, carol"), "a private message to carol", since=m[s.label])
    bm = bob.mark()
    bob.message(occ("nobody"), "chat", "anyone there?", mid="pm2")
    r = await bob.wait(lambda r: r.kind == "message" and r.type == "error" and r.id == "pm2", "the error", since=bm)
    check(mc.error_condition(r.xml) == "item-not-found" and r.frm == occ("nobody"), "a private message to nobody: %s" % r)
    dm = dave.mark()
    dave.message(occ("carol"), "chat", "from outside", mid="pm3")
    r = await dave.wait(lambda r: r.kind == "message" and r.type == "error" and r.id == "pm3", "the error", since=dm)
    check(mc.error_condition(r.xml) == "not-acceptable", "a private message from outside the room: %s" % r)
    dave.say(room, "outsider speaking", mid="out-1")
    r = await dave.wait(lambda r: r.kind == "message" and r.type == "error" and r.id == "out-1", "the error", since=dm)
    check(mc.error_condition(r.xml) == "not-acceptable", "a room message from outside the room: %s" % r)
    for s in inroom:
        await s.barrier(room)
        s.none(lambda r: mc.body(r) in ("from outside", "outsider speaking"), "a message from outside the room", since=m[s.label])
    print("private message: only carol got it, marked muc#user; absent nick item-not-found; an outsider's messages not-acceptable", flush=True)

    # A forged 'from'.
    m = marks(inroom)
    forged = ("I am alice", "alice's occupant here", "alice here, privately")
    bob.message(room, "groupchat", forged[0], frm=alice.jid, mid="forged-1")
    bob.message(room, "groupchat", forged[1], frm=occ("alice"), mid="forged-2")
    bob.message(occ("carol"), "chat", forged[2], frm=alice.jid, mid="forged-3")
    for s in inroom:
        for text in forged[:2]:
            r = await s.wait(mc.groupchat_body(text), "the message with a forged from", since=m[s.label])
            check(r.frm == occ("bob") and mc.occupant_id(r) == bob_oid, "%s: the forged message came as %s" % (s.label, r))
    r = await carol.wait(mc.with_body(forged[2]), "the private message with a forged from", since=m["carol"])
    check(r.frm == occ("bob"), "carol got the forged private message as %s" % r)
    for s in inroom:
        s.none(lambda r: r.kind == "message" and r.frm == occ("alice") and mc.body(r) in forged,
               "a message bob sent as alice", since=m[s.label])
    print("bob's stanzas claiming alice's JID reached everyone as bob's", flush=True)

    # Mediated invitation and decline (§7.8.2).
    m = marks(inroom + [dave])
    alice.message(room, None, mid="inv1", children=[
        "<x xmlns='%s'><invite to='%s'><reason>Join us</reason></invite></x>" % (mc.NS_USER, dave.bare)])
    r = await dave.wait(lambda r: r.kind == "message" and r.child(mc.NS_USER, "x") is not None, "the invitation", since=m["dave"])
    inv = r.xml.find("{%s}x/{%s}invite" % (mc.NS_USER, mc.NS_USER))
    check(r.frm == room and inv is not None and inv.get("from") == occ("alice"), "dave's invitation %s" % r)
    reason = inv.find("{%s}reason" % mc.NS_USER)
    check(reason is not None and reason.text == "Join us", "invitation without the reason: %s" % r)
    conf = r.child(mc.NS_CONFERENCE, "x")
    check(conf is not None and conf.get("jid") == room, "invitation without the jabber:x:conference form: %s" % r)
    dave.message(room, None, children=[
        "<x xmlns='%s'><decline to='%s'><reason>Busy</reason></decline></x>" % (mc.NS_USER, inv.get("from"))])
    r = await alice.wait(lambda r: r.kind == "message" and r.xml.find("{%s}x/{%s}decline" % (mc.NS_USER, mc.NS_USER)) is not None,
                         "dave's decline", since=m["alice"])
    dec = r.xml.find("{%s}x/{%s}decline" % (mc.NS_USER, mc.NS_USER))
    check(r.frm == room and dec.get("from") == dave.bare and dec.find("{%s}reason" % mc.NS_USER).text == "Busy",
          "alice got the decline as %s" % r)
    for s in (bob, carol):
        await s.barrier(room)
        s.none(lambda r: r.kind == "message" and r.child(mc.NS_USER, "x") is not None and mc.body(r) is None and r.frm == room
               and not mc.codes(r), "the invitation or the decline", since=m[s.label])
    print("mediated invitation reached dave from %s; his decline reached alice" % inv.get("from"), flush=True)

    # Direct invitation (XEP-0249): from client to client.
    em = eve.mark()
    alice.message(eve.bare, None, mid="direct-1", children=[
        "<x xmlns='%s' jid='%s' reason='Come and talk'/>" % (mc.NS_CONFERENCE, room)])
    r = await eve.wait(lambda r: r.kind == "message" and r.child(mc.NS_CONFERENCE, "x") is not None, "the direct invitation", since=em)
    x = r.child(mc.NS_CONFERENCE, "x")
    check(r.frm == alice.jid and x.get("jid") == room and x.get("reason") == "Come and talk", "eve's direct invitation %s" % r)
    print("direct invitation reached eve from %s" % r.frm, flush=True)

    # Voice request (§7.13, §8.6) in the room made moderated.
    await alice.configure(room, [("muc#roomconfig_moderatedroom", "1"), ("muc#roomconfig_allowvoicerequests", "1")])
    got = await eve.join(room, "eve")
    sp = [r for r in got if mc.self_presence(room)(r)][0]
    check(mc.item(sp).get("role") == "visitor", "eve entered the moderated room as %s" % mc.item(sp))
    m = marks(inroom + [eve])
    req = mc.form("submit", [("muc#role", "participant")], form_type=mc.NS_REQUEST)
    eve.message(room, None, children=[req])
    r = await alice.wait(lambda r: r.kind == "message" and r.frm == room and r.child(mc.NS_DATA, "x") is not None,
                         "the voice request", since=m["alice"])
    x = r.child(mc.NS_DATA, "x")
    vals, _ = mc.read_form(x)
    check(x.get("type") == "form" and vals.get("FORM_TYPE") == [mc.NS_REQUEST] and vals.get("muc#role") == ["participant"]
          and vals.get("muc#roomnick") == ["eve"] and vals.get("muc#request_allow") == ["false"],
          "alice got the voice request as %s" % r)
    for s in (bob, carol, eve):
        await s.barrier(room)
        s.none(lambda r: r.kind == "message" and r.child(mc.NS_DATA, "x") is not None, "the voice request", since=m[s.label])
    print("eve's voice request reached the moderator alone", flush=True)
    approve = mc.form("submit", [("muc#role", "participant"), ("muc#roomnick", "eve"), ("muc#request_allow", "true")],
                      form_type=mc.NS_REQUEST)
    alice.message(room, None, children=[approve])
    for s in inroom + [eve]:
        r = await s.wait(lambda r: r.kind == "presence" and r.frm == occ("eve") and mc.item(r).get("role") == "participant",
                         "eve's voice", since=m[s.label])
    eve.say(room, "thanks for the voice")
    for s in inroom + [eve]:
        await s.wait(mc.groupchat_body("thanks for the voice"), "eve's message", since=m[s.label])
    print("alice approved: everyone saw eve become a participant and heard her", flush=True)

    await mc.close_all(alice, bob, carol, dave, eve)


if __name__ == "__main__":
    mc.run(main, mc.base_parser(__doc__).parse_args())
