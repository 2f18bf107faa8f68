"""The slixmpp side of the browser test: logs in, asks for the web user's
presence (the web client approves and asks back, which this side approves),
prints "ready", then waits for a message from the web user with the body
given, prints "got: BODY" and answers with the reply given; it stays online
until the test stops it, so that the web client sees its
presence meanwhile."""

import asyncio

import xmpp_common as xc


async def main(args):
    loop = asyncio.get_running_loop()
    got = loop.create_future()
    c = xc.Client(args, args.jid, args.password)
    x = c.xmpp
    x.register_plugin("xep_0085")
    x.auto_authorize = True
    x.auto_subscribe = True

    def on_message(msg):
        if msg["type"] in ("chat", "normal") and msg["from"].bare == args.peer and msg["body"] and not got.done():
            got.set_result(msg)

    x.add_event_handler("message", on_message)
    await c.start()
    x.send_presence_subscription(pto=args.peer)

    async def presence_again():
        # Once subscribed both ways, presence again: the web client's
        # roster then shows this contact online whatever the order in
        # which it learned of the subscription and the presence.
        while x.client_roster[args.peer]["subscription"] != "both":
            await asyncio.sleep(0.1)
        x.send_presence()
        print("subscribed both ways", flush=True)

    again = asyncio.ensure_future(presence_again())
    print("ready", flush=True)
    m = await got
    print("got: %s" % m["body"], flush=True)
    x.send_message(mto=m["from"], mbody=args.reply, mtype="chat")
    print("replied", flush=True)
    # Online until the test, done with the browser, stops this script.
    await asyncio.Event().wait()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--peer", required=True, help="the web user's bare JID")
    p.add_argument("--reply", required=True)
    args = p.parse_args()
    xc.run(main, args)
