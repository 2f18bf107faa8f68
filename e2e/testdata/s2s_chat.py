"""Federation: a user on one server and a user on another subscribe to
each other, each sees the other's presence, and they exchange messages
both ways. Each user logs in to their own server with its own CA."""

import im_common as im


async def main(args):
    a_args, a_jid, a_pw = im.account(args, args.a)
    b_args, b_jid, b_pw = im.account(args, args.b)
    a = await im.Session(a_args, a_jid, a_pw).start()
    b = await im.Session(b_args, b_jid, b_pw).start()

    a.presence_to(b_jid, "subscribe")
    await b.presences.wait_for(im.from_bare(a_jid, "subscribe"), "subscribe from %s" % a_jid, timeout=20)
    b.presence_to(a_jid, "subscribed")
    await a.presences.wait_for(im.from_bare(b_jid, "subscribed"), "subscribed from %s" % b_jid)
    await a.presences.wait_for(lambda p: p["from"] == b.jid and p["type"] == "available", "%s available" % b_jid)
    print("%s sees %s available" % (a_jid, b_jid), flush=True)

    b.presence_to(a_jid, "subscribe")
    await a.presences.wait_for(im.from_bare(b_jid, "subscribe"), "subscribe from %s" % b_jid, timeout=20)
    a.presence_to(b_jid, "subscribed")
    await b.presences.wait_for(im.from_bare(a_jid, "subscribed"), "subscribed from %s" % a_jid)
    await b.presences.wait_for(lambda p: p["from"] == a.jid and p["type"] == "available", "%s available" % a_jid)
    print("%s sees %s available" % (b_jid, a_jid), flush=True)

    a.xmpp.send_message(mto=b.jid, mbody="hello across servers", mtype="chat")
    await b.messages.wait_for(lambda m: m["from"] == a.jid and m["body"] == "hello across servers", "message from a")
    b.xmpp.send_message(mto=a_jid, mbody="hello back", mtype="chat")
    await a.messages.wait_for(lambda m: m["from"] == b.jid and m["body"] == "hello back", "message from b")
    print("messages crossed both ways", flush=True)

    b_full = b.jid.full
    await b.close()
    await a.presences.wait_for(lambda p: p["from"].full == b_full and p["type"] == "unavailable", "%s unavailable" % b_jid)
    print("%s saw %s go unavailable" % (a_jid, b_jid), flush=True)
    await a.close()
    print("OK", flush=True)


if __name__ == "__main__":
    p = im.account_parser(__doc__)
    p.add_argument("--a", nargs=4, required=True, metavar=("JID", "PASSWORD", "PORT", "CA"))
    p.add_argument("--b", nargs=4, required=True, metavar=("JID", "PASSWORD", "PORT", "CA"))
    im.run(main, p.parse_args())
