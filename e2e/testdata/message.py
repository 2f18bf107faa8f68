"""Sender and recipient online at once: the sender sends one chat message to
the recipient's bare JID and the recipient must get it unchanged, stamped
with the sender's real full JID (even if the sender tried to forge 'from')."""

import asyncio

import xmpp_common as xc


async def main(args):
    loop = asyncio.get_running_loop()
    got = loop.create_future()

    receiver = xc.Client(args, args.to_jid, args.to_password)

    def on_message(msg):
        if msg["body"] == args.body and not got.done():
            got.set_result(msg)

    receiver.xmpp.add_event_handler("message", on_message)
    await receiver.start()
    sender = await xc.Client(args, args.from_jid, args.from_password).start()

    msg = sender.xmpp.make_message(mto=args.to_jid, mbody=args.body, mtype="chat")
    msg["id"] = args.id
    if args.spoof_from:
        msg["from"] = args.spoof_from
    msg.send()
    print("sent id=%s from %s (from attribute %r)" % (args.id, sender.xmpp.boundjid, args.spoof_from), flush=True)

    m = await got
    print("received: %s" % m, flush=True)
    xc.check(m["id"] == args.id, "id %r, want %r" % (m["id"], args.id))
    xc.check(m["type"] == "chat", "type %r, want chat" % m["type"])
    xc.check(m["from"].full == sender.xmpp.boundjid.full,
             "from %r, want sender's full JID %r" % (m["from"].full, sender.xmpp.boundjid.full))
    await sender.close()
    await receiver.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--from-jid", required=True)
    p.add_argument("--from-password", required=True)
    p.add_argument("--to-jid", required=True)
    p.add_argument("--to-password", required=True)
    p.add_argument("--id", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--spoof-from", default="", help="put this in the sent 'from' attribute")
    args = p.parse_args()
    xc.run(main, args)
