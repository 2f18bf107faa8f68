"""Registers an account with an invitation (XEP-0445: the token of an
xmpp: URI that `ambrosia invite` printed, sent in <preauth/> before the
XEP-0077 registration) while open registration is off, with aioxmpp
(slixmpp 1.8 cannot send before authentication); then checks with slixmpp
that the invitee and the inviter are contacts subscribed both ways
(XEP-0379) and see each other's presence. With --expect-refused, checks
that the token is refused instead. With --from-command, the inviter
first gets the URI from the server's ad-hoc command urn:xmpp:invite#invite
(XEP-0401, XEP-0050) with slixmpp."""

import asyncio
import re

import aioxmpp
import aioxmpp.connector
import aioxmpp.ibr
import aioxmpp.security_layer
import aioxmpp.xso

import xmpp_common as xc

NS_PARS = "urn:xmpp:pars:0"


@aioxmpp.IQ.as_payload_class
class PreAuth(aioxmpp.xso.XSO):
    TAG = (NS_PARS, "preauth")
    token = aioxmpp.xso.Attr("token")

    def __init__(self, token=None):
        super().__init__()
        self.token = token


def ssl_context_for(ca):
    def factory():
        ctx = aioxmpp.security_layer.default_ssl_context()
        ctx.load_verify_locations(cafile=ca)
        return ctx
    return factory


def condition(err):
    c = getattr(err.condition, "value", err.condition)
    return c[1] if isinstance(c, tuple) else str(c)


async def send_iq(stream, payload):
    iq = aioxmpp.IQ(to=aioxmpp.JID.fromstr(stream._to), type_=aioxmpp.IQType.SET, payload=payload)
    iq.autoset_id()
    # send_and_wait_for hands back an error reply as it is, unraised.
    resp = await aioxmpp.protocol.send_and_wait_for(stream, [iq], [aioxmpp.IQ], timeout=10)
    if resp.type_ == aioxmpp.IQType.ERROR:
        return None, resp.error
    return resp, None


async def register(args, token):
    jid = aioxmpp.JID.fromstr(args.jid)
    # As im_register.py: aioxmpp registers unverified (no_verify); the
    # slixmpp logins that follow verify the certificate against the CA.
    metadata = aioxmpp.security_layer.make(args.password, ssl_context_factory=ssl_context_for(args.ca), no_verify=True)
    metadata = metadata._replace(sasl_providers=())
    _, stream, features = await aioxmpp.node.connect_xmlstream(
        jid, metadata, override_peer=[(args.host, args.port, aioxmpp.connector.STARTTLSConnector())])
    try:
        _, err = await send_iq(stream, PreAuth(token))
        if args.expect_refused:
            xc.check(err is not None, "the invitation was accepted")
            print("preauth refused: condition=%s text=%r" % (condition(err), err.text), flush=True)
            xc.check(condition(err) == "item-not-found", "condition %r, want item-not-found" % condition(err))
            _, err = await send_iq(stream, aioxmpp.ibr.Query(jid.localpart, args.password))
            xc.check(err is not None, "registered without a valid invitation")
            print("registration refused: condition=%s text=%r" % (condition(err), err.text), flush=True)
            xc.check(condition(err) == "not-allowed", "condition %r, want not-allowed" % condition(err))
            return False
        xc.check(err is None, "preauth refused: %s" % err)
        print("invitation accepted", flush=True)
        _, err = await send_iq(stream, aioxmpp.ibr.Query(jid.localpart, args.password))
        xc.check(err is None, "registration refused: %s" % err)
        print("registered %s" % (jid,), flush=True)
        return True
    finally:
        stream.close()


NODE_INVITE = "urn:xmpp:invite#invite"


async def uri_from_command(args):
    c = await xc.Client(args, args.inviter, args.inviter_password).start(presence=False)
    c.xmpp.register_plugin("xep_0050")
    domain = c.xmpp.boundjid.domain
    items = await c.xmpp["xep_0050"].get_commands(domain, timeout=10)
    nodes = [i[1] for i in items["disco_items"]["items"]]
    xc.check(NODE_INVITE in nodes, "command not listed: %s" % nodes)
    r = await c.xmpp["xep_0050"].send_command(domain, NODE_INVITE, timeout=10)
    xc.check(r["command"]["status"] == "completed", "command status %r" % r["command"]["status"])
    values = r["command"]["form"].get_values()
    print("command answered uri=%s expire=%s" % (values.get("uri"), values.get("expire")), flush=True)
    await c.close()
    return values.get("uri") or ""


async def main(args):
    if args.from_command:
        args.uri = await uri_from_command(args)
        xc.check(args.uri.startswith("xmpp:%s?roster;preauth=" % args.inviter), "uri %r" % args.uri)
    m = re.search(r"[?;]preauth=([^;&]+)", args.uri)
    xc.check(m is not None, "no preauth in %r" % args.uri)
    if not await register(args, m.group(1)):
        return
    inviter = await xc.Client(args, args.inviter, args.inviter_password).start(presence=True)
    await inviter.xmpp.get_roster()
    sub = inviter.xmpp.client_roster[args.jid]["subscription"]
    xc.check(sub == "both", "inviter's subscription to the invitee: %r" % sub)
    invitee = await xc.Client(args, args.jid, args.password).start(presence=False)
    seen = asyncio.get_running_loop().create_future()

    def on_available(p):
        if p["from"].bare == args.inviter and not seen.done():
            seen.set_result(True)
    invitee.xmpp.add_event_handler("presence_available", on_available)
    await invitee.xmpp.get_roster()
    sub = invitee.xmpp.client_roster[args.inviter]["subscription"]
    xc.check(sub == "both", "invitee's subscription to the inviter: %r" % sub)
    invitee.xmpp.send_presence()
    await asyncio.wait_for(seen, timeout=10)
    print("both subscribed; the invitee sees the inviter's presence", flush=True)
    await invitee.close()
    await inviter.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--uri", default="", help="the xmpp: URI that ambrosia invite printed")
    p.add_argument("--from-command", action="store_true", help="get the URI from the ad-hoc command instead")
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--inviter", default="")
    p.add_argument("--inviter-password", default="")
    p.add_argument("--expect-refused", action="store_true")
    args = p.parse_args()
    xc.run(main, args)
