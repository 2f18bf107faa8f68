"""Creates an account in-band (XEP-0077) with aioxmpp's registration
support, which works before authentication (slixmpp 1.8 holds back every
stanza until a session exists), then logs in with it and changes the
password with slixmpp."""

import asyncio

import aioxmpp
import aioxmpp.connector
import aioxmpp.ibr
import aioxmpp.security_layer

import xmpp_common as xc


def ssl_context_for(ca):
    def factory():
        ctx = aioxmpp.security_layer.default_ssl_context()
        ctx.load_verify_locations(cafile=ca)
        return ctx
    return factory


async def register(args):
    jid = aioxmpp.JID.fromstr(args.jid)
    # aioxmpp checks certificates through its own verifier layer, which
    # has no plain "trust this CA file" mode; this registration step runs
    # unverified (no_verify), and the slixmpp login that follows verifies
    # the same server certificate against the CA file.
    metadata = aioxmpp.security_layer.make(args.password, ssl_context_factory=ssl_context_for(args.ca), no_verify=True)
    # No SASL: the account does not exist yet; the stream stops after TLS.
    metadata = metadata._replace(sasl_providers=())
    _, stream, features = await aioxmpp.node.connect_xmlstream(
        jid, metadata, override_peer=[(args.host, args.port, aioxmpp.connector.STARTTLSConnector())])
    try:
        form = await aioxmpp.ibr.get_registration_fields(stream)
        xc.check(form is not None, "no registration form")
        await aioxmpp.ibr.register(stream, aioxmpp.ibr.Query(jid.localpart, args.password))
        print("registered %s" % (jid,), flush=True)
    finally:
        stream.close()


async def main(args):
    await register(args)
    c = await xc.Client(args, args.jid, args.password).start(presence=False)
    c.xmpp.register_plugin("xep_0077")
    await c.xmpp["xep_0077"].change_password(args.new_password, timeout=10)
    print("password changed", flush=True)
    await c.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--new-password", required=True)
    args = p.parse_args()
    xc.run(main, args)
