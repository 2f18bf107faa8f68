"""The user side of a privileged component's roster change: log in, fetch
the roster (so that the server sends pushes), print READY, then wait for
the roster push that puts the contact in with subscription both, and read
the roster again to see it there."""

import asyncio

import xmpp_common as xc


async def main(args):
    c = xc.Client(args, args.jid, args.password)
    x = c.xmpp
    pushes = asyncio.Queue()

    def on_roster(iq):
        if iq["type"] == "set":
            pushes.put_nowait(iq)

    # slixmpp answers pushes itself (after checking 'from'); we only watch them.
    x.add_event_handler("roster_update", on_roster)
    await c.start()
    res = await x.make_iq_get(queryxmlns="jabber:iq:roster").send(timeout=10)
    before = res["roster"]["items"]
    xc.check(args.contact not in before, "%s already in the roster" % args.contact)
    print("READY", flush=True)

    while True:
        push = await pushes.get()
        items = push["roster"]["items"]
        if args.contact in items:
            break
    print("push: %s" % push, flush=True)
    item = items[args.contact]
    xc.check(item["subscription"] == "both", "pushed subscription %r, want both" % item["subscription"])
    xc.check(item["name"] == args.name, "pushed name %r, want %r" % (item["name"], args.name))
    xc.check(list(item["groups"]) == ["Bridge"], "pushed groups %r, want ['Bridge']" % item["groups"])

    res = await x.make_iq_get(queryxmlns="jabber:iq:roster").send(timeout=10)
    got = res["roster"]["items"]
    xc.check(args.contact in got, "roster get lacks %s: %s" % (args.contact, dict(got)))
    xc.check(got[args.contact]["subscription"] == "both", "subscription %r, want both" % got[args.contact]["subscription"])
    # slixmpp's own copy of the roster took the push too.
    xc.check(args.contact in x.client_roster, "slixmpp's roster lacks %s" % args.contact)
    print("%s is in the roster of %s" % (args.contact, x.boundjid.bare), flush=True)
    await c.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--contact", required=True)
    p.add_argument("--name", default="Legacy Friend")
    args = p.parse_args()
    xc.run(main, args)
