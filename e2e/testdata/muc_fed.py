"""Multi-user chat across servers: the owner creates a room on its
server's conference service (an instant room), other users of that
server may join it as members, and a guest from another server joins it
over federation. Everyone sees everyone's presence in the room, with the
affiliation and role the room gives them (the owner, a moderator, sees the
guest's real JID); the owner, the members and the guest exchange
groupchat messages; the guest leaves and the others see it go.

Users come as JID PASSWORD PORT CA, PORT being HOST:PORT for a server on
another loopback address; each user's nickname is the local part of its
JID."""

from xml.etree import ElementTree as ET

import im_common as im
import xmpp_common as xc

NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = NS_MUC + "#user"
NS_MUC_OWNER = NS_MUC + "#owner"
NS_DATA = "jabber:x:data"


class Occupant:
    """A user in the room, with a session on their own server."""

    def __init__(self, session, room, jid):
        self.s = session
        self.jid = jid
        self.nick = jid.split("@", 1)[0]
        self.room = room
        self.occupant_jid = "%s/%s" % (room, self.nick)

    def join(self):
        p = self.s.xmpp.make_presence(pto=self.occupant_jid)
        x = ET.SubElement(p.xml, "{%s}x" % NS_MUC)
        # No history: the checks below count messages.
        ET.SubElement(x, "{%s}history" % NS_MUC, maxstanzas="0")
        p.send()

    def leave(self):
        self.s.xmpp.send_presence(pto=self.occupant_jid, ptype="unavailable")

    def say(self, body):
        self.s.xmpp.send_message(mto=self.room, mbody=body, mtype="groupchat")

    async def presence_of(self, other, ptype="available", codes=(), timeout=20):
        """Waits for the room's presence of other's nickname of type ptype,
        with the status codes given, and returns its muc#user item."""
        def match(p):
            if p["from"].full != other.occupant_jid or p["type"] != ptype:
                return False
            item, got = muc_user(p)
            return item is not None and set(codes) <= got
        p = await self.s.presences.wait_for(match, "%s presence of %s in %s (status %s)" % (ptype, other.nick, self.room, ",".join(codes) or "-"), timeout)
        return muc_user(p)[0]

    async def message_from(self, other, body, timeout=20):
        await self.s.messages.wait_for(
            lambda m: m["from"].full == other.occupant_jid and m["type"] == "groupchat" and m["body"] == body,
            "groupchat %r from %s" % (body, other.nick), timeout)


def muc_user(p):
    """The muc#user item of a presence and its status codes."""
    x = p.xml.find("{%s}x" % NS_MUC_USER)
    if x is None:
        return None, set()
    return x.find("{%s}item" % NS_MUC_USER), {s.get("code") for s in x.findall("{%s}status" % NS_MUC_USER)}


def check_item(item, who, what, affiliation, role):
    xc.check(item.get("affiliation") == affiliation and item.get("role") == role,
             "%s sees %s as %s/%s, want %s/%s" % (who, what, item.get("affiliation"), item.get("role"), affiliation, role))


async def main(args):
    users = []
    for spec in [args.owner] + args.member + [args.guest]:
        ns, jid, pw = im.account(args, spec)
        s = await im.Session(ns, jid, pw).start(roster=False)
        users.append(Occupant(s, args.room, jid))
    owner, members, guest = users[0], users[1:-1], users[-1]

    owner.join()
    item = await owner.presence_of(owner, codes=("110", "201"))
    check_item(item, owner.nick, "itself", "owner", "moderator")
    # The room is new: accept the default configuration (an instant room,
    # XEP-0045 §10.1.2), which unlocks it.
    iq = owner.s.xmpp.make_iq_set(ito=args.room)
    q = ET.SubElement(iq.xml, "{%s}query" % NS_MUC_OWNER)
    ET.SubElement(q, "{%s}x" % NS_DATA, type="submit")
    await iq.send(timeout=20)
    print("%s created %s" % (owner.jid, args.room), flush=True)

    for m in members:
        m.join()
        check_item(await m.presence_of(m, codes=("110",)), m.nick, "itself", "none", "participant")
        check_item(await m.presence_of(owner), m.nick, owner.nick, "owner", "moderator")
        check_item(await owner.presence_of(m), owner.nick, m.nick, "none", "participant")
        print("%s joined as %s" % (m.jid, m.nick), flush=True)

    guest.join()
    item = await guest.presence_of(guest, codes=("110",))
    check_item(item, guest.nick, "itself", "none", "participant")
    check_item(await guest.presence_of(owner), guest.nick, owner.nick, "owner", "moderator")
    for m in members:
        check_item(await guest.presence_of(m), guest.nick, m.nick, "none", "participant")
    item = await owner.presence_of(guest)
    check_item(item, owner.nick, guest.nick, "none", "participant")
    # The room is semi-anonymous: a moderator sees the guest's full JID,
    # as the guest's server sent it.
    real = item.get("jid") or ""
    xc.check(real == guest.s.jid.full, "%s sees %s's real JID as %r, want %s" % (owner.nick, guest.nick, real, guest.s.jid.full))
    for m in members:
        check_item(await m.presence_of(guest), m.nick, guest.nick, "none", "participant")
    print("%s joined %s over federation; everyone sees everyone" % (guest.jid, args.room), flush=True)

    locals_ = [owner] + members
    for u in locals_:
        body = "hello from %s" % u.nick
        u.say(body)
        for other in users:
            # The room reflects the message to its sender too.
            await other.message_from(u, body)
    body = "hello from %s" % guest.nick
    guest.say(body)
    for other in users:
        await other.message_from(guest, body)
    print("groupchat messages crossed both ways", flush=True)

    guest.leave()
    await guest.presence_of(guest, ptype="unavailable", codes=("110",))
    for u in locals_:
        item = await u.presence_of(guest, ptype="unavailable")
        check_item(item, u.nick, guest.nick + " leaving", "none", "none")
    print("%s left; %s saw it go" % (guest.jid, ", ".join(u.nick for u in locals_)), flush=True)

    for u in users:
        await u.s.close()


if __name__ == "__main__":
    p = im.account_parser(__doc__)
    p.add_argument("--room", required=True, help="the room's bare JID, on the owner's server")
    p.add_argument("--owner", nargs=4, required=True, metavar=("JID", "PASSWORD", "PORT", "CA"))
    p.add_argument("--member", nargs=4, action="append", default=[], metavar=("JID", "PASSWORD", "PORT", "CA"),
                   help="another user of the owner's server who joins first (repeatable)")
    p.add_argument("--guest", nargs=4, required=True, metavar=("JID", "PASSWORD", "PORT", "CA"),
                   help="the user of another server")
    im.run(main, p.parse_args())
