"""Logs in and expects the messages stored while offline: all of them, in
order, each with a XEP-0203 delay stamp from the server."""

import asyncio

import xmpp_common as xc


async def main(args):
    got = []
    done = asyncio.get_running_loop().create_future()
    c = xc.Client(args, args.jid, args.password)
    c.xmpp.register_plugin("xep_0203")

    def on_message(msg):
        if msg["type"] in ("chat", "normal") and msg["body"].startswith(args.body):
            got.append(msg)
            if len(got) == args.count and not done.done():
                done.set_result(True)

    c.xmpp.add_event_handler("message", on_message)
    await c.start()
    if args.count == 0:
        # start() pings after the initial presence; stored messages come
        # before that answer, so none by now means none at all.
        xc.check(not got, "got %d stored messages, want none" % len(got))
        print("no stored messages", flush=True)
        await c.close()
        return
    await asyncio.wait_for(done, 15)
    for i, m in enumerate(got):
        xc.check(m["body"] == "%s %d" % (args.body, i), "message %d body %r" % (i, m["body"]))
        xc.check(m["from"].bare == args.expect_from, "message %d from %s" % (i, m["from"]))
        stamp = m["delay"]["stamp"]
        xc.check(stamp is not None, "message %d has no delay stamp" % i)
        xc.check(m["delay"]["from"] == m["to"].domain, "message %d delay from %r" % (i, m["delay"]["from"]))
    print("received %d stored messages with delay stamps" % len(got), flush=True)
    await c.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--expect-from", required=True)
    args = p.parse_args()
    xc.run(main, args)
