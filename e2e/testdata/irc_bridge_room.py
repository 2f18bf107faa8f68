"""An XMPP user and an IRC user meet through Ambrosia's IRC bridge in
puppet mode. The IRC user (a few lines over a socket) joins a channel and
sets its topic; the XMPP user joins the channel as a room of the bridge's
domain and sees the IRC user among the occupants and the topic as the
subject; a groupchat message crosses each way.

With --direct, a one-to-one message crosses each way too (and with
--direct-first, before the join, the XMPP user writing first). With
--full, also: an emote (/me) each way, text that XML escapes and beyond
ASCII each way, two lines from XMPP as two lines on IRC, a topic change on
IRC seen as a subject change, a message to a nick nobody has refused as
item-not-found, a nick change on IRC seen as a nick change in the room
(status 303), a channel operator is a moderator and sets the topic from
XMPP, leaving the room parts the channel, and a kick on IRC is a kick
from the room (307). With --taken, an IRC
user has the XMPP user's nick already: the bridge's is that nick and '_',
in the room too, which says so (status 210).

With --roster (and --direct or --full), the IRC user met one to one is
then in the XMPP user's roster, with subscription both, named after the
nick, in the group IRC, and available; a second IRC user, in no channel,
writes one to one, is in the roster too, available, and quits: their
presence becomes unavailable (the bridge asks the IRC server with ISON
every contact_poll). With --roster-by-subscription, the server refuses the
bridge's roster set and the contacts come by the subscription the bridge
asks for instead, which this client accepts (slixmpp does by default):
they are in the roster with subscription both, without the name and group
a roster set gives."""

import asyncio

from slixmpp.xmlstream import tostring

import irc_common as ic
import muc_common as mc
import xmpp_common as xc


async def roster_item(s, contact, timeout=30.0):
    """Gets the roster, twice a second, until contact is in it, and
    returns its item."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        res = await s.xmpp.make_iq_get(queryxmlns="jabber:iq:roster").send(timeout=10)
        items = res["roster"]["items"]
        if contact in items:
            return items[contact]
        if loop.time() > deadline:
            raise xc.CheckFailed("%s is not in the roster of %s after %.0f s; the roster:\n  %s" % (
                contact, s.bare, timeout, tostring(res.xml)))
        await asyncio.sleep(0.5)


async def check_contact(s, contact, nick, since, by_subscription):
    """Checks that contact, met one to one, is in the roster as the bridge
    puts it there, and that its available presence came after since."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        it = await roster_item(s, contact)
        # A subscription goes from none to both in steps.
        if it["subscription"] == "both" or not by_subscription or loop.time() > deadline:
            break
        await asyncio.sleep(0.5)
    xc.check(it["subscription"] == "both", "%s in the roster with subscription %r, want both" % (contact, it["subscription"]))
    if not by_subscription:
        xc.check(it["name"] == nick, "%s in the roster named %r, want %r" % (contact, it["name"], nick))
        xc.check(list(it["groups"]) == ["IRC"], "%s in the roster in groups %r, want ['IRC']" % (contact, list(it["groups"])))
    await s.wait(lambda r: r.kind == "presence" and r.bare_from == contact.lower() and r.type == "",
                 "the available presence of the contact %s" % contact, since=since, timeout=30)
    print("%s is in the roster of %s, available" % (contact, s.bare), flush=True)


async def main(args):
    room = args.room
    channel = args.channel
    domain = room.split("@", 1)[1]
    me = args.irc_nick  # the IRC user
    contact = "%s@%s" % (me, domain)
    bridged = args.bridged_nick  # the XMPP user's nick on IRC

    squatter = None
    if args.taken:
        # Someone on IRC has the XMPP user's nick already: the bridge
        # takes another, which the room tells the XMPP user (status 210).
        squatter = await ic.IRC.connect(args.irc_host, args.irc_port, bridged)
        bridged += "_"
    irc = await ic.IRC.connect(args.irc_host, args.irc_port, me)
    irc.send("JOIN %s" % channel)
    await irc.wait(lambda l: l.command == "366", "the end of the names of %s" % channel)
    irc.send("TOPIC %s :%s" % (channel, args.topic))
    await irc.wait(lambda l: l.command == "TOPIC" and l.param(1) == args.topic, "the topic set")

    s = await mc.Session(args, args.jid, args.password, label=args.jid.split("@", 1)[0]).start()

    if args.direct_first:
        # One to one before anything else: the XMPP user's first message
        # logs them in to IRC, and the IRC user answers.
        m = irc.mark()
        s.message(contact, "chat", "hello %s" % me)
        await irc.wait(ic.privmsg(bridged, me, "hello %s" % me), "the XMPP user's first message", since=m)
        mx = s.mark()
        irc.send("PRIVMSG %s :hello %s" % (bridged, bridged))
        r = await s.wait(lambda r: r.kind == "message" and mc.body(r) == "hello %s" % bridged, "the IRC user's answer", since=mx)
        xc.check(r.bare_from == contact.lower() and r.type == "chat",
                 "the answer came from %r with type %r, want %s, chat" % (r.frm, r.type, contact))
        print("one to one with %s, the XMPP user first" % contact, flush=True)

    # The join: the IRC user among the occupants, the topic as the subject.
    m = irc.mark()
    got = await s.join(room, args.bridged_nick)
    print("joined %s; the room sent:\n  %s" % (room, "\n  ".join(repr(r) for r in got)), flush=True)
    occupants = {r.nick for r in got if r.kind == "presence" and r.type == ""}
    xc.check(me in occupants, "the IRC user %s is not among the occupants %s" % (me, sorted(occupants)))
    xc.check(bridged in occupants, "own nick %s is not among the occupants %s" % (bridged, sorted(occupants)))
    own = [r for r in got if mc.self_presence(room)(r)]
    xc.check(len(own) == 1 and own[0].nick == bridged, "self-presence %s, want one from %s" % (own, bridged))
    if args.taken:
        xc.check("210" in mc.codes(own[0]), "self-presence without status 210 for a nick the bridge changed: %r" % own[0])
    subj = [mc.subject(r) for r in got if mc.is_subject(r)]
    xc.check(subj == [args.topic], "subject %r, want the topic %r" % (subj, args.topic))
    await irc.wait(lambda l: l.command == "JOIN" and l.nick.lower() == bridged.lower() and l.param(0).lower() == channel.lower(),
                   "the XMPP user's JOIN", since=m)
    print("%s sees %s join %s" % (me, bridged, channel), flush=True)

    # Groupchat, both ways.
    m, mx = irc.mark(), s.mark()
    s.say(room, "hello from xmpp")
    await irc.wait(ic.privmsg(bridged, channel, "hello from xmpp"), "the XMPP user's message", since=m)
    r = await s.wait(mc.groupchat_body("hello from xmpp"), "the reflection of own message", since=mx)
    xc.check(r.nick == bridged, "own message reflected from %r, want %r" % (r.frm, bridged))
    mx = s.mark()
    irc.send("PRIVMSG %s :hello from irc" % channel)
    r = await s.wait(mc.groupchat_body("hello from irc"), "the IRC user's message", since=mx)
    xc.check(r.frm == "%s/%s" % (room, me), "the IRC message came from %r, want %s/%s" % (r.frm, room, me))
    print("groupchat both ways", flush=True)

    if args.full:
        # Emotes, both ways.
        mx = s.mark()
        irc.send("PRIVMSG %s :%s" % (channel, ic.action("waves")))
        r = await s.wait(mc.groupchat_body("/me waves"), "the IRC user's emote", since=mx)
        xc.check(r.nick == me, "emote from %r" % r.frm)
        m = irc.mark()
        s.say(room, "/me waves back")
        await irc.wait(ic.privmsg(bridged, channel, ic.action("waves back")), "the XMPP user's emote as a CTCP ACTION", since=m)
        print("emotes both ways", flush=True)

        # Text that XML escapes, beyond ASCII, both ways; two lines from
        # XMPP are two lines on IRC.
        text = "ça & <b>ok</b> ✓ \"quoted\""
        m, mx = irc.mark(), s.mark()
        s.say(room, text)
        await irc.wait(ic.privmsg(bridged, channel, text), "the XMPP user's text as it was", since=m)
        irc.send("PRIVMSG %s :%s!" % (channel, text))
        await s.wait(mc.groupchat_body(text + "!"), "the IRC user's text as it was", since=mx)
        m = irc.mark()
        s.say(room, "first line\nsecond line")
        await irc.wait(ic.privmsg(bridged, channel, "first line"), "the first line", since=m)
        await irc.wait(ic.privmsg(bridged, channel, "second line"), "the second line", since=m)
        print("escapes, non-ASCII text and two lines", flush=True)

        # A topic change on IRC is a subject change.
        mx = s.mark()
        irc.send("TOPIC %s :%s" % (channel, args.topic + ", changed"))
        r = await s.wait(lambda r: mc.is_subject(r) and mc.subject(r) == args.topic + ", changed", "the new subject", since=mx)
        xc.check(r.nick == me, "subject changed by %r, want %s" % (r.frm, me))
        print("topic change seen as a subject change by %s" % r.nick, flush=True)

    if args.direct or args.full:
        # One to one, both ways.
        mx = met = s.mark()
        irc.send("PRIVMSG %s :psst" % bridged)
        r = await s.wait(lambda r: r.kind == "message" and mc.body(r) == "psst", "the IRC user's private message", since=mx)
        xc.check(r.bare_from == contact.lower() and r.type == "chat",
                 "private message from %r of type %r, want %s, chat" % (r.frm, r.type, contact))
        m = irc.mark()
        s.message(contact, "chat", "psst back")
        await irc.wait(ic.privmsg(bridged, me, "psst back"), "the XMPP user's private message", since=m)
        print("one to one both ways with %s" % contact, flush=True)

        if args.roster:
            # The IRC user met one to one is a contact.
            await check_contact(s, contact, me, met, args.roster_by_subscription)
            # Another one, in no channel of the XMPP user's, writes, is a
            # contact, and quits: unavailable, once the bridge asked.
            dan_nick = "ircdan"
            dan = "%s@%s" % (dan_nick, domain)
            di = await ic.IRC.connect(args.irc_host, args.irc_port, dan_nick)
            mx = s.mark()
            di.send("PRIVMSG %s :hello from %s" % (bridged, dan_nick))
            await s.wait(lambda r: r.kind == "message" and mc.body(r) == "hello from %s" % dan_nick and r.bare_from == dan,
                         "the message of %s" % dan_nick, since=mx)
            await check_contact(s, dan, dan_nick, mx, args.roster_by_subscription)
            mx = s.mark()
            await di.close()
            await s.wait(lambda r: r.kind == "presence" and r.bare_from == dan and r.type == "unavailable",
                         "the unavailable presence of %s, who quit" % dan, since=mx, timeout=30)
            print("%s quit IRC: unavailable" % dan, flush=True)

    if args.full:
        # A nick nobody has.
        mx = s.mark()
        nobody = "nobody@" + domain
        s.message(nobody, "chat", "anyone?")
        r = await s.wait(lambda r: r.kind == "message" and r.type == "error" and r.bare_from == nobody, "the error from %s" % nobody, since=mx)
        cond = mc.error_condition(r.xml)
        xc.check(cond == "item-not-found", "a message to %s refused with %s, want item-not-found: %r" % (nobody, cond, r))
        print("a message to %s refused with %s" % (nobody, cond), flush=True)

        # A nick change on IRC is a nick change in the room.
        new = me + "2"
        mx = s.mark()
        irc.send("NICK %s" % new)
        r = await s.wait(lambda r: r.kind == "presence" and r.frm == "%s/%s" % (room, me) and r.type == "unavailable",
                         "the IRC user's old nick leaving", since=mx)
        xc.check("303" in mc.codes(r) and mc.item(r).get("nick") == new,
                 "the nick change has codes %s and item %s, want 303 and nick %s: %r" % (mc.codes(r), mc.item(r), new, r))
        await s.wait(mc.presence_from("%s/%s" % (room, new)), "the IRC user under the new nick", since=mx)
        mx = s.mark()
        irc.send("PRIVMSG %s :renamed" % channel)
        r = await s.wait(mc.groupchat_body("renamed"), "a message under the new nick", since=mx)
        xc.check(r.nick == new, "a message after the nick change came from %r, want %s" % (r.frm, new))
        print("nick change %s -> %s seen in the room" % (me, new), flush=True)
        me = new

        # Made a channel operator on IRC, the XMPP user is a moderator
        # and sets the topic from XMPP.
        mx = s.mark()
        irc.send("MODE %s +o %s" % (channel, bridged))
        r = await s.wait(lambda r: mc.self_presence(room)(r) and mc.item(r).get("role") == "moderator",
                         "own presence as a moderator", since=mx)
        m, mx = irc.mark(), s.mark()
        s.message(room, "groupchat", subj="Set from XMPP")
        await irc.wait(lambda l: l.command == "TOPIC" and l.nick.lower() == bridged.lower() and l.param(1) == "Set from XMPP",
                       "the topic the XMPP user set", since=m)
        await s.wait(lambda r: mc.is_subject(r) and mc.subject(r) == "Set from XMPP", "the subject set", since=mx)
        print("operator on IRC, moderator in the room; the topic set from XMPP", flush=True)

        # Leaving the room parts the channel.
        m = irc.mark()
        await s.leave(room, bridged)
        await irc.wait(lambda l: l.command in ("PART", "QUIT") and l.nick.lower() == bridged.lower(), "the XMPP user's PART", since=m)
        print("leaving the room parted %s" % channel, flush=True)

        # Back in, then kicked on IRC: kicked from the room (307), by
        # whom and why.
        m = irc.mark()
        await s.join(room, bridged)
        await irc.wait(lambda l: l.command == "JOIN" and l.nick.lower() == bridged.lower(), "the XMPP user's JOIN again", since=m)
        mx = s.mark()
        irc.send("KICK %s %s :enough" % (channel, bridged))
        r = await s.wait(mc.self_presence(room, "unavailable"), "own removal from the room", since=mx)
        xc.check("307" in mc.codes(r) and mc.actor(r) == me and mc.item_child_text(r, "reason") == "enough",
                 "the kick has codes %s, actor %r, reason %r; want 307 by %s for 'enough': %r" % (
                     mc.codes(r), mc.actor(r), mc.item_child_text(r, "reason"), me, r))
        print("kicked on IRC, kicked from the room by %s" % me, flush=True)

    await irc.close()
    if squatter is not None:
        await squatter.close()
    await s.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--room", required=True, help="the channel's room at the bridge, e.g. #test@irc.localhost")
    p.add_argument("--channel", required=True)
    p.add_argument("--bridged-nick", required=True, help="the XMPP user's nick on IRC")
    p.add_argument("--irc-host", default="127.0.0.1")
    p.add_argument("--irc-port", type=int, required=True)
    p.add_argument("--irc-nick", required=True, help="the IRC user's nick")
    p.add_argument("--topic", default="Bridged with XMPP")
    p.add_argument("--direct", action="store_true", help="one to one messages too")
    p.add_argument("--direct-first", action="store_true", help="one to one messages before joining, the XMPP user first")
    p.add_argument("--full", action="store_true", help="every check")
    p.add_argument("--taken", action="store_true", help="an IRC user has the XMPP user's nick already")
    p.add_argument("--roster", action="store_true", help="the IRC users met one to one are in the roster, with their presence")
    p.add_argument("--roster-by-subscription", action="store_true",
                   help="with --roster: the server refuses the bridge's roster set; the contacts come by subscription")
    xc.run(main, p.parse_args())
