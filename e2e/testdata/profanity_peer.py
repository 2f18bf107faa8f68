"""The other end of a conversation with a terminal client: logs in, prints
READY once available, waits for one chat message with the given body from
the given bare JID and answers the sender's full JID with the reply body."""

import asyncio

import xmpp_common as xc


async def main(args):
    got = asyncio.get_running_loop().create_future()
    c = xc.Client(args, args.jid, args.password)

    def on_message(msg):
        if msg["body"] == args.body and not got.done():
            got.set_result(msg)

    c.xmpp.add_event_handler("message", on_message)
    await c.start()
    print("READY", flush=True)
    m = await got
    print("received: %s" % m, flush=True)
    xc.check(m["from"].bare == args.expect_from,
             "from %r, want bare JID %r" % (m["from"].full, args.expect_from))
    xc.check(m["from"].resource != "", "from %r is not a full JID" % m["from"].full)
    xc.check(m["type"] == "chat", "type %r, want chat" % m["type"])
    c.xmpp.send_message(mto=m["from"], mbody=args.reply, mtype="chat")
    # The ping answered after the reply shows the server has routed it.
    await c.xmpp["xep_0199"].send_ping(c.xmpp.boundjid.domain, timeout=10)
    print("REPLIED", flush=True)
    await c.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--body", required=True, help="the message to wait for")
    p.add_argument("--expect-from", required=True, help="bare JID of the sender")
    p.add_argument("--reply", required=True, help="the body sent back")
    args = p.parse_args()
    xc.run(main, args)
