"""Logs in, prints READY, and waits for a message with the expected body;
a message with any of the forbidden bodies arriving first (or at all,
before the expected one) is a failure."""

import im_common as im
import xmpp_common as xc


async def main(args):
    a = await im.Session(args, args.jid, args.password).start(roster=False)
    print("READY", flush=True)
    m = await a.messages.wait_for(lambda m: m["body"] == args.body, "message %r" % args.body, timeout=args.timeout)
    print("received %r from %s" % (m["body"], m["from"]), flush=True)
    bad = [x for x in a.messages.items if x["body"] in args.forbid]
    xc.check(not bad, "forbidden messages delivered: %s" % bad)
    await a.close()
    print("OK", flush=True)


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--forbid", action="append", default=[])
    im.run(main, p.parse_args())
