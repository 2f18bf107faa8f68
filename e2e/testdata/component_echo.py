"""A user of the server talks to an external component: the server's
disco#items lists the component's domain, and a chat message sent to an
address at that domain comes back echoed by the component."""

import asyncio

import xmpp_common as xc


async def main(args):
    loop = asyncio.get_running_loop()
    got = loop.create_future()
    c = xc.Client(args, args.jid, args.password)

    def on_message(msg):
        if msg["from"].bare == args.to and not got.done():
            got.set_result(msg)

    c.xmpp.add_event_handler("message", on_message)
    await c.start()

    items = await c.xmpp["xep_0030"].get_items(jid=c.xmpp.boundjid.domain, timeout=10)
    jids = [i[0] for i in items["disco_items"]["items"]]
    print("disco#items of %s: %s" % (c.xmpp.boundjid.domain, jids), flush=True)
    xc.check(args.component in jids, "%s not in the server's disco#items %s" % (args.component, jids))

    c.xmpp.send_message(mto=args.to, mbody=args.body, mtype="chat")
    m = await got
    print("received: %s" % m, flush=True)
    xc.check(m["body"] == "echo: " + args.body, "body %r, want %r" % (m["body"], "echo: " + args.body))
    xc.check(m["to"].full == c.xmpp.boundjid.full, "to %r, want %r" % (m["to"].full, c.xmpp.boundjid.full))
    await c.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--component", required=True, help="the component's domain")
    p.add_argument("--to", required=True, help="where to send the message")
    p.add_argument("--body", required=True)
    xc.run(main, p.parse_args())
