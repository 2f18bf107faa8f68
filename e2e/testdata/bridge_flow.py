"""A user and a contact behind a bridge talk at once, numbered: the user
sends a=1..count to --to, the contact sends b=1..count back (the test
drives it). After --kill-after messages the script prints KILL (the test
then kills the bridge with SIGKILL and restarts it). It reports every
number it got twice and every number it never got."""

import asyncio

import xmpp_common as xc


async def main(args):
    loop = asyncio.get_running_loop()
    c = xc.Client(args, args.jid, args.password)
    seen = {}
    order = []
    all_in = loop.create_future()

    def on_message(msg):
        if msg["from"].bare != args.to or not msg["body"].startswith("b="):
            return
        n = int(msg["body"][2:])
        seen[n] = seen.get(n, 0) + 1
        order.append(n)
        if len(seen) == args.count and not all_in.done():
            all_in.set_result(True)

    c.xmpp.add_event_handler("message", on_message)
    await c.start()
    print("READY", flush=True)
    for i in range(1, args.count + 1):
        c.xmpp.send_message(mto=args.to, mbody="a=%d" % i, mtype="chat")
        if i == args.kill_after:
            print("KILL", flush=True)
        await asyncio.sleep(args.interval)
    try:
        await asyncio.wait_for(all_in, args.settle)
    except asyncio.TimeoutError:
        pass
    await asyncio.sleep(1)
    dups = sorted(n for n, k in seen.items() if k > 1)
    gaps = [n for n in range(1, args.count + 1) if n not in seen]
    unordered = order != sorted(order)
    print("received %d duplicates %s gaps %s out-of-order %s" % (len(seen), dups, gaps, unordered), flush=True)
    xc.check(not dups and not gaps and not unordered, "not exactly once in order")
    await c.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--kill-after", type=int, default=100)
    p.add_argument("--settle", type=float, default=40)
    xc.run(main, p.parse_args())
