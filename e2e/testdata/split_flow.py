"""Two users on two gateways of a split server: the receiver approves the
sender's subscription, each sees the other's presence, then the sender
sends numbered messages to the receiver's bare JID. After --kill-after
messages it prints KILL (the test then kills and restarts the session
manager service) and goes on sending. The receiver reports every number it
got twice and every number it never got."""

import argparse
import asyncio
import copy

import xmpp_common as xc


async def main(args):
    loop = asyncio.get_running_loop()
    rargs = copy.copy(args)
    rargs.port = args.to_port
    receiver = xc.Client(rargs, args.to_jid, args.to_password)
    seen = {}
    all_in = loop.create_future()

    def on_message(msg):
        body = msg["body"]
        if not body.startswith("n="):
            return
        n = int(body[2:])
        seen[n] = seen.get(n, 0) + 1
        if len(seen) == args.count and not all_in.done():
            all_in.set_result(True)

    receiver.xmpp.add_event_handler("message", on_message)
    await receiver.start()
    sender = await xc.Client(args, args.from_jid, args.from_password).start()

    online = loop.create_future()
    sender.xmpp.add_event_handler(
        "got_online", lambda p: p["from"].bare == args.to_jid and not online.done() and online.set_result(True))
    sender.xmpp.send_presence(pto=args.to_jid, ptype="subscribe")
    await asyncio.wait_for(online, 15)
    print("presence: %s sees %s online" % (args.from_jid, args.to_jid), flush=True)

    for i in range(1, args.count + 1):
        sender.xmpp.send_message(mto=args.to_jid, mbody="n=%d" % i, mtype="chat")
        if i == args.kill_after:
            print("KILL", flush=True)
        await asyncio.sleep(args.interval)
    try:
        await asyncio.wait_for(all_in, args.settle)
    except asyncio.TimeoutError:
        pass
    # Late duplicates would arrive now.
    await asyncio.sleep(1)
    dups = sorted(n for n, c in seen.items() if c > 1)
    gaps = [n for n in range(1, args.count + 1) if n not in seen]
    print("received %d duplicates %s gaps %s" % (len(seen), dups, gaps), flush=True)
    xc.check(not dups and not gaps, "not exactly once")
    await sender.close()
    await receiver.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--to-port", type=int, required=True)
    p.add_argument("--from-jid", required=True)
    p.add_argument("--from-password", required=True)
    p.add_argument("--to-jid", required=True)
    p.add_argument("--to-password", required=True)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--kill-after", type=int, default=0)
    p.add_argument("--interval", type=float, default=0.02)
    p.add_argument("--settle", type=float, default=20)
    xc.run(main, p.parse_args())
