"""Registration with a room (XEP-0045 §7.10, §7.12).

bob asks the room for its registration form (jabber:iq:register with the
muc#register form), registers the nickname "Bobby" and then reads it back
both from the register query (<registered/>) and from disco#info on the
node x-roomuser-item, which tells carol nothing. He is a member with that
nickname on the member list. carol can neither enter as "bobby" nor
register it (conflict); bob enters as "Bobby". Once he cancels the
registration and leaves, carol may take the nickname."""

import muc_common as mc
import xmpp_common as xc

check = xc.check

REG = "<query xmlns='%s'/>" % mc.NS_REGISTER


def reg_form(nick):
    return "<query xmlns='%s'>%s</query>" % (mc.NS_REGISTER, mc.tostring(mc.form(
        "submit", [("muc#register_roomnick", nick)], form_type=mc.NS_MUC + "#register")))


async def reserved_nick(s, room):
    res = await s.iq(room, "get", "<query xmlns='%s' node='x-roomuser-item'/>" % mc.NS_DISCO_INFO)
    ids = res.findall("{%s}query/{%s}identity" % (mc.NS_DISCO_INFO, mc.NS_DISCO_INFO))
    return [(i.get("category"), i.get("type"), i.get("name")) for i in ids]


async def main(args):
    alice = await mc.connect(args, "alice")
    bob = await mc.connect(args, "bob")
    carol = await mc.connect(args, "carol")
    room = "reg@" + args.service
    await alice.create(room, "alice")

    res = await bob.iq(room, "get", REG)
    qe = res.find("{%s}query" % mc.NS_REGISTER)
    check(qe.find("{%s}registered" % mc.NS_REGISTER) is None, "bob is registered already: %s" % mc.tostring(res))
    x = qe.find("{%s}x" % mc.NS_DATA)
    check(x is not None, "no registration form: %s" % mc.tostring(res))
    vals, _ = mc.read_form(x)
    check(vals.get("FORM_TYPE") == [mc.NS_MUC + "#register"] and "muc#register_roomnick" in vals,
          "registration form %s" % vals)
    print("bob got the registration form: %s" % sorted(vals), flush=True)

    await bob.iq(room, "set", reg_form("Bobby"))
    res = await bob.iq(room, "get", REG)
    qe = res.find("{%s}query" % mc.NS_REGISTER)
    user = qe.find("{%s}username" % mc.NS_REGISTER)
    check(qe.find("{%s}registered" % mc.NS_REGISTER) is not None and user is not None and user.text == "Bobby",
          "bob's registration reads back as %s" % mc.tostring(res))
    got = await reserved_nick(bob, room)
    check(got == [("conference", "text", "Bobby")], "bob's reserved nickname through disco: %s" % got)
    got = await reserved_nick(carol, room)
    check(got == [], "carol, who registered nothing, has a reserved nickname: %s" % got)
    members = await alice.admin_list(room, affiliation="member")
    check([(i.get("jid"), i.get("nick")) for i in members] == [(bob.bare, "Bobby")], "member list %s" % members)
    print("bob registered 'Bobby': register query, x-roomuser-item and member list agree", flush=True)

    await carol.join_refused(room, "bobby", "conflict", what="joining under bob's registered nickname")
    await carol.iq_error(room, "set", reg_form("BOBBY"), "conflict", "registering bob's nickname")
    got = await bob.join(room, "Bobby")
    sp = [r for r in got if mc.self_presence(room)(r)][0]
    check(sp.frm == room + "/Bobby" and mc.item(sp).get("affiliation") == "member", "bob entered as %s" % sp)
    print("bob entered under his registered nickname, as a member", flush=True)

    await bob.iq(room, "set", "<query xmlns='%s'><remove/></query>" % mc.NS_REGISTER)
    got = await reserved_nick(bob, room)
    check(got == [], "bob still has a reserved nickname after cancelling: %s" % got)
    await bob.leave(room, "Bobby")
    await carol.join(room, "bobby")
    print("after bob cancelled and left, carol took the nickname", flush=True)
    await mc.close_all(alice, bob, carol)


if __name__ == "__main__":
    mc.run(main, mc.base_parser(__doc__).parse_args())
