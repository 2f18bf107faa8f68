"""An XMPP user and an IRC user talk through biboumi, the IRC gateway
component: the IRC user joins a channel on the IRC server, the XMPP user
joins the same channel as a MUC room of biboumi's domain, and a message
crosses in each direction. The IRC client is a few lines over a socket."""

import asyncio

import xmpp_common as xc


class IRC:
    """A minimal IRC client: registration, JOIN, PRIVMSG, PING answered."""

    def __init__(self, reader, writer):
        self.r, self.w = reader, writer

    @classmethod
    async def connect(cls, port, nick):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        irc = cls(r, w)
        irc.send("NICK %s" % nick)
        irc.send("USER %s 0 * :%s" % (nick, nick))
        await irc.wait("registration", lambda pfx, cmd, params: cmd == "001")
        return irc

    def send(self, line):
        print("irc> %s" % line, flush=True)
        self.w.write((line + "\r\n").encode())

    async def wait(self, what, match):
        """Reads lines until match(prefix, command, params) holds."""
        while True:
            raw = await self.r.readline()
            if not raw:
                raise xc.CheckFailed("IRC connection closed while waiting for %s" % what)
            line = raw.decode(errors="replace").rstrip("\r\n")
            print("irc< %s" % line, flush=True)
            prefix = ""
            if line.startswith(":"):
                prefix, _, line = line[1:].partition(" ")
            head, sep, trailing = line.partition(" :")
            params = head.split()
            cmd = params.pop(0) if params else ""
            if sep:
                params.append(trailing)
            if cmd == "PING":
                self.send("PONG :%s" % (params[-1] if params else ""))
                continue
            if match(prefix, cmd, params):
                return prefix, params

    def close(self):
        self.send("QUIT :done")
        self.w.close()


async def main(args):
    loop = asyncio.get_running_loop()
    irc = await IRC.connect(args.irc_port, args.irc_nick)
    irc.send("JOIN %s" % args.channel)
    await irc.wait("our JOIN", lambda pfx, cmd, params: cmd == "366")

    c = xc.Client(args, args.jid, args.password)
    c.xmpp.register_plugin("xep_0045")
    joined = loop.create_future()
    got = loop.create_future()
    c.xmpp.add_event_handler("muc::%s::self-presence" % args.room,
                             lambda p: joined.done() or joined.set_result(p))
    c.xmpp.add_event_handler("muc::%s::presence-error" % args.room,
                             lambda p: joined.done() or joined.set_exception(xc.CheckFailed("join refused: %s" % p)))

    def on_groupchat(msg):
        print("xmpp< %s" % msg, flush=True)
        if msg["body"] == args.from_irc and not got.done():
            got.set_result(msg)

    c.xmpp.add_event_handler("groupchat_message", on_groupchat)
    c.xmpp.add_event_handler("message", lambda m: print("xmpp< %s" % m, flush=True))
    await c.start()

    c.xmpp["xep_0045"].join_muc(args.room, args.nick)
    pres = await joined
    print("joined %s as %s" % (args.room, pres["from"]), flush=True)
    await irc.wait("the XMPP user's JOIN",
                   lambda pfx, cmd, params: cmd == "JOIN" and pfx.split("!")[0] == args.nick)

    c.xmpp.send_message(mto=args.room, mbody=args.from_xmpp, mtype="groupchat")
    await irc.wait("the XMPP user's message",
                   lambda pfx, cmd, params: cmd == "PRIVMSG" and pfx.split("!")[0] == args.nick
                   and params == [args.channel, args.from_xmpp])
    print("IRC got the XMPP message", flush=True)

    irc.send("PRIVMSG %s :%s" % (args.channel, args.from_irc))
    m = await got
    xc.check(m["type"] == "groupchat", "type %r, want groupchat" % m["type"])
    xc.check(m["from"].resource == args.irc_nick,
             "from %r, want the IRC user's nick %r" % (m["from"].full, args.irc_nick))
    print("XMPP got the IRC message from %s" % m["from"], flush=True)
    irc.close()
    await c.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--room", required=True, help="the channel's room JID at biboumi")
    p.add_argument("--nick", required=True, help="the XMPP user's nick, also on IRC")
    p.add_argument("--channel", required=True)
    p.add_argument("--irc-port", type=int, default=6667)
    p.add_argument("--irc-nick", required=True)
    p.add_argument("--from-xmpp", default="hello from xmpp")
    p.add_argument("--from-irc", default="hello from irc")
    xc.run(main, p.parse_args())
