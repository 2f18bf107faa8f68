"""A user talks to a contact behind a bridge: sends --body to --to, then
waits for a message from --to whose body is --expect."""

import asyncio

import xmpp_common as xc


async def main(args):
    loop = asyncio.get_running_loop()
    got = loop.create_future()
    c = xc.Client(args, args.jid, args.password)

    def on_message(msg):
        if msg["from"].bare == args.to and msg["body"] == args.expect and not got.done():
            got.set_result(msg)

    c.xmpp.add_event_handler("message", on_message)
    await c.start()
    c.xmpp.send_message(mto=args.to, mbody=args.body, mtype="chat")
    print("sent %r to %s" % (args.body, args.to), flush=True)
    await asyncio.wait_for(got, args.timeout)
    print("got %r from %s" % (args.expect, args.to), flush=True)
    await c.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--expect", required=True)
    xc.run(main, p.parse_args())
