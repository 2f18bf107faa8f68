"""Logs in, checks the bound JID and the SASL mechanism, and pings the server."""

import xmpp_common as xc


async def main(args):
    c = await xc.Client(args, args.jid, args.password).start(presence=False)
    bound = c.xmpp.boundjid
    xc.check(bound.bare == args.jid, "bound JID %s, want bare part %s" % (bound, args.jid))
    xc.check(bound.resource != "", "bound JID %s has no resource" % bound)
    await c.xmpp["xep_0199"].send_ping(bound.domain, timeout=10)
    print("ping to %s answered" % bound.domain, flush=True)
    await c.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    args = p.parse_args()
    xc.run(main, args)
