"""Federation failures reach the sender: a user sends several messages to
each remote JID given and expects every one of them back as an error with
the given condition, within the given time."""

import asyncio

import im_common as im
import xmpp_common as xc


async def main(args):
    a = await im.Session(args, args.jid, args.password).start(roster=False)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for to, _ in args.expect:
        for i in range(args.count):
            a.xmpp.send_message(mto=to, mbody="queued %d" % i, mtype="chat", mfrom=a.jid)
    for to, cond in args.expect:
        def bounced(m, to=to, cond=cond):
            return m["from"].bare == to and m["type"] == "error" and m["error"]["condition"] == cond
        remaining = args.within - (loop.time() - start)
        await a.messages.wait_for(lambda _: sum(1 for m in a.messages.items if bounced(m)) >= args.count,
                                  "%d %s errors from %s" % (args.count, cond, to), timeout=max(remaining, 0.1))
        print("%d messages to %s bounced with %s after %.1f s" % (args.count, to, cond, loop.time() - start), flush=True)
    others = [m for m in a.messages.items if m["type"] == "error" and
              not any(m["from"].bare == to and m["error"]["condition"] == cond for to, cond in args.expect)]
    xc.check(not others, "unexpected errors: %s" % others)
    await a.close()
    print("OK", flush=True)


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--expect", nargs=2, action="append", required=True, metavar=("JID", "CONDITION"))
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--within", type=float, required=True, help="seconds all errors must arrive in")
    im.run(main, p.parse_args())
