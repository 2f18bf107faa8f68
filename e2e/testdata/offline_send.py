"""Logs in and sends chat messages to a user who is offline, then checks
with a ping that the server has taken them before logging out."""

import xmpp_common as xc


async def main(args):
    c = await xc.Client(args, args.jid, args.password).start()
    for i in range(args.count):
        msg = c.xmpp.make_message(mto=args.to, mbody="%s %d" % (args.body, i), mtype="chat")
        msg["id"] = "offline-%d" % i
        msg.send()
    await c.xmpp["xep_0199"].send_ping(c.xmpp.boundjid.domain, timeout=10)
    print("sent %d" % args.count, flush=True)
    await c.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--count", type=int, default=1)
    args = p.parse_args()
    xc.run(main, args)
